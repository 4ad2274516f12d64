// Owns rows waiting for their team's mapping: a team missing from the destinations snapshot is
// looked up (until the source answers, with backoff; its rows stay unresolved meanwhile, so the
// partition's position waits), and its rows are held in memory up to a quarter of the memory
// budget, parked beyond it (Kafka keeps them; they are read again once the answer is in). When the
// answer comes, held rows are routed again: batched for their destination, or dead-lettered when
// the source says the team has no destination.
import { setTimeout as sleep } from 'node:timers/promises';
import { AckSet, type AckChunk } from '../ack/partition-tracker.ts';
import type { DestinationConfig, RouteConfig } from '../config/load.ts';
import type { DeadLetterReason } from '../deadletter/types.ts';
import { rowSize, type Row } from '../decode/row.ts';
import { ErrorClasses } from '../errors/classes.ts';
import type { PartitionState } from '../pipeline/partition-state.ts';
import type { PipelineRuntime } from '../pipeline/runtime.ts';
import { backoffDelay } from '../sink/retry.ts';
import type { SourceRecord } from '../source/types.ts';

export interface HoldCallbacks {
  /** Leaves the record unresolved, to be read again. */
  park(state: PartitionState, chunk: AckChunk): void;
  /** Batches a row for its destination. */
  batch(state: PartitionState, route: RouteConfig, record: SourceRecord, row: Row, team: number | undefined, chunk: AckChunk, destination: DestinationConfig): void;
  deadLetter(state: PartitionState, route: RouteConfig, record: SourceRecord, chunk: AckChunk, reason: DeadLetterReason): void;
  /** Whether rows can be parked at all (the source can re-read). */
  canPark(): boolean;
  requestRewind(): void;
}

export class Holds {
  readonly #rt: PipelineRuntime;
  readonly #cb: HoldCallbacks;
  /** Teams being looked up (one lookup loop per team). */
  readonly #lookingUp = new Set<number>();
  #heldBytes = 0;

  constructor(rt: PipelineRuntime, callbacks: HoldCallbacks) {
    this.#rt = rt;
    this.#cb = callbacks;
  }

  /**
   * Keeps a row until its team's mapping is known. It stays unresolved, so the watermark cannot pass
   * it; past a quarter of the memory budget held rows are parked instead (Kafka keeps them).
   */
  hold(state: PartitionState, route: RouteConfig, record: SourceRecord, row: Row, team: number | undefined, chunk: AckChunk): void {
    const size = rowSize(row);
    if (this.#heldBytes + size > this.#rt.config.maxBufferedBytes / 4 && this.#cb.canPark()) {
      this.#cb.park(state, chunk);
      return;
    }
    const ack = new AckSet();
    ack.add(chunk);
    state.held.push({ record, route, row, size, team, chunk, ack });
    this.#heldBytes += size;
    this.#rt.metrics.heldRecords.inc();
    this.#rt.budget.reserve(size, undefined);
  }

  /** The partition's held rows are dropped (a rewind or abandon resets it): forget their bytes. */
  forget(state: PartitionState): void {
    for (const held of state.held) {
      this.#heldBytes -= held.size;
      this.#rt.metrics.heldRecords.dec();
    }
  }

  /**
   * Looks a team up until the destinations source answers (with backoff): its rows stay held or
   * parked meanwhile, so the partition's position waits, and moves on once the answer is in.
   */
  lookup(team: number): void {
    if (this.#lookingUp.has(team)) return;
    this.#lookingUp.add(team);
    const rt = this.#rt;
    const signal = rt.stop.signal;
    rt.track(
      (async () => {
        for (let failures = 0; !signal.aborted;) {
          try {
            await rt.directory.lookup(team, signal);
          } catch (error) {
            failures++;
            rt.metrics.teamLookupFailures.inc();
            rt.logger.warn({ team, failures, err: error }, 'team lookup failed; its rows stay held and it is asked again');
            await sleep(backoffDelay(rt.config.retry, failures), undefined, { signal }).catch(() => undefined);
            continue;
          }
          this.release(team);
          // Rows of the team parked while waiting (over the held budget) are read again.
          if (!rt.parking.active && rt.anyNeedsRewind()) this.#cb.requestRewind();
          return;
        }
      })().finally(() => this.#lookingUp.delete(team)),
    );
  }

  /** Routes held rows again (of one team, or all) after their mapping may have appeared. */
  release(team: number | undefined): void {
    const rt = this.#rt;
    for (const state of rt.partitions.values()) {
      if (state.held.length === 0) continue;
      const still: typeof state.held = [];
      for (const held of state.held) {
        if (team !== undefined && held.team !== team) {
          still.push(held);
          continue;
        }
        const decision = rt.directory.decide(held.route, held.team);
        if (decision.kind === 'hold') {
          still.push(held);
          continue;
        }
        if (decision.kind === 'deadLetter') {
          this.#cb.deadLetter(state, held.route, held.record, held.chunk, {
            errorClass: ErrorClasses.unknownTeam,
            code: 'INSERTER_UNKNOWN_TEAM',
            message: `team ${held.team} has no destination`,
            route: held.route.name,
            ...(held.team === undefined ? {} : { team: held.team }),
          });
        } else {
          this.#cb.batch(state, held.route, held.record, held.row, held.team, held.chunk, decision.destination);
        }
        held.ack.resolve();
        this.#heldBytes -= held.size;
        rt.metrics.heldRecords.dec();
        rt.budget.release(held.size, undefined);
      }
      state.held = still;
    }
  }
}
