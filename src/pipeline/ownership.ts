// Owns which partitions this process owns and their in-memory state: a partition assigned gets a
// fresh state (its ledger is loaded before its first record is routed); one revoked is abandoned,
// never committed from (its records are read again by the next owner); one whose ledger another
// process took over is abandoned and, if the group still assigns it here, taken over again (the
// reload fences the other process, then it is re-read from its committed position).
import type { CommitPosition, SourceRecord, PartitionRef } from '../source/types.ts';
import { partitionKey } from '../source/types.ts';
import { PartitionState } from './partition-state.ts';
import type { PipelineRuntime } from './runtime.ts';

export class Ownership {
  readonly #rt: PipelineRuntime;
  /** Forgets what a state held outside itself (held rows' bytes) before the state is reset. */
  readonly #forget: (state: PartitionState) => void;
  readonly #requestRewind: () => void;

  constructor(rt: PipelineRuntime, forget: (state: PartitionState) => void, requestRewind: () => void) {
    this.#rt = rt;
    this.#forget = forget;
    this.#requestRewind = requestRewind;
  }

  assigned(partitions: readonly PartitionRef[]): void {
    const rt = this.#rt;
    rt.logger.info({ partitions: partitions.map((p) => `${p.topic}/${p.partition}`) }, 'partitions assigned');
    const first = rt.owned === undefined;
    rt.owned ??= new Map();
    for (const ref of partitions) {
      const key = partitionKey(ref.topic, ref.partition);
      rt.owned.set(key, ref);
      // Progress remembered from an earlier ownership is stale: another owner may have moved on.
      const stale = rt.partitions.get(key);
      if (stale !== undefined) {
        this.reset(stale);
        rt.partitions.delete(key);
      }
    }
    // A partition owned again must be read from its committed position, not from wherever the
    // consumer's stream was when it was taken away: read everything again from there.
    if (!first) this.#requestRewind();
  }

  revoked(partitions: readonly PartitionRef[]): void {
    const rt = this.#rt;
    rt.logger.info({ partitions: partitions.map((p) => `${p.topic}/${p.partition}`) }, 'partitions revoked');
    for (const ref of partitions) {
      const key = partitionKey(ref.topic, ref.partition);
      rt.owned?.delete(key);
      const state = rt.partitions.get(key);
      if (state === undefined) continue;
      this.#abandon(state);
      if (rt.ledgers?.release) rt.track(rt.ledgers.release(ref.topic, ref.partition));
    }
  }

  /** Whether the record's partition is owned here (records still buffered for a revoked one are not). */
  owns(record: SourceRecord): boolean {
    return this.#rt.owned === undefined || this.#rt.owned.has(partitionKey(record.topic, record.partition));
  }

  stateFor(record: SourceRecord): PartitionState {
    const key = partitionKey(record.topic, record.partition);
    let state = this.#rt.partitions.get(key);
    if (state === undefined) {
      state = new PartitionState({ topic: record.topic, partition: record.partition }, () => this.#rt.saveSignal);
      this.#rt.partitions.set(key, state);
    }
    return state;
  }

  /** Forgets the partition's in-memory progress, to read it again from its committed position. */
  reset(state: PartitionState): void {
    this.#forget(state);
    state.reset((bytes, destination) => this.#rt.budget.release(bytes, destination));
    // Batches already queued finish on their lane (their rows stay counted until then), but the source
    // must not wait on bodies they may never be sent as (review 2026-12-07h).
    for (const lane of state.lanes.values()) for (const batch of lane.queued) this.#rt.budget.bodiesStarted(batch, lane.destination.id);
  }

  /**
   * The partition's ledger is no longer held by this process: another process took it over (it was
   * assigned the partition, or is a stalled owner that has not learned yet that it lost it), or the
   * producer was given up. Nothing more may be recorded from this state; if the group still assigns
   * the partition here, it is taken over again like a new assignment.
   */
  ledgerLost(state: PartitionState, error: unknown): void {
    const rt = this.#rt;
    const { topic, partition } = state.ref;
    if ((error as { fenced?: unknown }).fenced === true) rt.logger.warn({ topic, partition }, 'fenced by a newer owner of the partition: nothing more is recorded or inserted from this state');
    else rt.logger.warn({ topic, partition, err: error }, 'ledger write failed: nothing more is recorded or inserted from this state');
    const key = partitionKey(topic, partition);
    if (rt.partitions.get(key) !== state) return; // abandoned already
    this.#abandon(state);
    if (rt.owned?.has(key) !== true) return;
    rt.logger.warn({ topic, partition }, 'ledger held by another process: in-memory work abandoned; loading the ledger again and re-reading from the committed position');
    this.#requestRewind();
  }

  /**
   * Saves a partition's ledger for a commit (with its position when the store commits positions);
   * a ledger no longer held makes the partition be taken over again.
   */
  saveForCommit(state: PartitionState): Promise<CommitPosition | undefined> {
    const store = this.#rt.ledgers;
    if (store === undefined) return Promise.resolve(undefined);
    return state.saveLedger(store, this.#rt.saveSignal).catch((error: unknown) => {
      if ((error as { code?: unknown }).code === 'INSERTER_LEDGER_FENCED') this.ledgerLost(state, error);
      throw error;
    });
  }

  /** Unfinished work of the partition is abandoned, not committed: it is read again from the committed position. */
  #abandon(state: PartitionState): void {
    state.revoked = true;
    for (const lane of state.lanes.values()) {
      lane.abandoned = true;
      lane.stop.abort();
    }
    this.reset(state);
    this.#rt.partitions.delete(partitionKey(state.ref.topic, state.ref.partition));
  }
}
