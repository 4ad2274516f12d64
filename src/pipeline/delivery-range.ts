// Owns what a delivery works on: a range of a batch (its rows, token, the schema of its last attempt,
// rows left out of it) and the journal through which a delivery records splits, decisions and the
// schemas its inserts were sent under (the exactly-once ledger, through the pipeline), and the rule
// that says when a refused range is in doubt (docs/design/delivery.md §11).
import type { PartReason, PartState } from '../ack/ledger.ts';
import type { Batch, Lane } from '../batch/lane.ts';
import type { Sink } from '../sink/types.ts';

/** One range of a batch being delivered: its rows, token, and identity as a destination-gate owner. */
export interface Range {
  readonly lane: Lane;
  readonly sink: Sink;
  readonly batch: Batch;
  readonly from: number;
  readonly to: number;
  readonly token: string;
  readonly signal: AbortSignal;
  readonly journal: DeliveryJournal | undefined;
  /** How many inserts had landed in the lane's table when this range last failed (see `bisect`). */
  failedAt: number;
  /** The fingerprint of the live schema of the last attempt (TableSchemas.live). */
  fingerprint: string | undefined;
  /** Rows left out of the range's insert (ascending), each dead-lettered with its own refusal (`excludedReasons`, same order) once it lands (§11). */
  excluded: number[];
  excludedReasons: PartReason[];
  /** When the range was first held in doubt (refused naming no row): its hold is bounded from then. */
  doubtSince?: number;
}

/** A recorded range of a batch: its rows, what became of them, and rows left out of its insert. */
export interface JournalLeaf {
  readonly from: number;
  readonly to: number;
  readonly state: PartState;
  readonly reason?: PartReason;
  readonly excluded?: readonly number[];
  readonly excludedReasons?: readonly PartReason[];
}

/**
 * Where a batch's splits and per-range outcomes are recorded (the exactly-once ledger, through the
 * pipeline). A split, a dead-letter or a drop decision is durable before it is acted on, so a batch
 * re-formed after a crash repeats exactly the same inserts under the same tokens.
 */
export interface DeliveryJournal {
  /** The ranges an earlier attempt recorded, in row order; undefined: the batch as one insert. */
  leaves(): readonly JournalLeaf[] | undefined;
  /** Fingerprints of the live schemas any insert of this batch was sent under. */
  sentUnder(): readonly string[];
  /** An insert is about to be sent under this schema: recorded first (durably, when it is a new one). */
  sending(fingerprint: string, signal: AbortSignal): Promise<void>;
  /** Rows `excluded` of [from, to) are left out of its insert (same token) and dead-lettered, each for its reason in `reasons`: durable first. */
  exclude(from: number, to: number, excluded: readonly number[], reasons: readonly PartReason[], signal: AbortSignal): Promise<void>;
  split(from: number, to: number, ranges: ReadonlyArray<readonly [number, number]>, signal: AbortSignal): Promise<void>;
  decide(from: number, to: number, state: 'dead' | 'dropped', reason: PartReason, signal: AbortSignal): Promise<void>;
  inserted(from: number, to: number): void;
  /**
   * An earlier attempt of exactly these rows may still land: the batch was re-formed from an intent
   * (a previous owner, or this process before a rewind, may have sent it). Such a range is never
   * split for a reason that depends on the server's load: its sub-tokens would not deduplicate it.
   */
  mayHaveLanded(from: number, to: number): boolean;
  /** An attempt of exactly these rows may have landed (it failed ambiguously): remembered for a retried delivery of the batch. */
  mayHaveLandedNow(from: number, to: number): void;
}

export function rangeOf(lane: Lane, sink: Sink, batch: Batch, from: number, to: number, signal: AbortSignal, journal: DeliveryJournal | undefined, leaf?: JournalLeaf): Range {
  const excluded = leaf?.excluded === undefined ? [] : [...leaf.excluded];
  return {
    lane,
    sink,
    batch,
    from,
    to,
    token: lane.token(batch, from, to),
    signal,
    journal,
    failedAt: 0,
    fingerprint: undefined,
    excluded,
    excludedReasons: leaf?.excludedReasons === undefined ? [] : [...leaf.excludedReasons],
  };
}

/**
 * Whether a refusal of this range says nothing about an earlier attempt that may have landed: one
 * was sent under a schema other than the last attempt's (or rows were left out already).
 */
export function inDoubt(range: Range): boolean {
  if (range.excluded.length > 0) return true;
  const now = range.fingerprint;
  return range.journal !== undefined && now !== undefined && range.journal.sentUnder().some((f) => f !== now);
}
