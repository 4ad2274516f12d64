// Owns committing: every commit interval, each owned partition's position — the watermark below
// which every record is resolved (docs/design/delivery.md §4) — is committed, after the ledgers
// holding what was completed are saved, so the ledger on disk knows everything below the positions
// committed. One commit at a time. Unchanged positions are committed again every 10 s (a previous
// owner's late commit can move the group's position back), and an owned partition with nothing
// read since it was assigned has its position at assignment repaired.
import type { PartitionState } from '../pipeline/partition-state.ts';
import type { PipelineRuntime } from '../pipeline/runtime.ts';
import type { CommitPosition } from '../source/types.ts';
import { partitionKey } from '../source/types.ts';

/** How often unchanged committed positions are committed again. */
const REASSERT_POSITIONS_MS = 10_000;

export class Committer {
  readonly #rt: PipelineRuntime;
  /** Saves a partition's ledger for a commit (a ledger no longer held makes it be taken over again). */
  readonly #save: (state: PartitionState) => Promise<void>;
  #committing: Promise<void> | undefined;
  #reassertedAt = Date.now();

  constructor(rt: PipelineRuntime, save: (state: PartitionState) => Promise<void>) {
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
    const taken: Array<{ state: PartitionState; position: CommitPosition }> = [];
    const now = Date.now();
    const reassert = now - this.#reassertedAt >= REASSERT_POSITIONS_MS;
    if (reassert) this.#reassertedAt = now;
    for (const state of rt.partitions.values()) {
      if (state.revoked) continue;
      // The watermark, or — nothing read past it since a rewind reset the watermark — the watermark
      // the rewind reset: everything below either was resolved here.
      const watermark = state.tracker.committable();
      const offset = watermark > state.resolvedFloor ? watermark : state.resolvedFloor;
      // Only a position this ownership resolved up to: the position reading began at is the group's
      // as it was then, and committing it could move back a newer owner's (a process fenced off its
      // ledger that still holds the partition in a rebalance, its reading restarted: chaos test).
      const advanced = offset > state.tracker.start || offset === state.resolvedFloor;
      if (advanced && offset > state.committed) taken.push({ state, position: { ...state.ref, offset, epoch: state.tracker.epoch } });
      // Nothing newer: this process's own last commit in this ownership is committed again.
      else if (reassert && state.committed >= 0n) taken.push({ state, position: { ...state.ref, offset: state.committed, epoch: state.tracker.epoch } });
    }
    // Owned partitions with no state have had nothing read since they were assigned (idle at their
    // end): their position at assignment is committed again if the group's is below it now.
    const repairs = reassert ? await this.#repairPositions() : [];
    if (rt.ledgers !== undefined) {
      const saves: Array<Promise<void>> = [];
      for (const state of rt.partitions.values()) if (!state.revoked && state.ledger?.dirty) saves.push(this.#save(state));
      try {
        await Promise.all(saves);
      } catch (error) {
        rt.logger.warn({ err: error }, 'ledger save failed; positions are committed later');
        if (reassert) this.#reassertedAt = 0; // re-assert on the next interval, not 10 s later
        return;
      }
    }
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
