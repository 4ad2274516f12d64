// Owns the direct writers of object-row field values (decode/row.ts FieldValue) into a column, chosen
// once per column writer: the value's RowBinary bytes without rendering it as JSON text first. Each
// writes only what ClickHouse's JSON input would read the same from the value's JSON form
// (ObjectRowType.toJson) — integers into Int*/UInt* (wrapping to the width as ClickHouse does),
// Bool, UUID text, Enum names and numbers, strings into String/FixedString, Timestamps into
// DateTime/DateTime64, arrays of these, null into Nullable — and declines anything else (returns
// false having written nothing): a value that would be refused, or one it does not cover, then takes
// the JSON path (object-row.ts), which refuses it with the same message as before.
import { isUtf8 } from 'node:buffer';
import type { FieldValue } from '../../decode/row.ts';
import type { ColumnWriter } from './column-writer.ts';
import { isUtcZone } from './dates.ts';
import { writeFixed } from './integers.ts';
import type { RowBuffer } from './row-buffer.ts';
import { DateTime64Field, DateTimeField } from './timestamp-fields.ts';
import { parseType, type TypeNode } from './type-parser.ts';
import { INTS } from './writers.ts';

export interface FieldWriter {
  /**
   * Writes a present value (not undefined; null only when the column is nullable) and returns true,
   * or writes nothing and returns false: the JSON path then writes or refuses it.
   */
  write(out: RowBuffer, value: FieldValue): boolean;
}

const TWO32 = 4294967296;
/** Declines every value: the column is written through the JSON path. */
class JsonOnly implements FieldWriter {
  write(): boolean {
    return false;
  }
}

const JSON_ONLY = new JsonOnly();

/**
 * A number or bigint as a safe integer, else NaN. Larger doubles print with an exponent or rounded
 * digits (the JSON path reads that text); a bigint converts exactly when safe, and a larger magnitude
 * converts to at least 2^53, never to a safe integer.
 */
function safeInteger(value: FieldValue): number {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : NaN;
  if (typeof value === 'bigint') {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : NaN;
  }
  return NaN;
}

/** Int8…UInt64: safe integers and bigints (modulo 2^bits), booleans as 1/0; a sign into UInt* declined. */
class IntField implements FieldWriter {
  readonly #bytes: number;
  readonly #signed: boolean;

  constructor(bits: number, signed: boolean) {
    this.#bytes = bits / 8;
    this.#signed = signed;
  }

  write(out: RowBuffer, value: FieldValue): boolean {
    const n = safeInteger(value);
    if (!Number.isNaN(n)) {
      if (n < 0 && !this.#signed) return false;
      writeFixed(out, this.#bytes, n >>> 0, Math.floor(n / TWO32) >>> 0);
      return true;
    }
    if (typeof value === 'boolean') {
      writeFixed(out, this.#bytes, value ? 1 : 0, 0);
      return true;
    }
    if (typeof value !== 'bigint' || (value < 0n && !this.#signed)) return false;
    const v = BigInt.asUintN(64, value);
    writeFixed(out, this.#bytes, Number(v & 0xffffffffn), Number(v >> 32n));
    return true;
  }
}

/** Bool: booleans, and the numbers 0 and 1. */
class BoolField implements FieldWriter {
  write(out: RowBuffer, value: FieldValue): boolean {
    if (typeof value === 'boolean') out.u8(value ? 1 : 0);
    else if (value === 0 || value === 1 || value === 0n || value === 1n) out.u8(value === 1 || value === 1n ? 1 : 0);
    else return false;
    return true;
  }
}

/** Hexadecimal digit values by character code below 128; -1: not a digit. */
const HEX = new Int8Array(128).fill(-1);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[0x61 + c] = 10 + c;
  HEX[0x41 + c] = 10 + c;
}
/** Where each byte's two digits start: with dashes at 8, 13, 18, 23, and without. */
const DASHED = Uint8Array.from([0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34]);
const PLAIN = Uint8Array.from([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30]);
/** Where byte k goes: bytes 0..7 reversed into the first UInt64, 8..15 into the second. */
const UUID_ORDER = Uint8Array.from([7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8]);

function hexDigit(c: number): number {
  return c < 128 ? (HEX[c] as number) : -1;
}

/** UUID from its text (36 characters with dashes at 8, 13, 18, 23, or 32 hexadecimal digits). */
class UuidField implements FieldWriter {
  write(out: RowBuffer, value: FieldValue): boolean {
    if (typeof value !== 'string') return false;
    const n = value.length;
    let starts: Uint8Array;
    if (n === 36) {
      if (value.charCodeAt(8) !== 0x2d || value.charCodeAt(13) !== 0x2d || value.charCodeAt(18) !== 0x2d || value.charCodeAt(23) !== 0x2d) return false;
      starts = DASHED;
    } else if (n === 32) starts = PLAIN;
    else return false;
    out.ensure(16);
    const buf = out.buf;
    const at = out.pos;
    for (let k = 0; k < 16; k++) {
      const i = starts[k] as number;
      const hi = hexDigit(value.charCodeAt(i));
      const lo = hexDigit(value.charCodeAt(i + 1));
      if (hi < 0 || lo < 0) return false; // nothing counted as written: pos has not moved
      buf[at + (UUID_ORDER[k] as number)] = (hi << 4) | lo;
    }
    out.pos = at + 16;
    return true;
  }
}

/** Enum8/Enum16: a name of the enum, or a number (modulo 2^bits, as the JSON read) that is one of its values. */
class EnumField implements FieldWriter {
  readonly #bits: 8 | 16;
  readonly #byName: ReadonlyMap<string, number>;
  readonly #valid: ReadonlySet<number>;

  constructor(bits: 8 | 16, entries: readonly { readonly name: string; readonly value: number }[]) {
    this.#bits = bits;
    const byName = new Map<string, number>();
    // The JSON path takes the first entry of a name.
    for (const e of entries) if (!byName.has(e.name)) byName.set(e.name, e.value);
    this.#byName = byName;
    this.#valid = new Set(entries.map((e) => e.value));
  }

  write(out: RowBuffer, value: FieldValue): boolean {
    let v: number | undefined;
    if (typeof value === 'string') v = this.#byName.get(value);
    else {
      const n = safeInteger(value);
      if (!Number.isNaN(n)) v = this.#wrapped(n);
    }
    if (v === undefined || !this.#valid.has(v)) return false;
    if (this.#bits === 8) out.u8(v & 0xff);
    else out.u16(v & 0xffff);
    return true;
  }

  /** The number read as a signed integer of the enum's width (what the JSON read keeps). */
  #wrapped(n: number): number {
    const lo = n >>> 0;
    return this.#bits === 8 ? (lo << 24) >> 24 : (lo << 16) >> 16;
  }
}

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');

/**
 * String (and LowCardinality(String)): text, bytes, integers' and booleans' JSON text. `strict`
 * (where the JSON path was taken before: Nullable and Array elements): text only when well-formed and
 * bytes only when valid UTF-8 — else their JSON text differs from them and that path decides.
 */
class StringField implements FieldWriter {
  readonly #strict: boolean;

  constructor(strict: boolean) {
    this.#strict = strict;
  }

  write(out: RowBuffer, value: FieldValue): boolean {
    switch (typeof value) {
      case 'string':
        if (this.#strict && !value.isWellFormed()) return false;
        out.text(value);
        return true;
      case 'bigint':
        out.text(value.toString());
        return true;
      case 'number':
        if (!Number.isSafeInteger(value)) return false;
        out.text(String(value));
        return true;
      case 'boolean': {
        const word = value ? TRUE : FALSE;
        out.string(word, 0, word.length);
        return true;
      }
    }
    if (value instanceof Uint8Array) {
      if (this.#strict && !isUtf8(value)) return false;
      out.string(value, 0, value.length);
      return true;
    }
    return false;
  }
}

/** Array(T): a JS array whose elements T's writer takes all (null only when T is nullable). */
class ArrayField implements FieldWriter {
  readonly #element: FieldWriter;
  readonly #nullable: boolean;

  constructor(element: FieldWriter, nullable: boolean) {
    this.#element = element;
    this.#nullable = nullable;
  }

  write(out: RowBuffer, value: FieldValue): boolean {
    if (!Array.isArray(value)) return false;
    const items = value as readonly FieldValue[];
    const at = out.pos;
    out.varUInt(items.length);
    for (let k = 0; k < items.length; k++) {
      const item = items[k];
      // A null element of a non-nullable type is its zero in the JSON path: left to it (rare).
      if (item === undefined || (item === null && !this.#nullable) || !this.#element.write(out, item)) {
        out.pos = at;
        return false;
      }
    }
    return true;
  }
}

/** FixedString(n): well-formed text of at most n UTF-8 bytes, zero-padded. */
class FixedStringField implements FieldWriter {
  readonly #n: number;

  constructor(n: number) {
    this.#n = n;
  }

  write(out: RowBuffer, value: FieldValue): boolean {
    // Longer text is refused by the JSON path; a lone surrogate is read there its own way.
    if (typeof value !== 'string' || value.length > this.#n || !value.isWellFormed()) return false;
    const n = this.#n;
    out.ensure(Math.max(n, value.length * 3));
    const at = out.pos;
    const written = out.buf.write(value, at, 'utf8');
    if (written > n) return false;
    out.buf.fill(0, at + written, at + n);
    out.pos = at + n;
    return true;
  }
}

/** Nullable(T): null as the null byte, else T's direct writer after a 0 byte. */
class NullableField implements FieldWriter {
  readonly #inner: FieldWriter;

  constructor(inner: FieldWriter) {
    this.#inner = inner;
  }

  write(out: RowBuffer, value: FieldValue): boolean {
    if (value === null) {
      out.u8(1);
      return true;
    }
    const at = out.pos;
    out.u8(0);
    if (this.#inner.write(out, value)) return true;
    out.pos = at;
    return false;
  }
}

/** The direct writer for values of `writer`'s column (built once per column writer). */
export function fieldWriterFor(writer: ColumnWriter): FieldWriter {
  let node: TypeNode;
  try {
    node = parseType(writer.type);
  } catch {
    return JSON_ONLY;
  }
  return build(node, writer.nullable, false);
}

/** LowCardinality(T) and SimpleAggregateFunction(f, T) are written as T. */
function unwrap(node: TypeNode): TypeNode {
  let n = node;
  for (;;) {
    const arg = n.name === 'LowCardinality' ? n.args[0] : n.name === 'SimpleAggregateFunction' ? n.args[1] : undefined;
    if (arg?.kind !== 'type') return n;
    n = arg.type;
  }
}

/**
 * `strict`: the values of a Nullable column or of array elements, which took the JSON path before
 * the direct writers: taken directly only where that path reads the same (a nullable DateTime never:
 * ClickHouse refuses the fraction of its text; DateTime64 Timestamps in years 1000–9999).
 */
function build(whole: TypeNode, nullable: boolean, strict: boolean): FieldWriter {
  const node = unwrap(whole);
  const { name, args } = node;
  if (name === 'Nullable') {
    const inner = args[0];
    // The column writer's own nullability decides whether null reaches it.
    if (!nullable || inner?.kind !== 'type' || args.length !== 1) return JSON_ONLY;
    return new NullableField(build(inner.type, false, true));
  }
  if (nullable) return JSON_ONLY;
  const int = INTS[name];
  if (int !== undefined && args.length === 0) return new IntField(int[0], int[1]);
  switch (name) {
    case 'String':
      return args.length === 0 ? new StringField(strict) : JSON_ONLY;
    case 'Bool':
      return new BoolField();
    case 'UUID':
      return new UuidField();
    case 'FixedString': {
      const n = args[0];
      return n?.kind === 'number' && n.value > 0 ? new FixedStringField(n.value) : JSON_ONLY;
    }
    case 'DateTime': {
      const zone = args[0];
      if (strict) return JSON_ONLY;
      return zone === undefined || (zone.kind === 'string' && isUtcZone(zone.value)) ? new DateTimeField() : JSON_ONLY;
    }
    case 'DateTime64': {
      const scale = args[0];
      const zone = args[1];
      if (scale?.kind !== 'number' || scale.value < 0 || scale.value > 9) return JSON_ONLY;
      return zone === undefined || (zone.kind === 'string' && isUtcZone(zone.value)) ? new DateTime64Field(scale.value, strict) : JSON_ONLY;
    }
    case 'Enum8':
    case 'Enum16': {
      const entries = [];
      for (const a of args) {
        if (a.kind !== 'enum') return JSON_ONLY;
        entries.push({ name: a.name, value: a.value });
      }
      return entries.length === 0 ? JSON_ONLY : new EnumField(name === 'Enum8' ? 8 : 16, entries);
    }
    case 'Array': {
      const element = args[0];
      if (element?.kind !== 'type' || args.length !== 1) return JSON_ONLY;
      const elementNullable = unwrap(element.type).name === 'Nullable';
      return new ArrayField(build(element.type, elementNullable, true), elementNullable);
    }
    default:
      return JSON_ONLY;
  }
}
