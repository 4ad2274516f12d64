// Where a partition's records sit in its offset space (FEATURES.sparseOffsets). Kafka's offsets are
// dense but for transaction markers and compaction; Pulsar's positions are message ids packed into
// a bigint (ledger id high, entry id low), so they increase with gaps — small or none within a
// ledger, a jump at every ledger roll-over — and start far from 0. The delivery core must never
// assume `next = last + 1`: a committed position can fall in a gap, or past the last record, and a
// record is found by the first offset at or above a position, never by an index.
import type { Rng } from './rng.ts';

/** Hands out a partition's offsets in append order. */
export type OffsetLayout = () => bigint;

/**
 * Room left above the highest base for a whole run: up to 160 records, each at most 5,000,000 past
 * the one before (8·10⁸ in all), stays below 2^32 — so every offset is a safe integer (OffsetSet
 * keeps them as JS numbers and refuses the others).
 */
const HEADROOM = 2 ** 32;
/** Pulsar's packed message ids reach about here (ledger ids in the tens of millions, 20 bits of entry). */
const HIGH = 2 ** 50;

/** A partition's layout: a base (0, a little way in, or just under 2^50) and gaps drawn per record. */
export function sparseLayout(rng: Rng): OffsetLayout {
  const roll = rng.float();
  // Two draws for the high base, so its low bits vary too (one float has only 32 bits).
  const base = roll < 0.3 ? 0 : roll < 0.6 ? rng.int(1, 100_000) : HIGH - HEADROOM - (rng.uint32() * 256 + rng.int(0, 255));
  let next: number | undefined;
  return () => {
    next = next === undefined ? base : next + gap(rng);
    return BigInt(next);
  };
}

/** Mostly adjacent; sometimes a few apart (markers, compaction); now and then a ledger roll-over. */
function gap(rng: Rng): number {
  const roll = rng.float();
  if (roll < 0.75) return 1;
  if (roll < 0.92) return rng.int(2, 5);
  if (roll < 0.98) return rng.int(1_000, 99_999);
  return rng.int(1_000_000, 5_000_000);
}

/** Index of the first record at or above `position` in a log sorted by offset (`log.length` if none). */
export function indexAtOrAbove(log: ReadonlyArray<{ readonly offset: bigint }>, position: bigint): number {
  let lo = 0;
  let hi = log.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((log[mid] as { offset: bigint }).offset < position) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One line for the scenario: each partition's first and last offset, and its gaps. */
export function describeOffsets(logs: ReadonlyArray<{ readonly partition: number; readonly log: ReadonlyArray<{ readonly offset: bigint }> }>): string {
  return logs
    .map(({ partition, log }) => {
      const first = log[0]?.offset;
      if (first === undefined) return `p${partition}: empty`;
      let gaps = 0;
      let jumps = 0;
      for (let i = 1; i < log.length; i++) {
        const d = (log[i] as { offset: bigint }).offset - (log[i - 1] as { offset: bigint }).offset;
        if (d > 1n) gaps++;
        if (d >= 1_000n) jumps++;
      }
      return `p${partition}: ${first}..${log.at(-1)?.offset} (${log.length} records, ${gaps} gaps, ${jumps} of them ≥ 1,000)`;
    })
    .join('; ');
}
