// Owns the raw JSON values of the typed-encoding differential test (test/e2e/typed-differential.test.ts):
// a column type's shape as the mutator needs it, and corpora of raw values per type, every form a
// producer might send, valid or not (numbers as strings and strings as numbers, out-of-range and
// fractional integers, every date-time form, UUID forms, enum names and numbers, escapes, surrogates,
// invalid UTF-8, control characters, huge strings, nested JSON in strings). A value is raw JSON text
// (string) or raw bytes (Buffer, for what a JS string cannot hold).
import type { Rng } from '../../dev/posthog/generator.ts';

/** Raw JSON text: a string, or bytes when it must hold what a JS string cannot (invalid UTF-8). */
export type Piece = string | Buffer;

/** What the mutator needs to know of a column type (wrappers stripped). */
export interface TypeShape {
  readonly kind: 'string' | 'fixed' | 'int' | 'float' | 'bool' | 'uuid' | 'enum' | 'date' | 'datetime' | 'datetime64' | 'array' | 'map' | 'other';
  readonly nullable: boolean;
  readonly bits: number;
  readonly signed: boolean;
  /** Enum names and values; FixedString length in `bits`. */
  readonly names: readonly string[];
  readonly values: readonly number[];
  readonly element: TypeShape | undefined;
}

function splitTopLevel(args: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < args.length; i++) {
    const c = args[i];
    if (c === "'" && args[i - 1] !== '\\') quoted = !quoted;
    if (quoted) continue;
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(args.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(args.slice(start).trim());
  return out;
}

const base = { nullable: false, bits: 0, signed: false, names: [] as string[], values: [] as number[], element: undefined };

/** The shape of a ClickHouse type as system.columns spells it. */
export function typeShape(type: string, nullable = false): TypeShape {
  const open = type.indexOf('(');
  const name = open < 0 ? type : type.slice(0, open);
  const args = open < 0 ? [] : splitTopLevel(type.slice(open + 1, type.lastIndexOf(')')));
  switch (name) {
    case 'LowCardinality':
      return typeShape(args[0] ?? '', nullable);
    case 'Nullable':
      return typeShape(args[0] ?? '', true);
    case 'SimpleAggregateFunction':
      return typeShape(args[1] ?? '', nullable);
    case 'Array':
      return { ...base, kind: 'array', nullable, element: typeShape(args[0] ?? '') };
    case 'Map':
      return { ...base, kind: 'map', nullable, element: typeShape(args[1] ?? '') };
    case 'String':
      return { ...base, kind: 'string', nullable };
    case 'FixedString':
      return { ...base, kind: 'fixed', nullable, bits: Number(args[0]) };
    case 'Float32':
    case 'Float64':
      return { ...base, kind: 'float', nullable, bits: Number(name.slice(5)) };
    case 'Bool':
      return { ...base, kind: 'bool', nullable };
    case 'UUID':
      return { ...base, kind: 'uuid', nullable };
    case 'Enum8':
    case 'Enum16': {
      const names: string[] = [];
      const values: number[] = [];
      for (const arg of args) {
        const m = /^'((?:[^'\\]|\\.)*)'\s*=\s*(-?\d+)$/.exec(arg);
        if (m) {
          names.push((m[1] ?? '').replace(/\\(.)/g, '$1'));
          values.push(Number(m[2]));
        }
      }
      return { ...base, kind: 'enum', nullable, bits: Number(name.slice(4)), names, values };
    }
    case 'Date':
    case 'Date32':
      return { ...base, kind: 'date', nullable };
    case 'DateTime':
      return { ...base, kind: 'datetime', nullable };
    case 'DateTime64':
      return { ...base, kind: 'datetime64', nullable, bits: Number(args[0]) };
    default: {
      const int = /^(U?)Int(8|16|32|64|128|256)$/.exec(name);
      if (int) return { ...base, kind: 'int', nullable, bits: Number(int[2]), signed: int[1] === '' };
      return { ...base, kind: 'other', nullable };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Corpora of raw JSON values

export const q = (s: string): string => JSON.stringify(s);
const bytes = (...parts: Array<string | number[]>): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

/** Space-separated raw JSON values (none contains a space). */
const words = (text: string): string[] => text.split(/\s+/).filter((w) => w !== '');

export const GENERIC: readonly Piece[] = words(`null {} [] "" "x" 0 1 true false -1 1.5 {"a":1} [1,"a",null]`);

const STRINGS: readonly Piece[] = [
  ...words(`"" "plain" "\\u00e9t\\u00E9" "😀" "\\ud800" "x\\udc00y" "\\ud800\\ud800" "\\udbff\\udfff" "\\u0000nul" "\\t\\n\\r\\b\\f" "\\/slash\\/"`),
  ...words(`"\\"quoted\\"" "back\\\\slash" "bad\\qescape" "short\\u12" "\\uZZZZ" "0" "123" 123 -1.5e3 0.1 1e400 18446744073709551616 true false`),
  ...words(`{"a":[1,{"b":"c"}]} {"k":"\\ud800"} [1,"a",null] [[[[]]]] {} [] null`),
  '"Créer un compte"',
  '"\\ud83d\\ude00 smile"',
  '"  padded  "',
  '{ "a" : "\\u00e9" , "b" : [ ] }',
  '[ ]',
  bytes('"a', [0x01], 'b"'),
  bytes('"tab', [0x09], 'raw"'),
  bytes('"line', [0x0a], 'raw"'),
  bytes('"', [0xff, 0xfe], '"'),
  bytes('"trunc', [0xc3], '"'),
  bytes('"', [0xc0, 0xaf], 'overlong"'),
  bytes('"', [0xed, 0xa0, 0x80], 'cesu"'),
  bytes('"', [0xf4, 0x90, 0x80, 0x80], 'beyond"'),
  bytes('"', [0x7f], 'del"'),
  q('x'.repeat(70_000)),
  q('é😀'.repeat(20_000)),
  // Nesting at ClickHouse's input_format_json_max_depth (1000) and past it, numbers of 400 digits.
  `${'['.repeat(999)}${']'.repeat(999)}`,
  `${'['.repeat(1001)}${']'.repeat(1001)}`,
  `${'{"a":'.repeat(1000)}1${'}'.repeat(1000)}`,
  `1${'0'.repeat(400)}`,
  `-0.${'0'.repeat(400)}1`,
  '1E+2',
  '-0',
];

function intCorpus(bits: number, signed: boolean): Piece[] {
  const max = signed ? 2n ** BigInt(bits - 1) - 1n : 2n ** BigInt(bits) - 1n;
  const min = signed ? -(2n ** BigInt(bits - 1)) : 0n;
  const n = (v: bigint): string => v.toString();
  return [
    n(min),
    n(max),
    n(min - 1n),
    n(max + 1n),
    q(n(max)),
    q(n(min)),
    q(n(max + 1n)),
    q(n(min - 1n)),
    n(max * 2n + 3n),
    n(-max - 5n),
    ...words(`0 -0 -1 1 42 "42" "-42" "+42" 007 "007" "0x1F" 1.0 1.5 -1.5 2.5 -2.5 0.9999999999999999 1e2 1E2 1e-2 "1.5" "1e2" "abc" "" "12abc" true false "true"`),
    '" 42"',
    '"42 "',
    ...words(`[1] {} 1e19 1e30 -1e19 9007199254740993 99999999999999999999999 1.7976931348623157e308 "nan" "inf" "-inf"`),
    ...words(`1.0e0 -0.0 0e5 1E-0 12e-1 "\\u0034\\u0032" "4\\u0032"`),
    'null',
  ];
}

const FLOATS: readonly Piece[] = [
  ...words(`0 -0 1.5 "1.5" 0.1 0.30000000000000004 1.0000000000000002 1e308 1e309 -1e309 5e-324 1e-400 3.4028234663852886e38 3.5e38 1.4e-45 1e-46`),
  ...words(`123456789012345678901234567890 9007199254740993 18446744073709551615 -9223372036854775808 2.5e-7 12 -7 [1.5] true false`),
  ...words(`"nan" "NaN" "inf" "-inf" "+inf" "Infinity" "-Infinity" NaN Infinity "1,5" ".5" "5." .5 5. "1e5" "0x10" "" "abc"`),
  '"  1.5"',
];

const BOOLS: readonly Piece[] = [
  ...words(`true false 0 1 2 -1 1.0 0.0 0.5 "true" "false" "True" "FALSE" "1" "0" "2" "yes" "no" "on" "off" "t" "f" "y" "n"`),
  ...words(`"enable" "disable" "enabled" "" null`),
  '" true"',
];

function uuidCorpus(u: string): Piece[] {
  const nodash = u.replaceAll('-', '');
  return [
    q(u),
    q(u.toUpperCase()),
    q(`{${u}}`),
    q(nodash),
    q(nodash.toUpperCase()),
    q(`{${nodash}}`),
    q(`urn:uuid:${u}`),
    q(` ${u}`),
    q(`${u} `),
    q(u.slice(0, 35)),
    q(`${u}0`),
    q(`${u.slice(0, 35)}g`),
    q(`${nodash.slice(0, 8)}-${nodash.slice(8, 20)}-${nodash.slice(20)}`),
    q('00000000-0000-0000-0000-000000000000'),
    q('ffffffff-ffff-ffff-ffff-ffffffffffff'),
    '""',
    '"0"',
    '123',
    'null',
    'true',
  ];
}

function enumCorpus(shape: TypeShape): Piece[] {
  const out: Piece[] = [];
  for (const name of shape.names) out.push(q(name), q(name.toUpperCase()), q(` ${name}`));
  for (const value of shape.values) out.push(String(value), q(String(value)), `${value}.0`);
  const lo = shape.bits === 8 ? -128 : -32768;
  const hi = shape.bits === 8 ? 127 : 32767;
  for (let v = -2; v <= 3; v++) if (!shape.values.includes(v)) out.push(String(v));
  out.push(String(lo - 1), String(hi + 1), '"unknown"', '""', 'true', '1.5', 'null', '"0"', '1e0', '-0');
  for (const name of shape.names) if (name.length > 0) out.push(`"\\u${name.charCodeAt(0).toString(16).padStart(4, '0')}${name.slice(1)}"`);
  return out;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** `YYYY-MM-DD hh:mm:ss` of a UTC time in seconds. */
function civil(seconds: number): string {
  const d = new Date(seconds * 1000);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** Date-time texts at the edges of the types' ranges, and malformed ones. */
const FIXED_DATES = (
  '1970-01-01 00:00:00|1970-01-01 00:00:00.000001|1969-12-31 23:59:59|1900-01-01 00:00:00|1899-12-31 23:59:59|2106-02-07 06:28:15|' +
  '2106-02-07 06:28:16|2149-06-06|2149-06-07|2262-04-11 23:47:16.854775807|2299-12-31 23:59:59.999999|2300-01-01 00:00:00|0000-00-00 00:00:00|' +
  '2024-02-29 12:00:00|2023-02-29 12:00:00|2024-13-01 00:00:00|2024-1-2 3:4:5|2024-01-02 03:04|2024-01-02 03|20240102|20240102030405|' +
  '2024/01/02 03:04:05|02/01/2024|2024-01-02 24:00:00|2024-01-02 23:59:60'
).split('|');

function dateTimeCorpus(rng: Rng): Piece[] {
  // A time between 1900 and 2300, mostly within DateTime's 1970–2106.
  const seconds = rng.chance(0.7) ? rng.range(0, 4_294_967_295) : rng.range(-2_208_988_800, 10_413_792_000);
  const text = civil(seconds);
  const date = text.slice(0, 10);
  const digits = String(rng.u32()).padStart(10, '7') + String(rng.u32()).padStart(10, '3');
  const frac = (n: number): string => digits.slice(0, n);
  const out: Piece[] = [q(text), q(`${date}T${text.slice(11)}`), q(`${date}T${text.slice(11)}Z`), q(`${text}Z`), q(date), q(`${date}T00:00:00`)];
  for (let n = 1; n <= 9; n++) out.push(q(`${text}.${frac(n)}`));
  out.push(
    q(`${text}.${frac(12)}`),
    q(`${date}T${text.slice(11)}.${frac(rng.range(1, 9))}Z`),
    q(`${text}+02:00`),
    q(`${text}-05:30`),
    q(`${text}+0200`),
    q(`${text}.${frac(3)}+01:00`),
    q(`${date}T${text.slice(11)}.${frac(6)}-08:00`),
    q(`${text} UTC`),
    String(seconds),
    q(String(seconds)),
    `${seconds}.${frac(3)}`,
    q(`${seconds}.${frac(6)}`),
    q(`${seconds}.${frac(9)}`),
    String(seconds * 1000),
    ...words(`0 -1 "0" 4294967295 4294967296 1e10 1.5e9 "1.5e9" "" true null []`),
    ...FIXED_DATES.map(q),
    q(` ${text}`),
    q(`${text} `),
    q(`${date}  ${text.slice(11)}`),
    q(`${text}.`),
    q(`${text},123`),
    q('garbage'),
  );
  return out;
}

function arrayCorpus(shape: TypeShape, rng: Rng): Piece[] {
  const element = shape.element ?? typeShape('String');
  const e = (): Piece => pickValue(element, rng, 0.2);
  const join = (items: Piece[], sep = ','): Piece => concat(['[', ...items.flatMap((item, i) => (i === 0 ? [item] : [sep, item])), ']']);
  return [
    '[]',
    '[ ]',
    join([e()]),
    join([e(), e(), e()]),
    join([e(), e()], ' , '),
    join([validValue(element, rng), 'null']),
    '[null]',
    '"[]"',
    '"[\\"a\\"]"',
    '1',
    '"x"',
    '{}',
    '[[1]]',
    '["1",2,true]',
    'null',
  ];
}

function mapCorpus(shape: TypeShape, rng: Rng): Piece[] {
  const v = (): Piece => pickValue(shape.element ?? typeShape('String'), rng, 0.2);
  return [
    '{}',
    concat(['{"a":', v(), '}']),
    concat(['{"a":', v(), ',"b":', v(), '}']),
    '{"a":1}',
    '{"a":null}',
    '{"a":true}',
    '{"a":{"x":[1,2]}}',
    '{"a":[1,2]}',
    '{"a":"1","a":"2"}',
    '{"\\u00e9":"\\ud800"}',
    '{"":""}',
    '{ "k" : "v" }',
    bytes('{"', [0xff], '":"v"}'),
    '[]',
    '"{}"',
    'null',
    '1',
    '[["a","b"]]',
  ];
}

export function concat(parts: Piece[]): Piece {
  if (parts.every((p) => typeof p === 'string')) return parts.join('');
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));
}

function uuidOf(rng: Rng): string {
  const h = (n: number): string => rng.u32().toString(16).padStart(8, '0').slice(0, n);
  return `${h(8)}-${h(4)}-4${h(3)}-a${h(3)}-${h(8)}${h(4)}`;
}

/** A raw JSON value of a column's type that ClickHouse's JSONEachRow takes (a typical producer's). */
export function validValue(shape: TypeShape, rng: Rng): Piece {
  if (shape.nullable && rng.chance(0.15)) return 'null';
  switch (shape.kind) {
    case 'string':
      return q(rng.pick(['', 'alpha', 'Créer un compte', 'x'.repeat(rng.range(1, 40)), '{"a":1}', 'tab\there', '東京', 'a"b\\c']));
    case 'fixed':
      return q('abcdefghijklmnopqrstuvwxyz'.slice(0, rng.range(0, shape.bits)));
    case 'int': {
      const max = shape.bits >= 53 ? 2 ** 52 : shape.signed ? 2 ** (shape.bits - 1) - 1 : 2 ** shape.bits - 1;
      const v = rng.range(shape.signed ? -Math.min(max, 2 ** 31) : 0, Math.min(max, 2 ** 31));
      return String(v);
    }
    case 'float':
      return rng.chance(0.3) ? String(rng.range(-1000, 1000)) : String(Math.round((rng.float() - 0.5) * 1e6) / 1000);
    case 'bool':
      return rng.chance(0.5) ? 'true' : 'false';
    case 'uuid':
      return q(uuidOf(rng));
    case 'enum':
      return q(rng.pick(shape.names));
    case 'date':
      return q(civil(rng.range(0, 2_000_000_000)).slice(0, 10));
    case 'datetime':
      return q(civil(rng.range(0, 4_000_000_000)));
    case 'datetime64': {
      const text = civil(rng.range(0, 4_000_000_000));
      return shape.bits === 0 ? q(text) : q(`${text}.${String(rng.u32()).padStart(10, '0').slice(0, shape.bits)}`);
    }
    case 'array': {
      const element = shape.element ?? typeShape('String');
      const items: Piece[] = [];
      for (let i = rng.int(4); i > 0; i--) items.push(validValue(element, rng));
      return concat(['[', ...items.flatMap((item, i) => (i === 0 ? [item] : [',', item])), ']']);
    }
    case 'map': {
      const items: Piece[] = [];
      for (let i = rng.int(3); i > 0; i--) items.push(q(`k${i}`), ':', validValue(shape.element ?? typeShape('String'), rng));
      const pairs: Piece[] = [];
      for (let i = 0; i < items.length; i += 3) pairs.push(...(i === 0 ? [] : [',']), ...items.slice(i, i + 3));
      return concat(['{', ...pairs, '}']);
    }
    default:
      return '""';
  }
}

/** An interesting raw JSON value for a column of this shape: its type's corpus, sometimes a generic one. */
export function pickValue(shape: TypeShape, rng: Rng, genericShare = 0.1): Piece {
  if (rng.chance(genericShare)) return rng.pick(GENERIC);
  switch (shape.kind) {
    case 'string':
      return rng.pick(STRINGS);
    case 'fixed': {
      const n = shape.bits;
      return rng.pick([
        q('a'.repeat(n)),
        q('a'.repeat(Math.max(0, n - 1))),
        q('a'.repeat(n + 1)),
        q('é'.repeat(Math.ceil(n / 2))),
        q('é'.repeat(n)),
        q(`\u0000${'b'.repeat(Math.max(0, n - 1))}`),
        '""',
        '1234',
        q('1234'),
        'true',
        rng.pick(STRINGS),
      ]);
    }
    case 'int':
      return rng.pick(intCorpus(shape.bits, shape.signed));
    case 'float':
      return rng.pick(FLOATS);
    case 'bool':
      return rng.pick(BOOLS);
    case 'uuid':
      return rng.pick(uuidCorpus(uuidOf(rng)));
    case 'enum':
      return rng.pick(enumCorpus(shape));
    case 'date':
    case 'datetime':
    case 'datetime64':
      return rng.pick(dateTimeCorpus(rng));
    case 'array':
      return rng.pick(arrayCorpus(shape, rng));
    case 'map':
      return rng.pick(mapCorpus(shape, rng));
    default:
      return rng.pick(GENERIC);
  }
}

/** A value shown in a message: JSON text, invalid UTF-8 bytes as \xNN, long values cut. */
export function show(piece: Piece, max = 120): string {
  const buffer = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece;
  let text = '';
  const decoded = buffer.toString('utf8');
  text = Buffer.from(decoded, 'utf8').equals(buffer) ? decoded : [...buffer].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
  return text.length > max ? `${text.slice(0, max)}…(${buffer.length} bytes)` : text;
}
