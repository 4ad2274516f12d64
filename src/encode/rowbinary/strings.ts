// Owns the String, FixedString, UUID and Enum column writers. String takes any JSON value the way
// ClickHouse's JSON input does with its default settings (read_numbers/bools/objects/arrays_as_strings):
// a string's unescaped content, any other value's JSON text as written. FixedString, UUID and Enum
// take strings (enums also their numbers).
import type { ColumnWriter } from './column-writer.ts';
import { isNull } from './column-writer.ts';
import { readInteger, readJsonInteger, parsedAsSigned } from './integers.ts';
import { hasNoEscape, jsonNumberEnd, QUOTE, rawValueEnd, unescape, unescaped, ValueError } from './json-text.ts';
import type { RowBuffer } from './row-buffer.ts';

/** Writes the String value of a JSON value: varint length, bytes. */
export function writeJsonAsString(out: RowBuffer, src: Buffer, start: number, end: number): void {
  const c = src[start];
  if (c === QUOTE) {
    if (hasNoEscape(src, start, end)) out.string(src, start + 1, end - 1);
    else {
      const length = unescape(src, start, end);
      out.string(unescaped(), 0, length);
    }
    return;
  }
  if (c === 0x7b || c === 0x5b) {
    // Objects and arrays are kept as their text: ClickHouse checks their structure, not the
    // escapes inside their strings.
    if (rawValueEnd(src, start, end) !== end) throw new ValueError('Cannot parse JSON object or array here');
    out.string(src, start, end);
    return;
  }
  if (isNull(src, start, end)) {
    out.u8(0);
    return;
  }
  if ((end - start === 4 && src.toString('latin1', start, end) === 'true') || (end - start === 5 && src.toString('latin1', start, end) === 'false')) {
    out.string(src, start, end);
    return;
  }
  if (jsonNumberEnd(src, start, end) === end) {
    out.string(src, start, end);
    return;
  }
  throw new ValueError(`Cannot parse JSON value '${src.toString('utf8', start, Math.min(end, start + 20))}' as a string`);
}

export class StringWriter implements ColumnWriter {
  readonly type: string;
  readonly nullable = false;

  constructor(type: string) {
    this.type = type;
  }

  json(out: RowBuffer, src: Buffer, start: number, end: number): void {
    writeJsonAsString(out, src, start, end);
  }

  zero(out: RowBuffer): void {
    out.u8(0);
  }

  typeDefault(out: RowBuffer): void {
    out.u8(0);
  }
}

export class FixedStringWriter implements ColumnWriter {
  readonly type: string;
  readonly nullable = false;
  readonly #n: number;

  constructor(type: string, n: number) {
    this.type = type;
    this.#n = n;
  }

  json(out: RowBuffer, src: Buffer, start: number, end: number): void {
    if (isNull(src, start, end)) return this.zero(out);
    if (src[start] !== QUOTE) throw new ValueError('Cannot parse JSON string: expected opening quote');
    let content: Buffer = src;
    let a = start + 1;
    let b = end - 1;
    if (!hasNoEscape(src, start, end)) {
      b = unescape(src, start, end);
      content = unescaped();
      a = 0;
    }
    if (b - a > this.#n) throw new ValueError(`Too large value for ${this.type}`);
    out.bytes(content, a, b);
    for (let k = b - a; k < this.#n; k++) out.u8(0);
  }

  zero(out: RowBuffer): void {
    out.ensure(this.#n);
    out.buf.fill(0, out.pos, out.pos + this.#n);
    out.pos += this.#n;
  }

  typeDefault(out: RowBuffer): void {
    this.zero(out);
  }
}

function hexValue(b: number | undefined): number {
  if (b === undefined) return -1;
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  return -1;
}

const uuidBytes = Buffer.alloc(16);

/** UUID: 36 characters with dashes at 8, 13, 18, 23, or 32 hexadecimal digits; RowBinary as two little-endian UInt64. */
export class UuidWriter implements ColumnWriter {
  readonly type: string;
  readonly nullable = false;

  constructor(type: string) {
    this.type = type;
  }

  json(out: RowBuffer, src: Buffer, start: number, end: number): void {
    if (isNull(src, start, end)) return this.zero(out);
    if (src[start] !== QUOTE) throw new ValueError(`Cannot parse input: expected '"' before: '${src.toString('utf8', start, Math.min(end, start + 16))}'`);
    const a = start + 1;
    const n = end - 1 - a;
    let k = 0;
    let ok = n === 36 || n === 32;
    if (ok && n === 36) ok = src[a + 8] === 0x2d && src[a + 13] === 0x2d && src[a + 18] === 0x2d && src[a + 23] === 0x2d;
    for (let i = 0; ok && i < n; i++) {
      if (n === 36 && (i === 8 || i === 13 || i === 18 || i === 23)) continue;
      const hi = hexValue(src[a + i]);
      const lo = hexValue(src[a + i + 1]);
      if (hi < 0 || lo < 0) ok = false;
      else {
        // Bytes 0..7 go reversed into the first UInt64, 8..15 into the second.
        uuidBytes[k < 8 ? 7 - k : 23 - k] = hi * 16 + lo;
        k++;
        i++;
      }
    }
    if (!ok || k !== 16) throw new ValueError(`Cannot parse UUID: expected 32 hexadecimal digits, or 36 characters with dashes at positions 8, 13, 18, 23`);
    out.bytes(uuidBytes, 0, 16);
  }

  zero(out: RowBuffer): void {
    out.u64(0, 0);
    out.u64(0, 0);
  }

  typeDefault(out: RowBuffer): void {
    this.zero(out);
  }
}

export interface EnumEntry {
  readonly name: string;
  readonly value: number;
}

/** Enum8/Enum16: by name, or by number (quoted or not) when it is one of the values. */
export class EnumWriter implements ColumnWriter {
  readonly type: string;
  readonly nullable = false;
  readonly #bits: 8 | 16;
  readonly #names: readonly Buffer[];
  readonly #values: readonly number[];
  readonly #valid: ReadonlySet<number>;
  readonly #default: number;

  constructor(type: string, bits: 8 | 16, entries: readonly EnumEntry[]) {
    this.type = type;
    this.#bits = bits;
    this.#names = entries.map((e) => Buffer.from(e.name, 'utf8'));
    this.#values = entries.map((e) => e.value);
    this.#valid = new Set(this.#values);
    this.#default = Math.min(...this.#values);
  }

  #put(out: RowBuffer, value: number): void {
    if (this.#bits === 8) out.u8(value & 0xff);
    else out.u16(value & 0xffff);
  }

  json(out: RowBuffer, src: Buffer, start: number, end: number): void {
    if (isNull(src, start, end)) return this.zero(out);
    if (src[start] !== QUOTE) {
      if (src[start] === 0x74 || src[start] === 0x66) throw new ValueError(`Cannot parse input: expected ',' before: '${src.toString('utf8', start, end)}'`);
      readJsonInteger(src, start, end, true);
      const value = parsedAsSigned(this.#bits);
      if (!this.#valid.has(value)) throw new ValueError(`Unexpected value ${value} in enum`);
      return this.#put(out, value);
    }
    let content: Buffer = src;
    let a = start + 1;
    let b = end - 1;
    if (!hasNoEscape(src, start, end)) {
      b = unescape(src, start, end);
      content = unescaped();
      a = 0;
    }
    for (let i = 0; i < this.#names.length; i++) {
      const name = this.#names[i] as Buffer;
      if (name.length === b - a && content.compare(name, 0, name.length, a, b) === 0) return this.#put(out, this.#values[i] as number);
    }
    let value: number | undefined;
    try {
      if (b > a) {
        readInteger(content, a, b, true, true);
        value = parsedAsSigned(this.#bits);
      }
    } catch {
      value = undefined;
    }
    if (value === undefined || !this.#valid.has(value)) throw new ValueError(`Unknown element '${content.toString('utf8', a, Math.min(b, a + 40))}' for enum`);
    this.#put(out, value);
  }

  zero(out: RowBuffer): void {
    this.#put(out, 0);
  }

  typeDefault(out: RowBuffer): void {
    this.#put(out, this.#default);
  }
}
