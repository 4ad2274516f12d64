// Owns the messages of the typed-encoding differential test: a message as its top-level fields in
// raw text, the seeded mutator that rewrites them (missing, unknown, null, wrong-typed, escaped,
// upper-cased or duplicated keys, metadata names, shuffled fields, whitespace between tokens), and
// the cases of a table (generated PostHog messages and mutated ones, valid rows of any columns), each
// with Kafka metadata of its own.
import { generate, Rng } from '../../dev/posthog/generator.ts';
import type { SourceRecord } from '../../src/source/types.ts';
import { concat, GENERIC, pickValue, q, show, typeShape, validValue, type Piece, type TypeShape } from './typed-differential-values.ts';

/** One top-level field of a message as raw text: the key with its quotes, and the value. */
export interface Entry {
  key: Piece;
  value: Piece;
}

/** The top-level fields of a well-formed JSON object message, in order, as raw text. */
export function entriesOf(message: Buffer): Entry[] {
  const object = JSON.parse(message.toString('utf8')) as Record<string, unknown>;
  return Object.entries(object).map(([key, value]) => ({ key: q(key), value: JSON.stringify(value) }));
}

const SPACES = [' ', '\t', '\n', '\r\n', '  ', ' \t '];

/** The message bytes: `{"k":v,...}`, with whitespace between tokens when `spaced`. */
export function assemble(entries: readonly Entry[], rng: Rng | undefined): Buffer {
  const ws = (): string => (rng === undefined || !rng.chance(0.5) ? '' : rng.pick(SPACES));
  const parts: Piece[] = ['{', ws()];
  entries.forEach((entry, i) => {
    if (i > 0) parts.push(ws(), ',', ws());
    parts.push(entry.key, ws(), ':', ws(), entry.value);
  });
  parts.push(ws(), '}');
  const out = concat(parts);
  return typeof out === 'string' ? Buffer.from(out, 'utf8') : out;
}

export interface MutableColumn {
  readonly name: string;
  readonly shape: TypeShape;
}

const METADATA_FIELDS = ['_offset', '_timestamp', '_partition', '_key', '_topic', '_timestamp_ms', '_headers.name'];
const UNKNOWN_KEYS = [
  'project_id',
  'captured_at',
  'extra',
  '',
  'Event',
  '$set',
  'nested.field',
  'été',
  '\u0000',
  'team_i',
  'team_idx',
  'team_id ',
  ' team_id',
  'uuid\u0000',
  '_headers',
  '_headers.Name',
  '\ud800x',
  'a\udc00',
];

function escapeKey(name: string): string {
  // One character of the key as a \uXXXX escape.
  if (name.length === 0) return '""';
  const i = name.length > 1 ? 1 : 0;
  const code = name.charCodeAt(i).toString(16).padStart(4, '0');
  return `"${name.slice(0, i)}\\u${code}${name.slice(i + 1)}"`;
}

/**
 * Rewrites `entries` with `count` random mutations drawn for `columns` and returns what was done,
 * one `field := value` (or `-field`, `+unknown`…) per mutation; `extraKeys` are names that are
 * not input fields but sound like them (MATERIALIZED or ALIAS columns). One in ten asks for
 * whitespace between tokens (returned as `spaced`).
 */
export function mutate(entries: Entry[], columns: readonly MutableColumn[], extraKeys: readonly string[], rng: Rng, count: number): { what: string[]; spaced: boolean } {
  const what: string[] = [];
  let spaced = false;
  const keyName = (column: MutableColumn): string => q(column.name);
  const find = (column: MutableColumn): number => entries.findIndex((e) => e.key === keyName(column));
  const set = (column: MutableColumn, value: Piece): void => {
    const i = find(column);
    if (i >= 0) entries[i] = { key: keyName(column), value };
    else entries.splice(rng.int(entries.length + 1), 0, { key: keyName(column), value });
    what.push(`${column.name} := ${show(value, 80)}`);
  };
  for (let n = 0; n < count; n++) {
    const column = rng.pick(columns);
    const roll = rng.float();
    if (roll < 0.5) set(column, pickValue(column.shape, rng, 0));
    else if (roll < 0.6) set(column, rng.pick(GENERIC));
    else if (roll < 0.7) {
      const i = find(column);
      if (i >= 0) entries.splice(i, 1);
      what.push(`-${column.name}`);
    } else if (roll < 0.76) set(column, 'null');
    else if (roll < 0.84) {
      const key = rng.pick(extraKeys.length > 0 && rng.chance(0.3) ? extraKeys : UNKNOWN_KEYS);
      const value = rng.chance(0.5) ? pickValue(typeShape(rng.pick(['String', 'Int64', 'DateTime', 'Array(String)', 'Map(String, String)'])), rng) : rng.pick(GENERIC);
      entries.splice(rng.int(entries.length + 1), 0, { key: q(key), value });
      what.push(`+${JSON.stringify(key)} = ${show(value, 60)}`);
    } else if (roll < 0.89) {
      const i = find(column);
      const value = rng.chance(0.5) && i >= 0 ? (entries[i]?.value ?? 'null') : validValue(column.shape, rng);
      entries.splice(rng.int(entries.length + 1), 0, { key: keyName(column), value });
      what.push(`duplicate ${column.name} = ${show(value, 60)}`);
    } else if (roll < 0.93) {
      const i = find(column);
      if (i >= 0) {
        const entry = entries[i] as Entry;
        entries[i] = { key: escapeKey(column.name), value: entry.value };
        what.push(`key ${column.name} escaped as ${escapeKey(column.name)}`);
      }
    } else if (roll < 0.95) {
      const i = find(column);
      if (i >= 0) {
        const entry = entries[i] as Entry;
        entries[i] = { key: q(column.name.toUpperCase()), value: entry.value };
        what.push(`key ${column.name} upper-cased`);
      }
    } else if (roll < 0.97) {
      const name = rng.pick(METADATA_FIELDS);
      const value = rng.pick(['1', '"7"', '0', '[]', '"2024-01-02 03:04:05"', 'null']);
      entries.splice(rng.int(entries.length + 1), 0, { key: q(name), value });
      what.push(`+${name} = ${value} (a metadata column's name)`);
    } else if (roll < 0.985) {
      // One character of a quoted value (a date, a number, a UUID, an enum name…) as a \u escape.
      const i = find(column);
      const entry = i >= 0 ? entries[i] : undefined;
      const value = entry === undefined || typeof entry.value !== 'string' ? '' : entry.value;
      if (entry !== undefined && value.length > 2 && value.startsWith('"') && !value.includes('\\')) {
        const at = 1 + rng.int(value.length - 2);
        const escaped = `${value.slice(0, at)}\\u${value.charCodeAt(at).toString(16).padStart(4, '0')}${value.slice(at + 1)}`;
        entries[i] = { key: entry.key, value: escaped };
        what.push(`${column.name} := ${show(escaped, 80)} (a character escaped)`);
      }
    } else {
      for (let i = entries.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [entries[i], entries[j]] = [entries[j] as Entry, entries[i] as Entry];
      }
      what.push('fields shuffled');
    }
  }
  if (rng.chance(0.1)) {
    spaced = true;
    what.push('whitespace between tokens');
  }
  return { what, spaced };
}

// ---------------------------------------------------------------------------------------------
// Cases: an input message with its Kafka metadata

/** One row to insert both ways: its record (value = the input, offset unique in its table) and how it was made. */
export interface DiffCase {
  readonly record: SourceRecord;
  readonly what: readonly string[];
}

const HEADER_TEXT: readonly Buffer[] = [
  Buffer.from('source'),
  Buffer.from('posthog'),
  Buffer.from(''),
  Buffer.from('é東京😀'),
  Buffer.from('quote"back\\slash'),
  Buffer.from([0x01, 0x0a, 0x09]),
  Buffer.from([0xff, 0xfe, 0x41]),
  Buffer.from([0xc3]),
];
/** -1: a record without a time (Kafka's producers before message format v1). */
const KAFKA_TIMESTAMPS = [-1n, 0n, 1n, 999n, 1_000n, 4_294_967_295_000n, 4_294_967_296_000n, 4_294_967_295_999n, 9_999_999_999_999n, 253_402_300_799_999n];

/** Kafka metadata of one record: partition, timestamp (mostly 2030, sometimes at the types' edges), key, headers. */
export function recordFor(topic: string, offset: bigint, value: Buffer, rng: Rng): SourceRecord {
  const timestamp = rng.chance(0.93) ? BigInt(Date.UTC(2030, 0, 1) + rng.int(86_400_000 * 30)) : rng.pick(KAFKA_TIMESTAMPS);
  const roll = rng.float();
  const key = roll < 0.4 ? undefined : roll < 0.7 ? Buffer.from(`k-${offset}`) : rng.pick(HEADER_TEXT);
  const headers: Array<readonly [Buffer, Buffer]> = [];
  for (let n = rng.chance(0.6) ? 0 : rng.range(1, 3); n > 0; n--) headers.push([rng.pick(HEADER_TEXT), rng.pick(HEADER_TEXT)]);
  return { topic, partition: rng.int(64), offset, timestamp, key, value, headers, epoch: 0 };
}

export interface CaseCounts {
  /** Generated messages as they are, over three seeds. */
  readonly generated: number;
  /** Generated messages with one to three mutations. */
  readonly mutated: number;
}

/**
 * Cases for a PostHog table: its topic's generated messages (seeds `seed`, `seed + 1`, `seed + 2`,
 * passed through byte for byte) and mutated copies of them. Offsets start at `firstOffset`.
 */
export function posthogCases(topic: string, columns: readonly MutableColumn[], extraKeys: readonly string[], seed: number, counts: CaseCounts, firstOffset = 1000n): DiffCase[] {
  const rng = new Rng(seed ^ 0x5eed);
  const base: Buffer[] = [];
  const perSeed = Math.ceil(counts.generated / 3);
  for (let s = 0; s < 3; s++) {
    for (const m of generate(topic, { seed: seed + s, count: perSeed, teams: 50, bigRecordingFraction: 0.01 })) base.push(Buffer.from(m.value));
  }
  const cases: DiffCase[] = [];
  let offset = firstOffset;
  for (const value of base.slice(0, counts.generated)) cases.push({ record: recordFor(topic, offset++, value, rng), what: ['generated'] });
  const small = base.filter((b) => b.length < 100_000);
  for (let i = 0; i < counts.mutated && small.length > 0; i++) {
    const entries = entriesOf(rng.pick(small));
    const { what, spaced } = mutate(entries, columns, extraKeys, rng, rng.pick([1, 1, 1, 2, 3]));
    cases.push({ record: recordFor(topic, offset++, assemble(entries, spaced ? rng : undefined), rng), what });
  }
  return shuffled(cases, rng);
}

/** Cases for any table: valid rows of its `columns` (a few fields left out), then mutated ones. */
export function columnCases(topic: string, columns: readonly MutableColumn[], extraKeys: readonly string[], seed: number, counts: CaseCounts, firstOffset = 1000n): DiffCase[] {
  const rng = new Rng(seed ^ 0xc01);
  const cases: DiffCase[] = [];
  let offset = firstOffset;
  const valid = (): Entry[] => columns.filter(() => !rng.chance(0.05)).map((c) => ({ key: q(c.name), value: validValue(c.shape, rng) }));
  for (let i = 0; i < counts.generated; i++) cases.push({ record: recordFor(topic, offset++, assemble(valid(), undefined), rng), what: ['valid'] });
  for (let i = 0; i < counts.mutated; i++) {
    const entries = valid();
    const { what, spaced } = mutate(entries, columns, extraKeys, rng, rng.pick([1, 1, 1, 2, 3]));
    cases.push({ record: recordFor(topic, offset++, assemble(entries, spaced ? rng : undefined), rng), what });
  }
  return shuffled(cases, rng);
}

/**
 * The cases in a seeded random order: generated and mutated rows interleave, so an encoder's state
 * carried from one row to the next (scratch buffers, the key positions of the last row) meets every
 * change of shape.
 */
function shuffled(cases: DiffCase[], rng: Rng): DiffCase[] {
  for (let i = cases.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [cases[i], cases[j]] = [cases[j] as DiffCase, cases[i] as DiffCase];
  }
  return cases;
}

/** A case from a hand-written message (raw bytes), for regressions and the harness's self-test. */
export function handCase(topic: string, offset: bigint, value: Piece, what: string, metadata: Partial<Pick<SourceRecord, 'key' | 'headers' | 'timestamp'>> = {}): DiffCase {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return { record: { topic, partition: 0, offset, timestamp: BigInt(Date.UTC(2030, 0, 1)), key: undefined, value: bytes, headers: [], epoch: 0, ...metadata }, what: [what] };
}
