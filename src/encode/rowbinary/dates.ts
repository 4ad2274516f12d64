// Owns the Date, Date32, DateTime and DateTime64 column writers, reading JSON values as ClickHouse
// does under date_time_input_format=basic (ReadHelpers readDateTimeTextImpl/readDateTextImpl):
// quoted `YYYY-MM-DD hh:mm:ss[.f…]` (any non-digit separators, ' ' or 'T' before the time), quoted
// `YYYY-MM-DD`, quoted unix seconds of 5+ digits, unquoted integers (seconds for DateTime, ticks
// for DateTime64, days for Date). Time zones: UTC only (a zone with offsets is not covered).
// Forms whose result in ClickHouse depends on where the value falls in its read buffer (it reads
// 19 bytes ahead when it can) are refused rather than guessed; docs/design/typed-encoding.md.
import type { ColumnWriter } from './column-writer.ts';
import { isNull } from './column-writer.ts';
import { lastParsed, readJsonInteger } from './integers.ts';
import { isDigit, QUOTE, ValueError, BACKSLASH } from './json-text.ts';
import type { RowBuffer } from './row-buffer.ts';

/** Days since 1970-01-01 of a proleptic Gregorian date (month 1..12, day counted from the 1st, may overflow). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5);
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468 + (day - 1);
}

/** 1900-01-01, the day ClickHouse uses for a month or day out of range. */
const ERROR_DAY = daysFromCivil(1900, 1, 1);

/** ClickHouse's makeDateTime in UTC: seconds since the epoch (a month/day out of range is 1900-01-01). */
function makeDateTime(year: number, month: number, day: number, hour: number, minute: number, second: number): number {
  if (year === 0) return 0;
  const days = month < 1 || month > 12 || day < 1 || day > 31 ? ERROR_DAY : daysFromCivil(year, month, 1) + day - 1;
  return days * 86400 + hour * 3600 + minute * 60 + second;
}

function digit(src: Buffer, i: number): number {
  return (src[i] ?? 0) - 0x30;
}

function isSeparator(b: number | undefined): boolean {
  return b !== undefined && !isDigit(b) && b !== QUOTE && b !== BACKSLASH;
}

/** What the quoted date-time text held: whole seconds, and for DateTime64 the fraction's ticks. */
const dt = { seconds: 0, fraction: 0, hasFraction: false, unix: false, big: undefined as bigint | undefined };

const INT64_MAX = 9223372036854775807n;

const POW10 = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

/**
 * Reads the content [a, b) of a quoted DateTime/DateTime64 into `dt`. `scale` < 0: DateTime (no
 * fraction allowed).
 */
function readQuotedDateTime(src: Buffer, a: number, b: number, scale: number): void {
  const n = b - a;
  dt.fraction = 0;
  dt.hasFraction = false;
  dt.unix = false;
  dt.big = undefined;
  if (n === 0) throw new ValueError('Cannot parse DateTime');
  let i = a;
  if (n >= 10 && isDigit(src[a]) && isDigit(src[a + 1]) && isDigit(src[a + 2]) && isDigit(src[a + 3]) && isSeparator(src[a + 4])) {
    if (!(isDigit(src[a + 5]) && isDigit(src[a + 6]) && isSeparator(src[a + 7]) && isDigit(src[a + 8]) && isDigit(src[a + 9]))) {
      throw new ValueError(`Cannot parse DateTime ${src.toString('utf8', a, b)}: expected YYYY-MM-DD`);
    }
    const year = digit(src, a) * 1000 + digit(src, a + 1) * 100 + digit(src, a + 2) * 10 + digit(src, a + 3);
    const month = digit(src, a + 5) * 10 + digit(src, a + 6);
    const day = digit(src, a + 8) * 10 + digit(src, a + 9);
    let hour = 0;
    let minute = 0;
    let second = 0;
    i = a + 10;
    if (i < b) {
      const sep = src[i];
      if (sep !== 0x20 && sep !== 0x54) throw new ValueError(`Cannot parse input: expected '"' before: '${src.toString('utf8', i, b)}'`);
      const t = i + 1;
      if (!(
        b - t >= 8 &&
        isDigit(src[t]) &&
        isDigit(src[t + 1]) &&
        isSeparator(src[t + 2]) &&
        isDigit(src[t + 3]) &&
        isDigit(src[t + 4]) &&
        isSeparator(src[t + 5]) &&
        isDigit(src[t + 6]) &&
        isDigit(src[t + 7])
      )) {
        throw new ValueError(`Cannot parse time component of DateTime ${src.toString('utf8', t, b)}`);
      }
      hour = digit(src, t) * 10 + digit(src, t + 1);
      minute = digit(src, t + 3) * 10 + digit(src, t + 4);
      second = digit(src, t + 6) * 10 + digit(src, t + 7);
      i = t + 8;
    }
    dt.seconds = makeDateTime(year, month, day, hour, minute, second);
  } else {
    // Unix seconds: 5 to 19 digits (fewer: ClickHouse's result depends on its read buffer).
    while (i < b && isDigit(src[i])) i++;
    const digits = i - a;
    if (digits < 5) {
      if (digits === n) throw new ValueError(`Cannot parse DateTime ${src.toString('utf8', a, b)}: a unix timestamp has at least 5 digits`);
      throw new ValueError(`Cannot parse DateTime ${src.toString('utf8', a, Math.min(b, a + 30))}`);
    }
    if (digits > 19) throw new ValueError('Overflow while parsing a number');
    if (digits <= 15) {
      let v = 0;
      for (let k = a; k < i; k++) v = v * 10 + digit(src, k);
      dt.seconds = v;
    } else {
      const big = BigInt(src.toString('latin1', a, i));
      if (big > INT64_MAX) throw new ValueError('Overflow while parsing a number');
      dt.seconds = Number(big);
      dt.big = big;
    }
    dt.unix = true;
  }
  if (i < b && src[i] === 0x2e && scale >= 0) {
    i++;
    let fraction = 0;
    let k = 0;
    for (; k < scale && i < b && isDigit(src[i]); k++, i++) fraction = fraction * 10 + digit(src, i);
    for (; k < scale; k++) fraction *= 10;
    while (i < b && isDigit(src[i])) i++;
    dt.fraction = fraction;
    dt.hasFraction = true;
  }
  if (i !== b) throw new ValueError(`Cannot parse input: expected '"' before: '${src.toString('utf8', i, Math.min(b, i + 16))}'`);
}

const MAX_DATETIME = 4294967295;
/** 9999-12-31 23:59:59 UTC. */
const MAX_DATETIME64_SECONDS = 253402300799;

/** The time zone a column's values are read in is UTC (or one equal to it). */
export function isUtcZone(zone: string): boolean {
  return ['UTC', 'Etc/UTC', 'GMT', 'Etc/GMT', 'UCT', 'Etc/UCT', 'Universal', 'Etc/Universal', 'Zulu', 'Etc/Zulu', 'Etc/GMT0', 'Etc/GMT+0', 'Etc/GMT-0', 'GMT0', 'Greenwich', 'Etc/Greenwich'].includes(
    zone,
  );
}

/** DateTime (UInt32 seconds), clamped to [1970-01-01 00:00:00, 2106-02-07 06:28:15] as ClickHouse does. */
export class DateTimeWriter implements ColumnWriter {
  readonly type: string;
  readonly nullable = false;

  constructor(type: string) {
    this.type = type;
  }

  json(out: RowBuffer, src: Buffer, start: number, end: number): void {
    if (isNull(src, start, end)) return this.zero(out);
    let seconds: number;
    if (src[start] === QUOTE) {
      if (!isDigit(src[start + 1])) throw new ValueError('Cannot parse datetime');
      readQuotedDateTime(src, start + 1, end - 1, -1);
      seconds = dt.seconds;
    } else {
      if (src[start] === 0x74 || src[start] === 0x66) throw new ValueError(`Cannot parse input: expected ',' before: '${src.toString('utf8', start, end)}'`);
      readJsonInteger(src, start, end, true);
      seconds = signed64(parsedLo(), parsedHi());
    }
    out.u32(seconds < 0 ? 0 : seconds > MAX_DATETIME ? MAX_DATETIME : seconds);
  }

  zero(out: RowBuffer): void {
    out.u32(0);
  }

  typeDefault(out: RowBuffer): void {
    out.u32(0);
  }
}

/** DateTime64(scale): Int64 ticks. */
export class DateTime64Writer implements ColumnWriter {
  readonly type: string;
  readonly nullable = false;
  /** Decimal digits of the fraction of a second. */
  readonly scale: number;

  constructor(type: string, scale: number) {
    this.type = type;
    this.scale = scale;
  }

  json(out: RowBuffer, src: Buffer, start: number, end: number): void {
    if (isNull(src, start, end)) return this.zero(out);
    if (src[start] !== QUOTE) {
      // An unquoted integer is the raw tick count.
      if (src[start] === 0x74 || src[start] === 0x66) throw new ValueError(`Cannot parse input: expected ',' before: '${src.toString('utf8', start, end)}'`);
      readJsonInteger(src, start, end, true);
      out.u64(parsedLo(), parsedHi());
      return;
    }
    if (src[start + 1] === 0x2d) return this.#negative(out, src, start + 1, end - 1);
    readQuotedDateTime(src, start + 1, end - 1, this.scale);
    const scale = this.scale;
    // Whole seconds past 9999-12-31 23:59:59 without a fraction are ticks of the column's scale
    // already ("1234567890123" in DateTime64(3) is 2009-02-13 23:31:30.123; finding D4), else
    // seconds; the product must fit Int64 ("Decimal math overflow"). Checked on 26.7.
    if (dt.big === undefined && Math.abs(dt.seconds) < 9007199254 && scale <= 6) {
      out.i64(dt.seconds * (POW10[scale] ?? 1) + dt.fraction);
      return;
    }
    const whole = dt.big ?? BigInt(dt.seconds);
    let ticks: bigint;
    if (!dt.hasFraction && whole > BigInt(MAX_DATETIME64_SECONDS)) ticks = whole;
    else {
      ticks = whole * 10n ** BigInt(scale) + BigInt(dt.fraction);
      if (ticks > INT64_MAX || ticks < -INT64_MAX - 1n) throw new ValueError('Decimal math overflow');
    }
    const v = BigInt.asUintN(64, ticks);
    out.u64(Number(v & 0xffffffffn), Number(v >> 32n));
  }

  /**
   * A negative quoted timestamp [a, b) (`a` at its '-'). Taken only as `-dddd…[.f…]` with 4+ digits:
   * then ClickHouse's fast path (its 5th byte is a digit: read as an integer) and its careful path
   * agree, wherever the value falls in the read buffer; ticks are whole·10^scale − fraction (checked
   * on 26.7: "-12345.5" in DateTime64(3) is −12345500). Any other negative form depends on the bytes
   * after the value (finding D5) and is refused.
   */
  #negative(out: RowBuffer, src: Buffer, a: number, b: number): void {
    const refuse = (): never => {
      throw new ValueError('a negative timestamp in this form is read differently by ClickHouse depending on its read buffer; not taken');
    };
    let i = a + 1;
    while (i < b && isDigit(src[i])) i++;
    const digits = i - a - 1;
    if (digits < 4 || digits > 18) refuse();
    const whole = BigInt(src.toString('latin1', a + 1, i));
    let fraction = 0;
    if (i < b && src[i] === 0x2e) {
      i++;
      let k = 0;
      for (; k < this.scale && i < b && isDigit(src[i]); k++, i++) fraction = fraction * 10 + digit(src, i);
      for (; k < this.scale; k++) fraction *= 10;
      while (i < b && isDigit(src[i])) i++;
    }
    if (i !== b || (whole === 0n && fraction !== 0)) refuse();
    const ticks = -whole * 10n ** BigInt(this.scale) - BigInt(fraction);
    if (ticks < -INT64_MAX - 1n) throw new ValueError('Decimal math overflow');
    const v = BigInt.asUintN(64, ticks);
    out.u64(Number(v & 0xffffffffn), Number(v >> 32n));
  }

  zero(out: RowBuffer): void {
    out.u64(0, 0);
  }

  typeDefault(out: RowBuffer): void {
    out.u64(0, 0);
  }
}

const MIN_DATE32 = daysFromCivil(1900, 1, 1);
const MAX_DATE32 = daysFromCivil(2299, 12, 31);

/**
 * Reads a quoted date (YYYY-MM-DD, single-digit month/day, any non-digit separators, YYYYMMDD)
 * into days since the epoch, or throws.
 */
function readQuotedDate(src: Buffer, a: number, b: number, errorDay: number): number {
  const fail = (): never => {
    throw new ValueError(b - a < 8 ? 'Cannot parse date: value is too short' : `Cannot parse date here: ${src.toString('utf8', a, Math.min(b, a + 10))}`);
  };
  if (b - a < 8) fail();
  for (let k = 0; k < 4; k++) if (!isDigit(src[a + k])) fail();
  const year = digit(src, a) * 1000 + digit(src, a + 1) * 100 + digit(src, a + 2) * 10 + digit(src, a + 3);
  let month: number;
  let day: number;
  let i = a + 4;
  if (isDigit(src[i])) {
    if (!isDigit(src[i + 1]) || !isDigit(src[i + 2]) || !isDigit(src[i + 3])) fail();
    month = digit(src, i) * 10 + digit(src, i + 1);
    day = digit(src, i + 2) * 10 + digit(src, i + 3);
    i += 4;
  } else {
    if (!isSeparator(src[i])) fail();
    i++;
    if (!isDigit(src[i])) fail();
    month = digit(src, i++);
    if (isDigit(src[i])) month = month * 10 + digit(src, i++);
    if (!isSeparator(src[i])) fail();
    i++;
    if (!isDigit(src[i])) fail();
    day = digit(src, i++);
    if (isDigit(src[i])) day = day * 10 + digit(src, i++);
  }
  if (i !== b) throw new ValueError(`Cannot parse input: expected '"' before: '${src.toString('utf8', i, Math.min(b, i + 16))}'`);
  if (year === 0 || month < 1 || month > 12 || day < 1 || day > 31) return errorDay;
  return daysFromCivil(year, month, 1) + day - 1;
}

/** Date (UInt16 days) or Date32 (Int32 days from 1900-01-01 to 2299-12-31). */
export class DateWriter implements ColumnWriter {
  readonly type: string;
  readonly nullable = false;
  readonly #wide: boolean;

  constructor(type: string, wide: boolean) {
    this.type = type;
    this.#wide = wide;
  }

  json(out: RowBuffer, src: Buffer, start: number, end: number): void {
    if (isNull(src, start, end)) return this.zero(out);
    if (src[start] === QUOTE) {
      let days = readQuotedDate(src, start + 1, end - 1, this.#wide ? daysFromCivil(1925, 1, 1) : 0);
      if (this.#wide) {
        days = days < MIN_DATE32 ? MIN_DATE32 : days > MAX_DATE32 ? MAX_DATE32 : days;
        out.u32(days);
      } else out.u16(days < 0 ? 0 : days > 0xffff ? 0xffff : days);
      return;
    }
    // true/false are read as 1/0 days (input_format_json_read_bools_as_numbers), as ClickHouse does.
    readJsonInteger(src, start, end, this.#wide);
    if (this.#wide) out.u32(parsedLo());
    else out.u16(parsedLo() & 0xffff);
  }

  zero(out: RowBuffer): void {
    if (this.#wide) out.u32(0);
    else out.u16(0);
  }

  typeDefault(out: RowBuffer): void {
    this.zero(out);
  }
}

function parsedLo(): number {
  return lastParsed().lo;
}

function parsedHi(): number {
  return lastParsed().hi;
}

function signed64(lo: number, hi: number): number {
  const h = hi | 0;
  if (h >= -0x200000 && h < 0x200000) return h * 4294967296 + lo;
  return h < 0 ? -Infinity : Infinity;
}
