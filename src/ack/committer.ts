// Owns committing: every commit interval, each owned partition's position — the watermark below
// which every record is resolved (docs/design/delivery.md §4) — is committed. With a ledger store
// that commits positions itself (exactly-once on Kafka), each position goes in its partition's
// ledger transaction with the pruned ledger: only the partition's current owner can move it. Without
// one, dirty ledgers are saved first, then the source commits the positions, unchanged positions
// are committed again every 10 s (a previous owner's late commit can move the group's position back),
// and an owned partition with nothing read since it was assigned has its position at assignment
// repaired. One commit at a time.
import type { PartitionState } from '../pipeline/partition-state.ts';
import type { PipelineRuntime } from '../pipeline/runtime.ts';
import type { CommitPosition } from '../source/types.ts';
import { partitionKey } from '../source/types.ts';

/** How often unchanged committed positions are committed again (plain commits only). */
const REASSERT_POSITIONS_MS = 10_000;

/** Saves a partition's ledger, with the position to commit in the same write when given (a ledger no longer held makes it be taken over again). */
export type SaveForCommit = (state: PartitionState, position?: CommitPosition) => Promise<CommitPosition | undefined>;

export class Committer {
  readonly #rt: PipelineRuntime;
  readonly #save: SaveForCommit;
  #committing: Promise<void> | undefined;
  #reassertedAt = Date.now();

  constructor(rt: PipelineRuntime, save: SaveForCommit) {
    this.#rt = rt;
    this.#save = save;
  }

  /** One commit at a time: overlapping commits could land an older position after a newer one. */
  commit(): Promise<void> {
    this.#committing ??= this.#commitOnce().finally(() => {
      this.#committing = undefined;
    });
    return this.#committing;
  }

  async #commitOnce(): Promise<void> {
    const rt = this.#rt;
    const withLedger = rt.ledgers?.commit !== undefined;
    const taken: Array<{ state: PartitionState; position: CommitPosition }> = [];
    const now = Date.now();
    const due = now - this.#reassertedAt >= REASSERT_POSITIONS_MS;
    if (due) this.#reassertedAt = now;
    const reassert = due && !withLedger;
    for (const state of rt.partitions.values()) {
      if (state.revoked) continue;
      const position = positionToCommit(state);
      if (position !== undefined) taken.push({ state, position });
      // Nothing newer: this process's own last commit in this ownership is committed again.
      else if (reassert && state.committed >= 0n) taken.push({ state, position: { ...state.ref, offset: state.committed, epoch: state.tracker.epoch } });
    }
    // Only the current owner moves a position committed with the ledger: nothing to repair.
    if (withLedger) return this.#commitWithLedgers(taken);
    // Owned partitions with no state have had nothing read since they were assigned (idle at their
    // end): their position at assignment is committed again if the group's is below it now.
    const repairs = due ? await this.#repairPositions() : [];
    if (rt.ledgers !== undefined) {
      const saves: Array<Promise<unknown>> = [];
      for (const state of rt.partitions.values()) if (!state.revoked && state.ledger?.dirty) saves.push(this.#save(state));
      try {
        await Promise.all(saves);
      } catch (error) {
        rt.logger.warn({ err: error }, 'ledger save failed; positions are committed later');
        if (reassert) this.#reassertedAt = 0; // re-assert on the next interval, not 10 s later
        return;
      }
    }
    await this.#commitPlain(taken, repairs, reassert);
  }

  /**
   * Each position in its partition's ledger write (pruned first, so the stored ledger's
   * `resolvedBelow` is the position); dirty ledgers with no new position are saved alone. A
   * partition whose write fails is left for the next interval (a fenced one is taken over again).
   */
  async #commitWithLedgers(taken: ReadonlyArray<{ state: PartitionState; position: CommitPosition }>): Promise<void> {
    const rt = this.#rt;
    const committing = new Set(taken.map(({ state }) => state));
    const writes: Array<Promise<unknown>> = [];
    for (const { state, position } of taken) {
      // Not loaded yet: nothing of it is resolved through this ownership, and nothing could carry the position.
      if (state.ledger === undefined) continue;
      state.ledger.prune(position.offset);
      writes.push(
        this.#save(state, position).then((stored) => {
          // Not stored (the ledger was saved alone): the next interval commits it again.
          if (state.revoked || stored === undefined || stored.offset <= state.committed) return;
          state.committed = stored.offset;
          rt.metrics.committedOffset.set({ topic: stored.topic, partition: String(stored.partition) }, Number(stored.offset));
        }),
      );
    }
    for (const state of rt.partitions.values()) if (!state.revoked && !committing.has(state) && state.ledger?.dirty) writes.push(this.#save(state));
    for (const result of await Promise.allSettled(writes)) {
      if (result.status === 'rejected') rt.logger.warn({ err: result.reason }, 'ledger write failed; its position is committed later');
    }
  }

  async #commitPlain(taken: ReadonlyArray<{ state: PartitionState; position: CommitPosition }>, repairs: readonly CommitPosition[], reassert: boolean): Promise<void> {
    const rt = this.#rt;
    // A partition revoked (and perhaps owned again, with new state) while the ledgers were saved
    // is not committed from the old state: its position belongs to an owner that no longer exists.
    const current = taken.filter(({ state }) => !state.revoked && rt.partitions.get(partitionKey(state.ref.topic, state.ref.partition)) === state);
    const idle = repairs.filter((p) => rt.owned?.has(partitionKey(p.topic, p.partition)) === true && !rt.partitions.has(partitionKey(p.topic, p.partition)));
    if (current.length === 0 && idle.length === 0) return;
    try {
      await rt.source.commit([...current.map(({ position }) => position), ...idle]);
      for (const { state, position } of current) {
        if (state.revoked) continue;
        if (position.offset > state.committed) state.committed = position.offset;
        state.ledger?.prune(position.offset);
        rt.metrics.committedOffset.set({ topic: position.topic, partition: String(position.partition) }, Number(position.offset));
      }
    } catch (error) {
      rt.logger.warn({ err: error }, 'offset commit failed; will retry');
      if (reassert) this.#reassertedAt = 0; // re-assert on the next interval, not 10 s later
    }
  }

  async #repairPositions(): Promise<CommitPosition[]> {
    const rt = this.#rt;
    const repair = rt.source.repairPosition?.bind(rt.source);
    if (repair === undefined || rt.owned === undefined) return [];
    const out: CommitPosition[] = [];
    for (const [key, ref] of rt.owned) {
      if (rt.partitions.has(key)) continue;
      try {
        const position = await repair(ref, rt.hardStop.signal);
        if (position !== undefined) out.push(position);
      } catch (error) {
        rt.logger.debug({ err: error, topic: ref.topic, partition: ref.partition }, 'could not read the committed position');
      }
    }
    return out;
  }
}

/**
 * The position to commit for the partition, if it moved: the watermark, or — nothing read past it
 * since a rewind reset the watermark — the watermark the rewind reset, never below the loaded
 * ledger's `resolvedBelow` (a stream may start below a position the previous owner committed in
 * its last ledger transaction: everything below it was resolved). Only a position this ownership
 * resolved up to: the position reading began at is the group's as it was then, and committing it
 * could move back a newer owner's (a process fenced off its ledger that still holds the partition
 * in a rebalance, its reading restarted: chaos test).
 */
function positionToCommit(state: PartitionState): CommitPosition | undefined {
  const watermark = state.tracker.committable();
  let offset = watermark > state.resolvedFloor ? watermark : state.resolvedFloor;
  let advanced = offset > state.tracker.start || offset === state.resolvedFloor;
  const below = state.ledger?.resolvedBelow ?? -1n;
  if (below > offset) {
    offset = below;
    advanced = true;
  }
  return advanced && offset > state.committed ? { ...state.ref, offset, epoch: state.tracker.epoch } : undefined;
}
