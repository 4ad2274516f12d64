// Owns the integer and Bool column writers: ClickHouse's readIntText as its JSON input calls it —
// optional quotes, one optional sign, digits, wrapping silently modulo 2^bits (ClickHouse does not
// check overflow there), `true`/`false` read as 1/0, `""` read as 0 — and RowBinary's little-endian
// fixed-width integers.
import type { ColumnWriter } from './column-writer.ts';
import { isNull } from './column-writer.ts';
import { isDigit, QUOTE, ValueError } from './json-text.ts';
import type { RowBuffer } from './row-buffer.ts';

/** The result of the last readInteger: low and high 32-bit halves of the value modulo 2^64. */
const parsed = { lo: 0, hi: 0, negative: false, empty: false };

const TWO32 = 4294967296;

/**
 * Reads sign and digits in [start, end) into `parsed` (modulo 2^64); `end` must be where the
 * number ends, else ValueError. `empty`: no sign and no digits (ClickHouse reads 0).
 */
export function readInteger(src: Buffer, start: number, end: number, signed: boolean, quoted: boolean): void {
  let i = start;
  let negative = false;
  let hasSign = false;
  const c = src[i];
  if (c === 0x2d) {
    if (!signed) throw new ValueError("Unsigned type must not contain '-' symbol");
    negative = true;
    hasSign = true;
    i++;
  } else if (c === 0x2b) {
    hasSign = true;
    i++;
  }
  const digitsStart = i;
  while (i < end && isDigit(src[i])) i++;
  const digits = i - digitsStart;
  if (hasSign && digits === 0) {
    if (i < end && src[i] === 0x2d && !signed) throw new ValueError("Unsigned type must not contain '-' symbol");
    throw new ValueError('Cannot parse number without any digits');
  }
  if (i < end) {
    if (src[i] === 0x2d && !signed) throw new ValueError("Unsigned type must not contain '-' symbol");
    throw new ValueError(`Cannot parse input: expected '${quoted ? '"' : ','}' before: '${src.toString('utf8', i, Math.min(end, i + 16))}'`);
  }
  parsed.negative = negative;
  parsed.empty = digits === 0;
  if (digits <= 15) {
    let v = 0;
    for (let k = digitsStart; k < i; k++) v = v * 10 + ((src[k] ?? 0) - 0x30);
    if (negative) v = -v;
    parsed.lo = v >>> 0;
    parsed.hi = Math.floor(v / TWO32) >>> 0;
    return;
  }
  let v = BigInt(src.toString('latin1', digitsStart, i));
  if (negative) v = -v;
  v = BigInt.asUintN(64, v);
  parsed.lo = Number(v & 0xffffffffn);
  parsed.hi = Number(v >> 32n);
}

/** Reads `true`/`false` at [start, end) exactly, else ValueError. */
function readBoolWord(src: Buffer, start: number, end: number): number {
  if (end - start === 4 && src.toString('latin1', start, end) === 'true') return 1;
  if (end - start === 5 && src.toString('latin1', start, end) === 'false') return 0;
  throw new ValueError('Cannot parse boolean value here: expected true or false');
}

/** ClickHouse's JSON integer read into `parsed`: optional quotes, true/false, null (0). */
export function readJsonInteger(src: Buffer, start: number, end: number, signed: boolean): void {
  let a = start;
  let b = end;
  const quoted = src[a] === QUOTE;
  if (quoted) {
    a++;
    b--;
  } else if (isNull(src, a, b)) {
    parsed.lo = 0;
    parsed.hi = 0;
    return;
  }
  const c = src[a];
  if (c === 0x74 || c === 0x66) {
    parsed.lo = readBoolWord(src, a, b);
    parsed.hi = 0;
    return;
  }
  readInteger(src, a, b, signed, quoted);
}

export class IntWriter implements ColumnWriter {
  readonly type: string;
  readonly nullable = false;
  /** The width in bytes. */
  readonly bytes: number;
  readonly #signed: boolean;

  constructor(type: string, bits: number, signed: boolean) {
    this.type = type;
    this.bytes = bits / 8;
    this.#signed = signed;
  }

  json(out: RowBuffer, src: Buffer, start: number, end: number): void {
    readJsonInteger(src, start, end, this.#signed);
    writeFixed(out, this.bytes, parsed.lo, parsed.hi);
  }

  zero(out: RowBuffer): void {
    writeFixed(out, this.bytes, 0, 0);
  }

  typeDefault(out: RowBuffer): void {
    writeFixed(out, this.bytes, 0, 0);
  }
}

/** The low `bytes` bytes of the 64-bit value (lo, hi), little-endian: wrapping to the width. */
export function writeFixed(out: RowBuffer, bytes: number, lo: number, hi: number): void {
  switch (bytes) {
    case 1:
      out.u8(lo & 0xff);
      return;
    case 2:
      out.u16(lo & 0xffff);
      return;
    case 4:
      out.u32(lo);
      return;
    default:
      out.u64(lo, hi);
  }
}

/** The last integer read (modulo 2^64, as 32-bit halves). */
export function lastParsed(): { readonly lo: number; readonly hi: number } {
  return parsed;
}

/** The value of the last read as a signed integer of `bits` bits (for enums). */
export function parsedAsSigned(bits: number): number {
  if (bits === 8) return (parsed.lo << 24) >> 24;
  return (parsed.lo << 16) >> 16;
}

/** Bool: unquoted true/false/1/0 only (ClickHouse: "Invalid boolean value"). */
export class BoolWriter implements ColumnWriter {
  readonly type: string;
  readonly nullable = false;

  constructor(type: string) {
    this.type = type;
  }

  json(out: RowBuffer, src: Buffer, start: number, end: number): void {
    if (isNull(src, start, end)) {
      out.u8(0);
      return;
    }
    const c = src[start];
    if (end - start === 1 && (c === 0x30 || c === 0x31)) {
      out.u8(c - 0x30);
      return;
    }
    if (c === 0x74 || c === 0x66) {
      out.u8(readBoolWord(src, start, end));
      return;
    }
    const shown = c === undefined ? '' : String.fromCharCode(c);
    throw new ValueError(`Invalid boolean value, should be true/false, 1/0, but it starts with the '${shown}' character`);
  }

  zero(out: RowBuffer): void {
    out.u8(0);
  }

  typeDefault(out: RowBuffer): void {
    out.u8(0);
  }
}
