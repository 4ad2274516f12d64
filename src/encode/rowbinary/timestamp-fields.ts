// Owns the direct writers of Timestamps (decode/row.ts TimestampValue) into DateTime and
// DateTime64 columns (field-writers.ts chooses them): seconds clamped to DateTime's range; DateTime64
// ticks of 10^-scale seconds, the nanoseconds truncated, refused (declined to the JSON path, which
// refuses them) beyond Int64.
import { TimestampValue, type FieldValue } from '../../decode/row.ts';
import type { FieldWriter } from './field-writers.ts';
import type { RowBuffer } from './row-buffer.ts';

const TWO32 = 4294967296;
const MAX_DATETIME = 4294967295n;
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
/**
 * Timestamps a strict DateTime64 writer (build: Nullable columns, array elements) takes directly:
 * years 1000 to 9999, where their JSON text (object-row.ts timestampText: four-digit years) reads
 * back to the same instant. A non-nullable column takes every Timestamp directly, as it did before.
 */
const STRICT_MIN_SECONDS = -30610224000n;
const STRICT_END_SECONDS = 253402300800n;

function outsideStrictRange(t: TimestampValue, strict: boolean): boolean {
  return strict && (t.seconds < STRICT_MIN_SECONDS || t.seconds >= STRICT_END_SECONDS);
}

/**
 * DateTime from a Timestamp: its seconds, clamped to the type's range. Only in non-nullable columns
 * (as before the direct writers): a Nullable(DateTime) value takes the JSON path, whose text has a
 * fraction of a second that ClickHouse's DateTime text read refuses.
 */
export class DateTimeField implements FieldWriter {
  write(out: RowBuffer, value: FieldValue): boolean {
    if (!(value instanceof TimestampValue)) return false;
    const s = value.seconds;
    out.u32(s < 0n ? 0 : s > MAX_DATETIME ? Number(MAX_DATETIME) : Number(s));
    return true;
  }
}

/** DateTime64(scale) from a Timestamp: ticks of 10^-scale seconds, the nanoseconds truncated. */
export class DateTime64Field implements FieldWriter {
  readonly #multiplier: number;
  readonly #bigMultiplier: bigint;
  readonly #divisor: number;
  readonly #strict: boolean;

  constructor(scale: number, strict: boolean) {
    this.#strict = strict;
    this.#multiplier = 10 ** scale;
    this.#bigMultiplier = 10n ** BigInt(scale);
    this.#divisor = 10 ** (9 - scale);
  }

  write(out: RowBuffer, value: FieldValue): boolean {
    if (!(value instanceof TimestampValue) || outsideStrictRange(value, this.#strict)) return false;
    const fraction = Math.floor(value.nanos / this.#divisor);
    const s = value.seconds;
    const seconds = Number(s); // exact when |s| ≤ 2^32; a larger magnitude converts to more than 2^32
    if (seconds >= -TWO32 && seconds <= TWO32) {
      // |ticks| < 2^32 × 10^9 < 2^63 but not always < 2^53: checked.
      const ticks = seconds * this.#multiplier + fraction;
      if (Number.isSafeInteger(ticks)) {
        out.u64(ticks >>> 0, Math.floor(ticks / TWO32) >>> 0);
        return true;
      }
    }
    const ticks = s * this.#bigMultiplier + BigInt(fraction);
    // The JSON path refuses these (its text's ticks do not fit Int64): declined, so it does.
    if (ticks > INT64_MAX || ticks < INT64_MIN) return false;
    const v = BigInt.asUintN(64, ticks);
    out.u64(Number(v & 0xffffffffn), Number(v >> 32n));
    return true;
  }
}
