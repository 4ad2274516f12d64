// Owns the read-only view of a pipeline for operators: per partition its committed position and
// unresolved records, per lane its state (running, paused, backing off, failing), last insert and
// last error class, and which destinations are parked.
import type { PartitionState } from './partition-state.ts';
import type { Parking } from './parking.ts';

export type LaneState = 'running' | 'paused' | 'parked' | 'backing_off' | 'failing';

export interface LaneStatus {
  readonly route: string;
  readonly table: string;
  readonly destination: string;
  readonly state: LaneState;
  readonly lastInsertAt: number | undefined;
  readonly lastErrorClass: string | undefined;
  readonly lastErrorAt: number | undefined;
  readonly insertedRows: number;
}

export interface PartitionStatus {
  readonly topic: string;
  readonly partition: number;
  readonly committed: string;
  /** The position a commit would store now: every record below it is resolved (at least `committed`). */
  readonly committable: string;
  readonly unresolved: number;
  readonly held: number;
  /** Batches being re-formed after a rewind (the source reads past the memory budget meanwhile). */
  readonly replaying: number;
  readonly lanes: readonly LaneStatus[];
}

export interface PipelineStatus {
  readonly partitions: readonly PartitionStatus[];
  readonly pauses: readonly string[];
  readonly parkedDestinations: readonly string[];
  readonly bufferedBytesByDestination: Readonly<Record<string, number>>;
  /** Bytes expected for the bodies of queued batches, not made yet (MemoryBudget.pending): the source waits on them too. */
  readonly pendingBodyBytes?: number;
}

/** A lane that failed this recently and has not inserted since is failing, not just backing off. */
const FAILING_AFTER_MS = 60_000;

export class PipelineStatusView {
  readonly #partitions: Iterable<PartitionState>;
  readonly #parking: Parking;
  readonly #buffered: ReadonlyMap<string, number>;
  readonly #pendingBodies: number;

  constructor(partitions: Iterable<PartitionState>, parking: Parking, buffered: ReadonlyMap<string, number>, pendingBodies = 0) {
    this.#partitions = partitions;
    this.#parking = parking;
    this.#buffered = buffered;
    this.#pendingBodies = pendingBodies;
  }

  build(): PipelineStatus {
    const now = Date.now();
    const partitions = [...this.#partitions].map((s) => ({
      topic: s.ref.topic,
      partition: s.ref.partition,
      committed: String(s.committed),
      committable: String(s.peekPositionToCommit()?.offset ?? s.committed),
      unresolved: s.tracker.unresolved(),
      held: s.held.length,
      replaying: s.replaying,
      lanes: [...s.lanes.values()].map((lane): LaneStatus => {
        const scope = { route: lane.route.name, database: lane.table.database, table: lane.table.table, destination: lane.destination.id };
        let state: LaneState = 'running';
        if (lane.stop.signal.aborted || this.#parking.stopsLane(scope)) state = 'paused';
        else if (this.#parking.isDestinationParked(lane.destination.id)) state = 'parked';
        else if (lane.stats.failing) state = now - lane.stats.lastInsertAt > FAILING_AFTER_MS ? 'failing' : 'backing_off';
        return {
          route: lane.route.name,
          table: `${lane.table.database}.${lane.table.table}`,
          destination: lane.destination.id,
          state,
          lastInsertAt: lane.stats.lastInsertAt || undefined,
          lastErrorClass: lane.stats.lastErrorClass,
          lastErrorAt: lane.stats.lastErrorAt || undefined,
          insertedRows: lane.stats.insertedRows,
        };
      }),
    }));
    return {
      partitions,
      pauses: this.#parking.pauses.map((p) => p.id),
      parkedDestinations: this.#parking.parkedDestinations(),
      bufferedBytesByDestination: Object.fromEntries(this.#buffered),
      pendingBodyBytes: this.#pendingBodies,
    };
  }
}
