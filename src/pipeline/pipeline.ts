// Owns the coordination of one process's data flow: source → decode → route → batch → encode →
// sink → ack. Each record of an owned partition is tracked for the commit watermark, decoded per
// route, and — unless the ledger knows it resolved, its dead letter is in flight, or a pending
// intent names it — routed: batched for its destination, held for its team's lookup, parked when
// paused, or dead-lettered. The stages live in their folders (route/holds.ts,
// control/lane-control.ts, pipeline/lane-delivery.ts, ack/replays.ts, ack/committer.ts,
// deadletter/dead-lettering.ts, source/rewinder.ts); this file wires them and owns partition
// ownership, timers and shutdown. docs/design/delivery.md is the design.
import type { LedgerStore } from '../ack/ledger.ts';
import { Committer } from '../ack/committer.ts';
import type { AckChunk } from '../ack/partition-tracker.ts';
import { Replays } from '../ack/replays.ts';
import { MemoryBudget } from '../batch/budget.ts';
import type { Lane } from '../batch/lane.ts';
import type { Config, DestinationConfig, RouteConfig } from '../config/load.ts';
import { LaneControl } from '../control/lane-control.ts';
import type { Pause, PauseScope } from '../control/scope.ts';
import { rowSize, type Row } from '../decode/row.ts';
import { decoderFor, type DecoderFactory } from '../decode/types.ts';
import { bodyBlocks, DEFAULT_POOL_BYTES } from '../encode/block-pool.ts';
import type { EncoderFactory } from '../encode/types.ts';
import { DeadLettering } from '../deadletter/dead-lettering.ts';
import type { DeadLetterSink } from '../deadletter/types.ts';
import { ErrorClasses } from '../errors/classes.ts';
import { DecodeError } from '../errors/inserter-error.ts';
import { DestinationDirectory, type SinkFactory } from '../route/destinations.ts';
import { Holds } from '../route/holds.ts';
import type { DestinationProvider } from '../route/provider.ts';
import { TopicRouting, type TopicRoute, type TopicRoutes } from '../route/topic-routes.ts';
import { StaticConfigProvider } from '../route/providers/static.ts';
import { Rewinder } from '../source/rewinder.ts';
import type { PartitionRef, Source, SourceHandler, SourceRecord } from '../source/types.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { Deliverer } from './deliver.ts';
import { LaneDelivery } from './lane-delivery.ts';
import { Ownership } from './ownership.ts';
import type { PartitionState } from './partition-state.ts';
import { PipelineRuntime } from './runtime.ts';
import { PipelineStatusView, type PipelineStatus } from './status.ts';
import { TableSchemas } from './table-schemas.ts';
import { TrackedSink } from './tracked-sink.ts';

/** How long the final commit of a close whose deadline passed may take. */
const FINAL_COMMIT_MS = 10_000;

export type { PipelineStatus } from './status.ts';

export interface PipelineDeps {
  readonly config: Config;
  readonly source: Source;
  readonly sinkFactory: SinkFactory;
  readonly deadLetters: DeadLetterSink;
  /** Where intents are recorded; without it delivery is at-least-once. */
  readonly ledgers?: LedgerStore;
  /** Team → destination mappings; started by the caller. Default: the YAML config's own. */
  readonly provider?: DestinationProvider;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Chooses a table's row encoder from its live columns (default: encode/types.ts; the simulation wraps it). */
  readonly encoders?: EncoderFactory;
  /** Builds a route's decoder (default: decode/types.ts; the simulation wraps it). */
  readonly decoders?: DecoderFactory;
}

export class Pipeline implements SourceHandler {
  readonly #rt: PipelineRuntime;
  readonly #topics: TopicRouting;
  /** The state of the last record's partition (records come in runs per partition); dropped on any ownership change. */
  #lastState: PartitionState | undefined;
  /** The lane of the last batched row, for the next row of the same state, route and destination. */
  #lastLane: { state: PartitionState; route: RouteConfig; destination: DestinationConfig; lane: Lane } | undefined;
  readonly #rewinder: Rewinder;
  readonly #control: LaneControl;
  readonly #deadLetters: DeadLettering;
  readonly #deliverer: Deliverer;
  readonly #delivery: LaneDelivery;
  readonly #replays: Replays;
  readonly #holds: Holds;
  readonly #committer: Committer;
  readonly #ownership: Ownership;
  #timers: NodeJS.Timeout[] = [];
  #running: Promise<void> | undefined;
  /** Changes whenever the source's streams restart from committed positions (rewinds, restarts). */
  #streams = 0;
  #closing: Promise<void> | undefined;

  constructor(deps: PipelineDeps) {
    const rt = (this.#rt = new PipelineRuntime({ config: deps.config, logger: deps.logger, metrics: deps.metrics, source: deps.source, ledgers: deps.ledgers }));
    const track = (task: Promise<void>): void => rt.track(task);
    this.#rewinder = new Rewinder({ source: deps.source, config: deps.config, logger: deps.logger, stop: rt.stop.signal, hardStop: rt.hardStop.signal, track, onSwitch: () => this.onReset() });
    const requestRewind = (): void => {
      this.#streams++;
      this.#rewinder.request();
    };
    this.#control = new LaneControl(rt, requestRewind);
    rt.budget = new MemoryBudget(deps.config, deps.metrics, (id, held) => this.#control.checkBudget(id, held));
    // Idle body blocks stay resident: at most half the budget, whose rows bound what bodies hold.
    bodyBlocks.setCapacity(Math.min(DEFAULT_POOL_BYTES, deps.config.maxBufferedBytes / 2));
    deps.metrics.idleBodyBytesReader = () => bodyBlocks.idleBytes;
    rt.directory = new DestinationDirectory(
      deps.config,
      deps.provider ?? new StaticConfigProvider(deps.config),
      (d) => new TrackedSink(deps.sinkFactory(d), rt.inflight, rt.hardStop.signal),
      deps.logger,
    );
    rt.directory.follow(() => this.#onDestinationsChanged());
    const routes: TopicRoute[] = [];
    for (const route of deps.config.routes) {
      const onRegistryUnavailable = (error: Error, attempt: number): void => {
        rt.metrics.schemaRegistryFailures.inc({ route: route.name });
        rt.logger.warn({ route: route.name, attempt, err: error }, 'schema registry cannot answer; records of this schema wait');
      };
      routes.push({ route, decoder: (deps.decoders ?? decoderFor)(route, deps.config, { onRegistryUnavailable }) });
    }
    // Label children looked up once per topic: the per-record path does no label hashing.
    this.#topics = new TopicRouting(routes, (topic) => ({ messages: rt.metrics.consumedMessages.labels(topic), bytes: rt.metrics.consumedBytes.labels(topic) }));
    this.#deadLetters = new DeadLettering(rt, deps.deadLetters, requestRewind);
    this.#deliverer = new Deliverer({
      config: deps.config,
      directory: rt.directory,
      schemas: new TableSchemas(deps.config, deps.logger, deps.encoders),
      metrics: deps.metrics,
      logger: deps.logger,
      budget: rt.budget,
      deadLetter: (lane, record, team, reason) =>
        this.#deadLetters.write(lane.route, record, {
          ...reason,
          route: lane.route.name,
          destination: lane.destination.id,
          table: `${lane.table.database}.${lane.table.table}`,
          ...(team === undefined ? {} : { team }),
        }),
    });
    this.#delivery = new LaneDelivery(rt, this.#deliverer, this.#control, (state, error) => this.#ownership.ledgerLost(state, error));
    this.#replays = new Replays(rt, this.#control, this.#delivery);
    this.#holds = new Holds(rt, {
      park: (state, chunk) => this.#control.park(state, chunk),
      // A released row of a parked or paused destination is parked like a row read now (review 2026-12-06f).
      batch: (state, route, record, row, team, chunk, destination) =>
        this.#control.blocks(route, destination, team) ? this.#control.park(state, chunk) : this.#batch(state, route, record, row, team, chunk, destination),
      deadLetter: (state, route, record, chunk, reason) => this.#deadLetters.record(state, route, record, chunk, reason),
      canPark: () => this.#rewinder.supported,
      requestRewind,
    });
    this.#ownership = new Ownership(rt, (state) => this.#holds.forget(state), requestRewind);
    this.#committer = new Committer(rt, (state) => this.#ownership.saveForCommit(state));
  }

  static topicsOf(config: Config): string[] {
    return [...new Set(config.routes.map((r) => r.topic))];
  }

  /** Starts consuming; resolves when the source stops (close() or a fatal source error). */
  start(): Promise<void> {
    if (this.#running) return this.#running;
    const rt = this.#rt;
    const tick = Math.max(10, Math.min(250, Math.floor(rt.config.batch.maxAgeMs / 4)));
    this.#timers.push(setInterval(() => this.#tick(), tick));
    this.#timers.push(setInterval(() => rt.track(this.#committer.commit()), rt.config.commitIntervalMs));
    this.#running = rt.source.run(this, rt.stop.signal);
    return this.#running;
  }

  onAssigned(partitions: readonly PartitionRef[]): void {
    this.#lastState = undefined;
    this.#ownership.assigned(partitions); // a partition owned again requests a rewind (which counts as a stream change)
  }

  onRevoked(partitions: readonly PartitionRef[]): void {
    // Not a stream change for the partitions kept: a record of theirs waiting for its schema stays
    // valid (the source reads on after it); one of a revoked partition is dropped by `owns` when it
    // comes back.
    this.#lastState = undefined;
    this.#ownership.revoked(partitions);
  }

  /** The source restarted from the committed positions (a rewind, or after a failure): forget in-memory progress. */
  onReset(): void {
    this.#streams++;
    for (const state of this.#rt.partitions.values()) this.#ownership.reset(state);
    this.#rt.metrics.rewinds.inc();
  }

  onRecord(record: SourceRecord): void | Promise<void> {
    const rt = this.#rt;
    // The last record's partition state, while no assignment changed since (a state abandoned for a
    // lost ledger is marked revoked, and is never reused): its partition is owned.
    let state = this.#lastState;
    if (state === undefined || state.revoked || state.ref.partition !== record.partition || state.ref.topic !== record.topic) {
      state = undefined;
      // Records of a partition this process no longer owns (still buffered in the stream) are
      // dropped: the owner reads them from the committed position.
      if (!this.#ownership.owns(record)) return;
    }
    // Read before a requested rewind switched streams: possibly from a stale position (a partition
    // owned again). Everything is read again from the committed positions after the switch.
    if (this.#rewinder.pending) return;
    const topic = this.#topics.of(record.topic);
    // A record whose schema is not loaded yet (a new registry id) waits for it before it is tracked,
    // then takes the whole path again (ownership and rewinds may have changed meanwhile).
    const schema = topic.prepares ? this.#prepare(topic, record) : undefined;
    if (schema !== undefined) {
      const streams = this.#streams;
      return schema.then(
        // A rewind began or the source restarted meanwhile: the record may be stale; it is read again.
        () => (streams === this.#streams ? this.onRecord(record) : undefined),
        (error: unknown) => {
          if (!rt.stop.signal.aborted) throw error; // a stop ends the wait: the record is read again after a restart
        },
      );
    }
    if (state === undefined) this.#lastState = state = this.#ownership.stateFor(record);
    if (rt.ledgers !== undefined && state.ledger === undefined) {
      // The partition's ledger must be known before its first record is routed.
      return state.loadLedger(rt.ledgers, rt.hardStop.signal).then(() => {
        const pending = state.ledger?.pending() ?? 0;
        if (pending > 0) rt.logger.info({ topic: state.ref.topic, partition: state.ref.partition, pending }, 're-forming batches recorded before a restart');
        if (!state.revoked) return this.#process(state, topic, record);
      });
    }
    return this.#process(state, topic, record);
  }

  /** What the record's decoders must load before it can be decoded (undefined: nothing). */
  #prepare(topic: TopicRoutes, record: SourceRecord): Promise<unknown> | undefined {
    let waits: Array<Promise<void>> | undefined;
    for (const { decoder } of topic.routes) {
      // A graceful stop ends the wait too: the record is not tracked yet, the next owner reads it.
      const wait = decoder.prepare?.(record, this.#rt.stop.signal);
      if (wait !== undefined) (waits ??= []).push(wait);
    }
    return waits === undefined ? undefined : Promise.all(waits);
  }

  #process(state: PartitionState, topic: TopicRoutes, record: SourceRecord): void | Promise<void> {
    const rt = this.#rt;
    if (state.tracker.seen(record.offset)) return; // re-delivered after a rejoin: already tracked
    if (state.ledger !== undefined && record.offset < state.ledger.resolvedBelow) {
      // Resolved before the group's position went back (its intent may be pruned): never route again.
      state.tracker.track(record.offset, record.epoch);
      return;
    }
    topic.messages.inc();
    topic.bytes.inc(record.value?.length ?? 0);
    const chunk = state.tracker.track(record.offset, record.epoch);
    for (const route of topic.routes) this.#routeRecord(state, route, record, chunk);
    if (state.replaying > 0) this.#replays.readPast(state, record.offset);
    // A batch being re-formed (in any partition) needs its remaining rows before anything can drain:
    // never wait then.
    if (rt.budget.over && !rt.anyReplaying()) {
      this.#delivery.flushLargest(); // memory is full: the largest open batch goes now, not at its age
      return rt.budget.waitForDrain();
    }
  }

  #routeRecord(state: PartitionState, { route, decoder }: TopicRoute, record: SourceRecord, chunk: AckChunk): void {
    if (state.ledger?.isResolved(route.name, record.offset) === true) return; // in its warehouse or dead-lettered
    // Its dead letter is being written (since before a rewind): it resolves when that write does.
    if (state.deadLetters.size > 0 && state.joinDeadLetter(route.name, record.offset, chunk)) return;
    let row: Row;
    let team: number | undefined;
    try {
      ({ row, teamId: team } = decoder.decode(record));
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.#rt.metrics.decodeErrors.inc({ route: route.name, code: error.code });
      const errorClass = error.code === 'INSERTER_DECODE_OVERSIZED' ? ErrorClasses.oversized : ErrorClasses.decode;
      this.#deadLetters.record(state, route, record, chunk, { errorClass, code: error.code, message: error.message, route: route.name });
      return;
    }
    const intent = state.ledger?.claim(route.name, record.offset);
    if (intent !== undefined) {
      this.#replays.join(state, route, intent, record, row, team, chunk);
      return;
    }
    const decision = this.#rt.directory.decide(route, team);
    if (decision.kind === 'destination' && !this.#control.blocks(route, decision.destination, team)) {
      this.#batch(state, route, record, row, team, chunk, decision.destination);
      return;
    }
    const teamField = team === undefined ? {} : { team };
    if (decision.kind === 'deadLetter') {
      const errorClass = decision.reason === 'no_team' ? ErrorClasses.decode : ErrorClasses.unknownTeam;
      const message = decision.reason === 'no_team' ? 'message has no team id' : `team ${team} has no destination`;
      this.#deadLetters.record(state, route, record, chunk, {
        errorClass,
        code: decision.reason === 'no_team' ? 'INSERTER_NO_TEAM' : 'INSERTER_UNKNOWN_TEAM',
        message,
        route: route.name,
        ...teamField,
      });
    } else if (decision.kind === 'hold') {
      this.#holds.hold(state, route, record, row, team, chunk);
      if (decision.lookup && team !== undefined) this.#holds.lookup(team);
    } else if (this.#control.outlived(decision.destination)) {
      const destination = decision.destination;
      const table = `${route.database ?? destination.database}.${route.table}`;
      this.#deadLetters.record(state, route, record, chunk, {
        errorClass: ErrorClasses.destinationDown,
        code: 'INSERTER_DESTINATION_DOWN',
        message: `destination ${destination.id} has been unavailable longer than deadLetterAfterParkedMs`,
        route: route.name,
        destination: destination.id,
        table,
        ...teamField,
      });
    } else {
      this.#control.park(state, chunk);
    }
  }

  /** Appends a routed row to its lane's open batch; a full batch is queued for delivery. */
  #batch(state: PartitionState, route: RouteConfig, record: SourceRecord, row: Row, team: number | undefined, chunk: AckChunk, destination: DestinationConfig): void {
    let cached = this.#lastLane;
    if (cached === undefined || cached.state !== state || cached.route !== route || cached.destination !== destination) {
      cached = this.#lastLane = { state, route, destination, lane: this.#control.laneFor(state, route, destination) };
    }
    const lane = cached.lane;
    const batch = lane.append(record, row, team, chunk);
    this.#rt.budget.reserve(rowSize(row), destination.id);
    if (batch.size >= this.#rt.config.batch.maxRows || batch.bytes >= this.#rt.config.batch.maxBytes) this.#delivery.flush(lane);
  }

  /**
   * New mappings: batches decided under the old ones are flushed first (a batch holds the rows of
   * one mapping), then held rows route again, and rows parked while waiting are re-read.
   */
  #onDestinationsChanged(): void {
    const rt = this.#rt;
    for (const state of rt.partitions.values()) for (const lane of state.lanes.values()) if (!lane.stop.signal.aborted) this.#delivery.flush(lane);
    this.#holds.release(undefined);
    if (rt.anyNeedsRewind() && !rt.parking.active) {
      this.#streams++;
      this.#rewinder.request();
    }
  }

  #tick(): void {
    const now = Date.now();
    for (const state of this.#rt.partitions.values()) {
      for (const lane of state.lanes.values()) if (lane.open !== undefined && now - lane.open.createdAt >= this.#rt.config.batch.maxAgeMs) this.#delivery.flush(lane);
    }
    this.#control.tick();
  }

  /** Applies the cluster-wide pause set (control/lane-control.ts). */
  setPauses(pauses: readonly Pause[]): void {
    this.#control.setPauses(pauses);
  }

  /** Insert requests on the wire now that may carry rows of the scope; 0 means the scope is quiet. */
  inflight(scope: PauseScope): number {
    return this.#control.inflight(scope);
  }

  /** Per partition and lane: state, progress and the last error, for the admin API and tests. */
  status(): PipelineStatus {
    return new PipelineStatusView(this.#rt.partitions.values(), this.#rt.parking, this.#rt.budget.byDestination, this.#rt.budget.pending).build();
  }

  /**
   * Graceful stop: stop fetching, flush open batches, wait for deliveries (up to the deadline),
   * commit what is resolved, leave the group. Idempotent.
   */
  close(deadlineMs = 30_000): Promise<void> {
    this.#closing ??= (async () => {
      const rt = this.#rt;
      const destroyed = rt.hardStop.signal.aborted;
      rt.stop.abort();
      rt.budget.wakeAll();
      // Armed before the source is awaited: the record it hands over may wait (a takeover waiting
      // for the previous owner's lease) until the hard stop ends the wait.
      const deadline = setTimeout(() => rt.hardStop.abort(), deadlineMs);
      await this.#running?.catch((error: unknown) => rt.logger.warn({ err: error }, 'source stopped with an error'));
      // Timers stop first: a commit timer still adding tasks would keep the wait below from ending.
      for (const timer of this.#timers) clearInterval(timer);
      for (const state of rt.partitions.values()) for (const lane of state.lanes.values()) if (!lane.stop.signal.aborted) this.#delivery.flush(lane);
      await rt.settle();
      clearTimeout(deadline);
      // The deadline passed (not destroy()): what is resolved is still committed, within a bound of its own.
      if (rt.hardStop.signal.aborted && !destroyed) rt.saveSignal = AbortSignal.timeout(FINAL_COMMIT_MS);
      await this.#committer.commit(true); // a commit begun before the drain may be in flight: the next one sees all
      await this.#committer.commit(true);
      const stuck = this.status().partitions.filter((p) => p.unresolved > 0);
      const partitions = stuck.map(({ lanes, ...p }) => ({ ...p, lanes: lanes.map((l) => `${l.destination}:${l.state}`) }));
      if (stuck.length > 0) rt.logger.warn({ partitions }, 'stopping with unresolved records: they are read again by the next owner');
      await rt.source.close();
      await Promise.allSettled([rt.directory.close(), this.#deadLetters.close(), rt.ledgers?.close(), this.#deliverer.flushReports()]);
    })();
    return this.#closing;
  }

  /** Immediate stop without flushing: in-flight work is abandoned (it is re-read after restart). */
  async destroy(): Promise<void> {
    this.#rt.hardStop.abort();
    await this.close(0);
  }
}
