// Owns which lanes may insert: operator pauses (table, route, destination, team or all), and
// destinations parked because they hold more than their memory budget while failing. A stopped
// lane drops its open and re-forming batches (Kafka keeps the rows; the partition is marked to be
// re-read), stops further insert attempts (an attempt on the wire finishes), and new rows of the
// scope are parked. Lifting a pause or a parked destination's recovery re-reads from the committed
// positions; a destination parked past its deadLetterAfterParkedMs has its rows dead-lettered.
import { AckSet, type AckChunk } from '../ack/partition-tracker.ts';
import { Lane, type Batch } from '../batch/lane.ts';
import type { DestinationConfig, RouteConfig } from '../config/load.ts';
import type { PartitionState } from '../pipeline/partition-state.ts';
import type { PipelineRuntime } from '../pipeline/runtime.ts';
import { scopeMatches, scopeTouchesLane, type Pause, type PauseScope } from './scope.ts';

/** How often a parked destination with nothing in flight is asked whether it is back. */
const PROBE_INTERVAL_MS = 1_000;

type LaneScope = { route: string; database: string; table: string; destination: string };

export class LaneControl {
  readonly #rt: PipelineRuntime;
  readonly #requestRewind: () => void;
  readonly #probedAt = new Map<string, number>();
  /** Parked destinations whose rows are being dead-lettered (past deadLetterAfterParkedMs). */
  readonly #outlived = new Set<string>();

  constructor(rt: PipelineRuntime, requestRewind: () => void) {
    this.#rt = rt;
    this.#requestRewind = requestRewind;
  }

  /** The partition's lane for (route, destination), created stopped if a pause or parking covers it. */
  laneFor(state: PartitionState, route: RouteConfig, destination: DestinationConfig): Lane {
    const laneKey = `${route.name}\u0000${destination.id}`;
    let lane = state.lanes.get(laneKey);
    if (lane === undefined) {
      lane = new Lane(state.ref.topic, state.ref.partition, route, destination);
      if (this.#rt.parking.active && this.#rt.parking.stopsLane(laneScope(lane))) stopLane(lane);
      state.lanes.set(laneKey, lane);
    }
    return lane;
  }

  /** A row of this team for (route, destination) must not be batched now. */
  blocks(route: RouteConfig, destination: DestinationConfig, team: number | undefined): boolean {
    return this.#rt.parking.active && this.#rt.parking.blocks({ route: route.name, database: route.database ?? destination.database, table: route.table, destination: destination.id, team });
  }

  /** Leaves a record unresolved on purpose; it is re-read from Kafka when its scope resumes. */
  park(state: PartitionState, chunk: AckChunk): void {
    new AckSet().add(chunk);
    state.needsRewind = true;
  }

  /** Whether a batch about to be inserted is stopped by a pause or parking (it is then re-read later). */
  stopsBatch(lane: Lane, batch: Batch): boolean {
    return this.#rt.parking.active && this.#rt.parking.stopsBatch(laneScope(lane), batch.teamSet);
  }

  /**
   * Applies the cluster-wide pause set. Newly paused lanes stop: their open batches are dropped
   * (Kafka keeps the rows), further insert attempts stop, and an attempt on the wire finishes —
   * inflight(scope) reaches 0 when the scope is quiet. Lifting a pause re-reads from the committed
   * positions, so everything resumes exactly where it stopped.
   */
  setPauses(pauses: readonly Pause[]): void {
    const { added, lifted } = this.#rt.parking.setPauses(pauses);
    if (added.length === 0 && !lifted) return;
    this.#rt.metrics.pausedScopes.set(pauses.length);
    const laneScopes = added.filter((scope) => scope.kind !== 'team');
    const teams = new Set(added.flatMap((scope) => (scope.kind === 'team' ? [scope.team] : [])));
    if (laneScopes.length > 0) this.#stopLanes((lane) => laneScopes.some((scope) => scopeTouchesLane(scope, laneScope(lane))));
    if (teams.size > 0) this.#stopTeams(teams);
    if (lifted) {
      this.#restartLanes();
      this.#requestRewind();
    }
  }

  /** Insert requests on the wire now that may carry rows of the scope; 0 means the scope is quiet. */
  inflight(scope: PauseScope): number {
    let n = 0;
    for (const active of this.#rt.inflight.active()) {
      if (active.attempts === 0) continue;
      if (scope.kind === 'team' ? active.batch.teamSet.has(scope.team) : scopeMatches(scope, { ...laneScope(active.lane), team: undefined })) n += active.attempts;
    }
    return n;
  }

  /**
   * A destination holding `held` bytes: parked if it is stuck (failing, or a request on the wire
   * longer than its stalledAfterMs) while it holds more than its budget or the shared budget is full.
   */
  checkBudget(id: string, held: number): void {
    const rt = this.#rt;
    const destination = rt.directory.destination(id);
    if (destination === undefined || (held <= destination.maxBufferedBytes && !rt.budget.over) || held <= 0 || rt.parking.isDestinationParked(id)) return;
    const failing = rt.inflight.failingDestinations.has(id);
    const stalledMs = failing ? 0 : rt.inflight.oldestRequestAge(id, Date.now());
    if (!failing && stalledMs < destination.stalledAfterMs) return;
    rt.parking.parkDestination(id);
    rt.budget.park(id);
    rt.metrics.parkedDestinations.set(rt.parking.parkedDestinations().length);
    rt.logger.warn(
      { destination: id, bufferedBytes: held, budget: destination.maxBufferedBytes, ...(failing ? {} : { stalledMs }) },
      failing
        ? 'destination failing while over its memory budget or the shared one: parked (Kafka keeps its rows)'
        : 'destination stalled (a request on the wire too long) while over its memory budget or the shared one: parked (Kafka keeps its rows)',
    );
    // Open batches and new batches queued behind the delivery on the wire are dropped (what it holds
    // is then only in flight: review 2026-12-06f); the delivery already retrying stays, as the probe
    // for recovery. A queued re-formed batch stays: its intent is recorded and being replayed.
    for (const state of rt.partitions.values()) {
      for (const lane of state.lanes.values()) {
        if (lane.destination.id !== id) continue;
        const open = lane.take();
        if (open) {
          rt.budget.release(open.bytes, id);
          state.needsRewind = true;
        }
        for (const batch of lane.queued) {
          if (batch.intent !== undefined) continue;
          lane.queued.delete(batch);
          batch.dropped = true;
          rt.budget.releaseBatch(batch, id);
          state.needsRewind = true;
        }
      }
    }
  }

  /** On every tick: stuck destinations to park (a stall shows with time, not with a reservation); while something is parked, recoveries, probes and outlived limits. */
  tick(): void {
    const budget = this.#rt.budget;
    for (const [id, held] of budget.byDestination) if (held > 0) this.checkBudget(id, held);
    if (this.#rt.parking.parkedDestinations().length === 0) return;
    this.#checkParked();
    this.#checkOutlived();
  }

  /** A parked destination past its deadLetterAfterParkedMs: its rows go to the dead-letter topic. */
  outlived(destination: DestinationConfig): boolean {
    const limit = destination.deadLetterAfterParkedMs;
    if (limit === undefined) return false;
    const parkedFor = this.#rt.parking.parkedFor(destination.id);
    return parkedFor !== undefined && parkedFor >= limit;
  }

  /** Stops the matching lanes: open batches dropped, retries stopped, new rows parked. */
  #stopLanes(matches: (lane: Lane) => boolean): void {
    const rt = this.#rt;
    for (const state of rt.partitions.values()) {
      for (const lane of state.lanes.values()) {
        if (!matches(lane)) continue;
        stopLane(lane);
        // Its queued batches will not be sent while it is stopped: the source must not wait on their bodies.
        for (const batch of lane.queued) rt.budget.bodiesStarted(batch, lane.destination.id);
        const open = lane.take();
        if (open) {
          rt.budget.release(open.bytes, lane.destination.id);
          state.needsRewind = true;
        }
        // A re-formed batch is all or nothing: its later records park too until the partition is
        // read again (else a short copy of it could complete its intent without the dropped rows).
        for (const [token, replay] of lane.replays) {
          rt.budget.release(replay.bytes, lane.destination.id);
          state.parkedIntents.add(token);
        }
        if (lane.replays.size > 0) state.needsRewind = true;
        state.replaying -= lane.replays.size;
        lane.replays.clear();
      }
    }
  }

  /** Stops only what holds rows of these teams: open and re-forming batches, and deliveries. */
  #stopTeams(teams: ReadonlySet<number>): void {
    const rt = this.#rt;
    const holds = (batch: Batch): boolean => [...teams].some((team) => batch.teamSet.has(team));
    for (const state of rt.partitions.values()) {
      for (const lane of state.lanes.values()) {
        for (const batch of lane.queued) if (holds(batch)) rt.budget.bodiesStarted(batch, lane.destination.id);
        if (lane.open !== undefined && holds(lane.open)) {
          rt.budget.release((lane.take() as Batch).bytes, lane.destination.id);
          state.needsRewind = true;
        }
        for (const [token, replay] of lane.replays) {
          if (!holds(replay)) continue;
          rt.budget.release(replay.bytes, lane.destination.id);
          lane.replays.delete(token);
          state.parkedIntents.add(token); // all or nothing, as in #stopLanes
          state.replaying--;
          state.needsRewind = true;
        }
      }
    }
    for (const active of rt.inflight.active()) if (holds(active.batch)) active.batch.stop.abort();
  }

  /** Lanes no longer touched by any pause or parked destination get a fresh stop signal. */
  #restartLanes(): void {
    for (const state of this.#rt.partitions.values()) {
      for (const lane of state.lanes.values()) {
        if (lane.stop.signal.aborted && !lane.abandoned && !this.#rt.parking.stopsLane(laneScope(lane))) lane.stop = new AbortController();
      }
    }
  }

  /** A parked destination whose deliveries all finished is healthy again: unpark and re-read. */
  #checkParked(): void {
    const rt = this.#rt;
    for (const id of rt.parking.parkedDestinations()) {
      if (rt.budget.heldBy(id) > 0) continue;
      // Nothing of it in flight: it is back only once it answers. Probe it (a schema read) now and
      // then; the answer clears or keeps its failing mark.
      if (rt.inflight.failingDestinations.has(id)) {
        this.#probe(id);
        continue;
      }
      rt.parking.unparkDestination(id);
      rt.budget.unpark(id);
      this.#outlived.delete(id);
      rt.metrics.parkedDestinations.set(rt.parking.parkedDestinations().length);
      rt.logger.info({ destination: id }, 'parked destination recovered: re-reading its rows');
      this.#requestRewind();
    }
  }

  /** When a parked destination outlives its limit, its parked rows are read again to dead-letter them. */
  #checkOutlived(): void {
    for (const id of this.#rt.parking.parkedDestinations()) {
      const destination = this.#rt.directory.destination(id);
      if (destination === undefined || this.#outlived.has(id) || !this.outlived(destination)) continue;
      this.#outlived.add(id);
      this.#rt.logger.error({ destination: id, limitMs: destination.deadLetterAfterParkedMs }, 'destination unavailable past its limit: its rows go to the dead-letter topic until it recovers');
      this.#requestRewind();
    }
  }

  #probe(id: string): void {
    const rt = this.#rt;
    const now = Date.now();
    if ((this.#probedAt.get(id) ?? 0) > now - PROBE_INTERVAL_MS) return;
    this.#probedAt.set(id, now);
    const destination = rt.directory.destination(id);
    const route = rt.config.routes[0];
    if (destination === undefined || route === undefined) return;
    const table = { database: route.database ?? destination.database, table: route.table };
    rt.track(
      rt.directory
        .sink(destination)
        .describe(table, AbortSignal.timeout(destination.requestTimeoutMs))
        .then(
          () => undefined,
          () => undefined,
        ),
    );
  }
}

export function laneScope(lane: Lane): LaneScope {
  return { route: lane.route.name, database: lane.table.database, table: lane.table.table, destination: lane.destination.id };
}

function stopLane(lane: Lane): void {
  if (!lane.stop.signal.aborted) lane.stop.abort();
}
