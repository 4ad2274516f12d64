// Owns re-forming batches from pending intents (docs/design/delivery.md §3): a record named by a
// pending intent of its route joins that intent's re-formed batch, in the intent's destination,
// whatever the mapping says now; when the batch holds the recorded rows it is delivered under the
// recorded token (and parts). A re-formed batch is all or nothing: if any of its rows is paused,
// they all wait. A destination removed from the config parks its rows, never guesses another.
import { rowSize, type Row } from '../decode/row.ts';
import type { Batch, Lane } from '../batch/lane.ts';
import type { LaneControl } from '../control/lane-control.ts';
import type { LaneDelivery } from '../pipeline/lane-delivery.ts';
import type { PartitionState } from '../pipeline/partition-state.ts';
import type { PipelineRuntime } from '../pipeline/runtime.ts';
import type { RouteConfig } from '../config/load.ts';
import type { SourceRecord } from '../source/types.ts';
import type { AckChunk } from './partition-tracker.ts';
import type { Intent } from './ledger.ts';

export class Replays {
  readonly #rt: PipelineRuntime;
  readonly #control: LaneControl;
  readonly #delivery: LaneDelivery;

  constructor(rt: PipelineRuntime, control: LaneControl, delivery: LaneDelivery) {
    this.#rt = rt;
    this.#control = control;
    this.#delivery = delivery;
  }

  join(state: PartitionState, route: RouteConfig, intent: Intent, record: SourceRecord, row: Row, team: number | undefined, chunk: AckChunk): void {
    const destination = this.#rt.directory.destination(intent.destination);
    if (destination === undefined || state.parkedIntents.has(intent.token) || this.#blocked(route, intent)) {
      this.#control.park(state, chunk);
      // All or nothing: the rows joined so far wait too, and every later one until the partition is
      // read again — else `readPast` would deliver the batch short, and its intent's completion would
      // resolve the parked records without their rows (lost).
      state.parkedIntents.add(intent.token);
      if (destination !== undefined) this.#drop(state, this.#control.laneFor(state, route, destination), intent);
      return;
    }
    const lane = this.#control.laneFor(state, route, destination);
    if (!lane.replays.has(intent.token)) state.replaying++;
    const batch = lane.appendReplay(intent, record, row, team, chunk);
    this.#rt.budget.reserve(rowSize(row), destination.id);
    if (batch.size >= intent.rows) this.#complete(state, lane, batch);
  }

  /**
   * Re-formed batches whose records the partition has read past are complete even if they hold
   * fewer rows than recorded (their other records were resolved before the position read from);
   * waiting longer would stall the partition forever. Their token still names the original batch.
   */
  readPast(state: PartitionState, offset: bigint): void {
    for (const lane of state.lanes.values()) {
      for (const batch of [...lane.replays.values()]) if (batch.intent !== undefined && offset >= batch.intent.records.last) this.#complete(state, lane, batch);
    }
  }

  /** Forgets the re-formed batch of `intent` (its records are read again after the rewind that parking asks for). */
  #drop(state: PartitionState, lane: Lane, intent: Intent): void {
    const batch = lane.replays.get(intent.token);
    if (batch === undefined) return;
    lane.replays.delete(intent.token);
    state.replaying--;
    this.#rt.budget.release(batch.bytes, lane.destination.id);
  }

  #complete(state: PartitionState, lane: Lane, batch: Batch): void {
    const intent = batch.intent as Intent;
    lane.replays.delete(intent.token);
    state.replaying--;
    // An intent names its records exactly: a re-formed batch short of them means the group's
    // position was moved past some of them (an operator reset); say so loudly.
    if (batch.size !== intent.rows) this.#rt.logger.error({ token: intent.token, rows: batch.size, recorded: intent.rows }, 're-formed batch differs from its intent');
    this.#delivery.enqueue(lane, batch);
  }

  #blocked(route: RouteConfig, intent: Intent): boolean {
    const destination = this.#rt.directory.destination(intent.destination);
    if (destination === undefined || !this.#rt.parking.active) return false;
    if (intent.teams === undefined) return this.#control.blocks(route, destination, undefined);
    for (const team of intent.teams) if (this.#control.blocks(route, destination, team)) return true;
    return false;
  }
}
