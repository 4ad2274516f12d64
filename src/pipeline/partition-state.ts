// Owns the state of one owned source partition: its commit watermark, its lanes, rows held for a
// mapping, and its exactly-once ledger (loaded before the first record is routed, saved with one
// queued write at a time), and the dead-letter writes in flight. A rewind resets everything but the
// ledger, the dead letters in flight and the committed position: what is resolved or in flight is
// never forgotten, and a write in flight is unresolved.
import { Ledger, type LedgerStore } from '../ack/ledger.ts';
import { AbortedError } from '../errors/inserter-error.ts';
import { AckSet, PartitionTracker, type AckChunk } from '../ack/partition-tracker.ts';
import type { RouteConfig } from '../config/load.ts';
import type { Row } from '../decode/row.ts';
import type { CommitPosition, PartitionRef, SourceRecord } from '../source/types.ts';
import type { Lane } from '../batch/lane.ts';

/** A row waiting for its team's mapping; its `ack` keeps the watermark below it. */
export interface HeldRow {
  readonly record: SourceRecord;
  readonly route: RouteConfig;
  readonly row: Row;
  /** What it counts against the memory budget. */
  readonly size: number;
  readonly team: number | undefined;
  readonly chunk: AckChunk;
  readonly ack: AckSet;
}

export class PartitionState {
  readonly ref: PartitionRef;
  tracker = new PartitionTracker();
  readonly lanes = new Map<string, Lane>();
  held: HeldRow[] = [];
  committed = -1n;
  /**
   * A position below which this process saw every record resolved: the watermark when a rewind or
   * restart of the source reset it. Committed again if the partition is idle after the rewind and a
   * previous owner's late commit moved the group's position back.
   */
  resolvedFloor = -1n;
  revoked = false;
  /** Bumped by every reset: a batch queued before it, with no intent yet, is re-read instead. */
  generation = 0;
  /** Re-forming batches not yet complete (kept as a count so the per-record check is one branch). */
  replaying = 0;
  /** Some record was left unresolved on purpose (paused or parked): resuming must re-read. */
  needsRewind = false;
  /**
   * When a write last stored this partition's position (Date.now()): with a store that commits
   * positions every write carries it, and the committer leaves a partition written lately to its
   * next write.
   */
  positionStoredAt = 0;
  /** Intents whose re-formed batch was parked since the last reset: their other records park too. */
  readonly parkedIntents = new Set<string>();
  ledger: Ledger | undefined;
  /** Dead-letter writes in flight by route and offset: the records (read once or again) waiting on each. */
  readonly deadLetters = new Map<string, AckSet>();
  #loading: Promise<void> | undefined;
  #saving: Promise<void> = Promise.resolve();
  #queued: Promise<CommitPosition | undefined> | undefined;
  /** Saves written and not answered yet: the ledger in memory is ahead of the one stored meanwhile. */
  #inFlight = 0;
  /** What aborts a save itself (the runtime's save signal, read when the save starts): never one caller's signal, as a save is shared. */
  readonly #saveSignal: () => AbortSignal;

  constructor(ref: PartitionRef, saveSignal: AbortSignal | (() => AbortSignal) = new AbortController().signal) {
    this.ref = ref;
    this.#saveSignal = typeof saveSignal === 'function' ? saveSignal : () => saveSignal;
  }

  loadLedger(store: LedgerStore, signal: AbortSignal): Promise<void> {
    this.#loading ??= store.load(this.ref.topic, this.ref.partition, signal).then((json) => {
      this.ledger = Ledger.fromJson(json);
    });
    return this.#loading;
  }

  /**
   * Saves the ledger; callers arriving while a save is queued share it (it writes the newest state).
   * With a store that commits positions (LedgerStore.commit), every write carries the partition's
   * position when it moved (docs/design/delivery.md §4): a batch's intent commits what the batches
   * before it resolved, and the ledger is written pruned to that position. Resolves with the
   * position stored, if any (a store that could not commit the position now saves the ledger alone:
   * a lane sharing the save is not failed for it). A caller's `signal` ends only its own wait
   * (AbortedError): the shared save goes on for the others.
   */
  saveLedger(store: LedgerStore, signal: AbortSignal): Promise<CommitPosition | undefined> {
    const ledger = this.ledger;
    // A revoked owner never writes the ledger again: it would overwrite the new owner's.
    if (ledger === undefined || this.revoked) return Promise.resolve(undefined);
    this.#queued ??= this.#saving.then(async (): Promise<CommitPosition | undefined> => {
      this.#queued = undefined;
      if (this.revoked) return undefined;
      // Taken when the write starts: the newest position, and a ledger that says it is resolved.
      const position = store.commit === undefined ? undefined : this.positionToCommit();
      if (position !== undefined) ledger.prune(position.offset);
      ledger.markClean();
      this.#inFlight++;
      try {
        const saveSignal = this.#saveSignal();
        if (position !== undefined && store.commit !== undefined) {
          if (!(await store.commit(position, ledger.toJson(), saveSignal))) return undefined;
          // Revoked meanwhile: the new owner's state decides what is committed now.
          if (!this.revoked && position.offset > this.committed) this.committed = position.offset;
          this.positionStoredAt = Date.now();
          return position;
        }
        await store.save(this.ref.topic, this.ref.partition, ledger.toJson(), saveSignal);
        return undefined;
      } catch (error) {
        // Not durable: the next save (before the next commit) must write it again.
        ledger.markDirty();
        throw error;
      } finally {
        this.#inFlight--;
      }
    });
    this.#saving = this.#queued.then(
      () => undefined,
      () => undefined,
    );
    return signal === this.#saveSignal() ? this.#queued : untilAborted(this.#queued, signal);
  }

  /**
   * The position to commit, if it moved: the watermark, or — nothing read past it since a rewind
   * reset the watermark — the watermark the rewind reset, never below the loaded ledger's
   * `resolvedBelow` (a stream may start below a position the previous owner committed in its last
   * ledger transaction: everything below it was resolved). Only a position this ownership resolved
   * up to: the position reading began at is the group's as it was then, and committing it could
   * move back a newer owner's (a process fenced off its ledger that still holds the partition in a
   * rebalance, its reading restarted: chaos test).
   */
  positionToCommit(): CommitPosition | undefined {
    return this.#positionAt(this.tracker.committable());
  }

  /** positionToCommit() for read-only views: it leaves the tracker's chunks as they are. */
  peekPositionToCommit(): CommitPosition | undefined {
    return this.#positionAt(this.tracker.peekCommittable());
  }

  #positionAt(watermark: bigint): CommitPosition | undefined {
    let offset = watermark > this.resolvedFloor ? watermark : this.resolvedFloor;
    let advanced = offset > this.tracker.start || offset === this.resolvedFloor;
    const below = this.ledger?.resolvedBelow ?? -1n;
    if (below > offset) {
      offset = below;
      advanced = true;
    }
    return advanced && offset > this.committed ? { ...this.ref, offset, epoch: this.tracker.epoch } : undefined;
  }

  /**
   * Whether the ledger in memory is the one stored: nothing changed since the last save that
   * succeeded, and no save is still being written (a split recorded in memory whose save is in
   * flight is not durable yet: acting on it could insert under tokens a crash would forget).
   */
  get ledgerDurable(): boolean {
    return this.ledger?.dirty !== true && this.#inFlight === 0;
  }

  /** A dead-letter write starts: the record stays unresolved until it ends. Returns the write's acks. */
  startDeadLetter(route: string, offset: bigint, chunk: AckChunk): AckSet {
    const acks = new AckSet();
    acks.add(chunk);
    this.deadLetters.set(`${route}\u0000${offset}`, acks);
    return acks;
  }

  /** A record read again while its dead letter is being written waits for that write. */
  joinDeadLetter(route: string, offset: bigint, chunk: AckChunk): boolean {
    const acks = this.deadLetters.get(`${route}\u0000${offset}`);
    if (acks === undefined) return false;
    acks.add(chunk);
    return true;
  }

  /** The write ended: acknowledged, every read of the record resolves; failed, they stay unresolved. */
  endDeadLetter(route: string, offset: bigint, acks: AckSet, acknowledged: boolean): void {
    const key = `${route}\u0000${offset}`;
    if (this.deadLetters.get(key) === acks) this.deadLetters.delete(key);
    if (acknowledged) acks.resolve();
  }

  /**
   * Forgets in-memory progress so the partition can be read again from its committed position:
   * open batches, re-forming batches and held rows are dropped (their bytes are returned), batches
   * already being delivered finish on their lane. Returns the bytes released.
   */
  reset(release: (bytes: number, destination: string | undefined) => void): void {
    const watermark = this.tracker.committable();
    if (watermark > this.resolvedFloor) this.resolvedFloor = watermark;
    this.tracker = new PartitionTracker();
    this.generation++;
    this.needsRewind = false;
    for (const lane of this.lanes.values()) {
      const open = lane.take();
      if (open) release(open.bytes, lane.destination.id);
      for (const batch of lane.replays.values()) release(batch.bytes, lane.destination.id);
      lane.replays.clear();
    }
    this.replaying = 0;
    this.parkedIntents.clear();
    for (const held of this.held) release(held.size, undefined);
    this.held = [];
  }
}

/** `work`, or an AbortedError as soon as `signal` aborts (`work` goes on; its failure is then nobody's). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(new AbortedError('ledger save: the caller stopped waiting'));
  }
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      work.catch(() => undefined);
      reject(new AbortedError('ledger save: the caller stopped waiting'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.finally(() => signal.removeEventListener('abort', onAbort)).then(resolve, (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))));
  });
}
