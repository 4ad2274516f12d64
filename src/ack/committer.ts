// Owns committing: every commit interval, each owned partition's position — the watermark below
// which every record is resolved (docs/design/delivery.md §4) — is committed. With a ledger store
// that commits positions itself (exactly-once on Kafka), every ledger write of a partition carries
// its position (PartitionState.saveLedger), so only the partition's current owner can move it; the
// interval writes only the partitions no write carried a position for lately (a backlog's batch
// intents commit the positions; an idle partition gets a write of its own). Without one, dirty
// ledgers are saved first, then the source commits the positions, unchanged positions
// are committed again every 10 s (a previous owner's late commit can move the group's position back),
// and an owned partition with nothing read since it was assigned has its position at assignment
// repaired. One commit at a time.
import type { PartitionState } from '../pipeline/partition-state.ts';
import type { PipelineRuntime } from '../pipeline/runtime.ts';
import type { CommitPosition } from '../source/types.ts';
import { partitionKey } from '../source/types.ts';

/** How often unchanged committed positions are committed again (plain commits only). */
const REASSERT_POSITIONS_MS = 10_000;

/** Saves a partition's ledger, with its position when the store commits positions (a ledger no longer held makes it be taken over again). */
export type SaveForCommit = (state: PartitionState) => Promise<CommitPosition | undefined>;

export class Committer {
  readonly #rt: PipelineRuntime;
  readonly #save: SaveForCommit;
  #committing: Promise<void> | undefined;
  #reassertedAt = Date.now();

  constructor(rt: PipelineRuntime, save: SaveForCommit) {
    this.#rt = rt;
    this.#save = save;
  }

  /**
   * One commit at a time: overlapping commits could land an older position after a newer one.
   * `final` (shutdown) writes every partition whose position moved, written lately or not.
   */
  commit(final = false): Promise<void> {
    this.#committing ??= this.#commitOnce(final).finally(() => {
      this.#committing = undefined;
    });
    return this.#committing;
  }

  async #commitOnce(final: boolean): Promise<void> {
    const rt = this.#rt;
    // Only the current owner moves a position committed with the ledger: nothing to repair.
    if (rt.ledgers?.commit !== undefined) return this.#commitWithLedgers(final);
    const taken: Array<{ state: PartitionState; position: CommitPosition }> = [];
    const now = Date.now();
    const reassert = now - this.#reassertedAt >= REASSERT_POSITIONS_MS;
    if (reassert) this.#reassertedAt = now;
    for (const state of rt.partitions.values()) {
      if (state.revoked) continue;
      const position = state.positionToCommit();
      if (position !== undefined) taken.push({ state, position });
      // Nothing newer: this process's own last commit in this ownership is committed again.
      else if (reassert && state.committed >= 0n) taken.push({ state, position: { ...state.ref, offset: state.committed, epoch: state.tracker.epoch } });
    }
    // Owned partitions with no state have had nothing read since they were assigned (idle at their
    // end): their position at assignment is committed again if the group's is below it now.
    const repairs = reassert ? await this.#repairPositions() : [];
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
   * A ledger write for each partition whose position moved or whose ledger is dirty, unless a write
   * stored its position within the last half interval (its next write carries what moved since;
   * at most 1.5 intervals later). The write carries the position with the ledger pruned to it. A
   * partition whose write fails is left for the next interval (a fenced one is taken over again).
   */
  async #commitWithLedgers(final: boolean): Promise<void> {
    const rt = this.#rt;
    const now = Date.now();
    const lately = rt.config.commitIntervalMs / 2;
    const writes: Array<Promise<unknown>> = [];
    for (const state of rt.partitions.values()) {
      // Not loaded yet: nothing of it is resolved through this ownership, and nothing could carry the position.
      if (state.revoked || state.ledger === undefined) continue;
      // A write in the future is not lately: the wall clock stepped back (review 2026-12-07a, finding 2).
      const age = now - state.positionStoredAt;
      if (!final && age >= 0 && age < lately) continue;
      if (state.positionToCommit() !== undefined || state.ledger.dirty) writes.push(this.#save(state));
    }
    for (const result of await Promise.allSettled(writes)) {
      if (result.status === 'rejected') rt.logger.warn({ err: result.reason }, 'ledger write failed; its position is committed later');
    }
    // Positions stored by any write since the last interval (batch intents carry them too).
    for (const state of rt.partitions.values()) {
      if (!state.revoked && state.committed >= 0n) rt.metrics.committedOffset.set({ topic: state.ref.topic, partition: String(state.ref.partition) }, Number(state.committed));
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
