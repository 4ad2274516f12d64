// Owns the data flow of one process: source → decode → route → batch → sink → ack. It keeps the
// per-partition state, flushes batches on rows, bytes or age, applies backpressure to the source,
// records each batch's intent before its insert (exactly-once), parks what is paused or over its
// destination's budget and re-reads it later, and commits positions only below records that are in
// their warehouse or in the dead-letter topic. docs/design/delivery.md is the design.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Intent, LedgerStore } from '../ack/ledger.ts';
import { OffsetSet } from '../ack/offset-set.ts';
import { AckSet, type AckChunk } from '../ack/partition-tracker.ts';
import type { Config, DestinationConfig, RouteConfig } from '../config/load.ts';
import { scopeMatches, scopeTouchesLane, type Pause, type PauseScope } from '../control/scope.ts';
import { decoderFor, type Decoder } from '../decode/types.ts';
import type { DeadLetterReason, DeadLetterSink } from '../deadletter/writer.ts';
import { ErrorClasses } from '../errors/classes.ts';
import { AbortedError, DecodeError } from '../errors/inserter-error.ts';
import { DestinationDirectory, type SinkFactory } from '../route/destinations.ts';
import { backoffDelay } from '../sink/retry.ts';
import type { DestinationProvider } from '../route/provider.ts';
import { StaticConfigProvider } from '../route/providers/static.ts';
import type { CommitPosition, PartitionRef, Source, SourceHandler, SourceRecord } from '../source/types.ts';
import { partitionKey } from '../source/types.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { Deliverer, type DeliveryJournal } from './deliver.ts';
import { Lane, type Batch } from './lane.ts';
import { Parking } from './parking.ts';
import { PartitionState } from './partition-state.ts';
import { InflightRegistry, TrackedSink } from './tracked-sink.ts';
import { TableSchemas } from './table-schemas.ts';
import { PipelineStatusView, type PipelineStatus } from './status.ts';

export type { PipelineStatus } from './status.ts';

/** How often a parked destination with nothing in flight is asked whether it is back. */
const PROBE_INTERVAL_MS = 1_000;
/** How often unchanged committed positions are committed again (see #commitOnce). */
const REASSERT_POSITIONS_MS = 10_000;

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
}

export class Pipeline implements SourceHandler {
  readonly #config: Config;
  readonly #source: Source;
  readonly #deadLetters: DeadLetterSink;
  readonly #ledgers: LedgerStore | undefined;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #directory: DestinationDirectory;
  readonly #deliverer: Deliverer;
  readonly #inflight = new InflightRegistry();
  readonly #parking = new Parking();
  readonly #routesByTopic = new Map<string, RouteConfig[]>();
  readonly #decoders = new Map<RouteConfig, Decoder>();
  readonly #partitions = new Map<string, PartitionState>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #stop = new AbortController();
  /** Aborts deliveries and dead-letter waits: only on destroy() or when a shutdown deadline passes. */
  readonly #hardStop = new AbortController();
  #buffered = 0;
  #heldBytes = 0;
  readonly #bufferedByDestination = new Map<string, number>();
  #rewinding: Promise<void> | undefined;
  #committing: Promise<void> | undefined;
  readonly #probedAt = new Map<string, number>();
  /** Teams being looked up (one lookup loop per team). */
  readonly #lookingUp = new Set<number>();
  /** Parked destinations whose rows are being dead-lettered (past deadLetterAfterParkedMs). */
  readonly #outlived = new Set<string>();
  readonly #consumedByTopic = new Map<string, { messages: { inc(n?: number): void }; bytes: { inc(n?: number): void } }>();
  /** Partitions this process owns; undefined until the source reports an assignment. */
  #owned: Map<string, PartitionRef> | undefined;
  #rewindAgain = false;
  #reassertedAt = Date.now();
  /** Rewinds requested and switched to: records read while a requested one is pending are stale. */
  #rewindsRequested = 0;
  #rewindsSwitched = 0;
  #drainWaiters: Array<() => void> = [];
  #timers: NodeJS.Timeout[] = [];
  #running: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(deps: PipelineDeps) {
    this.#config = deps.config;
    this.#source = deps.source;
    this.#deadLetters = deps.deadLetters;
    this.#ledgers = deps.ledgers;
    this.#logger = deps.logger;
    this.#metrics = deps.metrics;
    const requestSignal = this.#hardStop.signal;
    this.#directory = new DestinationDirectory(
      deps.config,
      deps.provider ?? new StaticConfigProvider(deps.config),
      (d) => new TrackedSink(deps.sinkFactory(d), this.#inflight, requestSignal),
      deps.logger,
    );
    this.#directory.follow(() => this.#onDestinationsChanged());
    for (const route of deps.config.routes) {
      const list = this.#routesByTopic.get(route.topic) ?? [];
      list.push(route);
      this.#routesByTopic.set(route.topic, list);
      this.#decoders.set(route, decoderFor(route, deps.config));
    }
    this.#deliverer = new Deliverer({
      config: deps.config,
      directory: this.#directory,
      schemas: new TableSchemas(deps.config, deps.logger),
      metrics: deps.metrics,
      logger: deps.logger,
      deadLetter: (lane, record, team, reason) =>
        this.#writeDeadLetter(lane.route, record, { ...reason, route: lane.route.name, destination: lane.destination.id, table: `${lane.table.database}.${lane.table.table}`, ...(team === undefined ? {} : { team }) }),
    });
  }

  static topicsOf(config: Config): string[] {
    return [...new Set(config.routes.map((r) => r.topic))];
  }

  /** Starts consuming; resolves when the source stops (close() or a fatal source error). */
  start(): Promise<void> {
    if (this.#running) return this.#running;
    const tick = Math.max(10, Math.min(250, Math.floor(this.#config.batch.maxAgeMs / 4)));
    this.#timers.push(setInterval(() => this.#tick(), tick));
    this.#timers.push(setInterval(() => this.#track(this.#commit()), this.#config.commitIntervalMs));
    this.#running = this.#source.run(this, this.#stop.signal);
    return this.#running;
  }

  onAssigned(partitions: readonly PartitionRef[]): void {
    this.#logger.info({ partitions: partitions.map((p) => `${p.topic}/${p.partition}`) }, 'partitions assigned');
    const first = this.#owned === undefined;
    this.#owned ??= new Map();
    for (const ref of partitions) {
      const key = partitionKey(ref.topic, ref.partition);
      this.#owned.set(key, ref);
      // Progress remembered from an earlier ownership is stale: another owner may have moved on.
      const stale = this.#partitions.get(key);
      if (stale !== undefined) {
        this.#resetState(stale);
        this.#partitions.delete(key);
      }
    }
    // A partition owned again must be read from its committed position, not from wherever the
    // consumer's stream was when it was taken away: read everything again from there.
    if (!first) this.#requestRewind();
  }

  onRevoked(partitions: readonly PartitionRef[]): void {
    this.#logger.info({ partitions: partitions.map((p) => `${p.topic}/${p.partition}`) }, 'partitions revoked');
    for (const ref of partitions) {
      const key = partitionKey(ref.topic, ref.partition);
      this.#owned?.delete(key);
      const state = this.#partitions.get(key);
      if (state === undefined) continue;
      this.#abandon(state);
      if (this.#ledgers?.release) this.#track(this.#ledgers.release(ref.topic, ref.partition));
    }
  }

  /** Unfinished work of the partition is abandoned, not committed: it is read again from the committed position. */
  #abandon(state: PartitionState): void {
    state.revoked = true;
    for (const lane of state.lanes.values()) {
      lane.abandoned = true;
      lane.stop.abort();
    }
    this.#resetState(state);
    this.#partitions.delete(partitionKey(state.ref.topic, state.ref.partition));
  }

  /**
   * The partition's ledger is no longer held by this process: another process took it over (it was
   * assigned the partition, or is a stalled owner that has not learned yet that it lost it), or the
   * producer was given up. Nothing more may be recorded from this state. If the group still assigns
   * the partition here, it is taken over again like a new assignment: the ledger is loaded anew
   * (which fences the other process) and the partition re-read from its committed position.
   */
  #retake(state: PartitionState): void {
    const key = partitionKey(state.ref.topic, state.ref.partition);
    if (this.#partitions.get(key) !== state) return; // abandoned already
    this.#abandon(state);
    if (this.#owned?.has(key) !== true) return;
    this.#logger.warn({ topic: state.ref.topic, partition: state.ref.partition }, 'ledger held by another process: in-memory work abandoned; loading the ledger again and re-reading from the committed position');
    this.#requestRewind();
  }

  /** The source restarted from the committed positions (after a failure): forget in-memory progress. */
  onReset(): void {
    for (const state of this.#partitions.values()) this.#resetState(state);
    this.#metrics.rewinds.inc();
  }

  onRecord(record: SourceRecord): void | Promise<void> {
    // Records of a partition this process no longer owns (still buffered in the stream) are dropped:
    // the owner reads them from the committed position.
    if (this.#owned !== undefined && !this.#owned.has(partitionKey(record.topic, record.partition))) return;
    // Read before a requested rewind switched streams: possibly from a stale position (a partition
    // owned again). Everything is read again from the committed positions after the switch.
    if (this.#rewindsSwitched < this.#rewindsRequested) return;
    const state = this.#partitionState(record);
    if (this.#ledgers !== undefined && state.ledger === undefined) {
      // The partition's ledger must be known before its first record is routed.
      const started = Date.now();
      this.#logger.debug({ topic: state.ref.topic, partition: state.ref.partition }, 'loading the ledger');
      return state.loadLedger(this.#ledgers, this.#hardStop.signal).then(() => {
        const pending = state.ledger?.pending() ?? 0;
        this.#logger.debug({ topic: state.ref.topic, partition: state.ref.partition, ms: Date.now() - started, pending }, 'ledger loaded');
        if (pending > 0) this.#logger.info({ topic: state.ref.topic, partition: state.ref.partition, pending }, 're-forming batches recorded before a restart');
        if (!state.revoked) return this.#process(state, record);
      });
    }
    return this.#process(state, record);
  }

  #process(state: PartitionState, record: SourceRecord): void | Promise<void> {
    const next = state.tracker.nextOffset;
    if (next !== undefined && record.offset < next) return; // re-delivered after a rejoin: already tracked
    if (state.ledger !== undefined && record.offset < state.ledger.resolvedBelow) {
      // Resolved before the group's position went back (its intent may be pruned): never route again.
      state.tracker.track(record.offset, record.epoch);
      return;
    }
    const size = record.value?.length ?? 0;
    const consumed = this.#consumedCounters(record.topic);
    consumed.messages.inc();
    consumed.bytes.inc(size);
    const chunk = state.tracker.track(record.offset, record.epoch);
    const routes = this.#routesByTopic.get(record.topic) ?? [];
    for (const route of routes) this.#routeRecord(state, route, record, chunk);
    if (state.replaying > 0) this.#completeReplays(state, record.offset);
    // A batch being re-formed (in any partition) needs its remaining rows before anything can drain:
    // never wait then.
    if (this.#buffered > this.#config.maxBufferedBytes && !this.#anyReplaying()) return this.#waitForDrain();
  }

  #routeRecord(state: PartitionState, route: RouteConfig, record: SourceRecord, chunk: AckChunk): void {
    if (state.ledger?.isResolved(route.name, record.offset) === true) return; // in its warehouse or dead-lettered
    // Its dead letter is being written (since before a rewind): it resolves when that write does.
    if (state.deadLetters.size > 0 && state.joinDeadLetter(route.name, record.offset, chunk)) return;
    let json: Buffer;
    let team: number | undefined;
    try {
      ({ json, teamId: team } = (this.#decoders.get(route) as Decoder).decode(record));
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.#metrics.decodeErrors.inc({ route: route.name, code: error.code });
      const errorClass = error.code === 'INSERTER_DECODE_OVERSIZED' ? ErrorClasses.oversized : ErrorClasses.decode;
      this.#deadLetterNow(state, route, record, chunk, { errorClass, code: error.code, message: error.message, route: route.name });
      return;
    }
    const intent = state.ledger?.claim(route.name, record.offset);
    if (intent !== undefined) {
      this.#replay(state, route, intent, record, json, team, chunk);
      return;
    }
    const decision = this.#directory.decide(route, team);
    if (decision.kind === 'deadLetter') {
      const errorClass = decision.reason === 'no_team' ? ErrorClasses.decode : ErrorClasses.unknownTeam;
      const message = decision.reason === 'no_team' ? 'message has no team id' : `team ${team} has no destination`;
      this.#deadLetterNow(state, route, record, chunk, { errorClass, code: `INSERTER_${decision.reason.toUpperCase()}`, message, route: route.name, ...(team === undefined ? {} : { team }) });
      return;
    }
    if (decision.kind === 'hold') {
      this.#hold(state, route, record, json, team, chunk);
      if (decision.lookup && team !== undefined) this.#lookup(team);
      return;
    }
    const destination = decision.destination;
    if (this.#parking.active && this.#parking.blocks({ route: route.name, database: route.database ?? destination.database, table: route.table, destination: destination.id, team })) {
      if (this.#outlivedParking(destination)) {
        this.#deadLetterNow(state, route, record, chunk, { errorClass: ErrorClasses.destinationDown, code: 'INSERTER_DESTINATION_DOWN', message: `destination ${destination.id} has been unavailable longer than deadLetterAfterParkedMs`, route: route.name, destination: destination.id, table: `${route.database ?? destination.database}.${route.table}`, ...(team === undefined ? {} : { team }) });
        return;
      }
      this.#park(state, chunk);
      return;
    }
    const lane = this.#lane(state, record, route, destination);
    const batch = lane.append(record, json, team, chunk);
    this.#reserve(json.length, destination.id);
    if (batch.size >= this.#config.batch.maxRows || batch.bytes >= this.#config.batch.maxBytes) this.#flush(lane);
  }

  /**
   * Keeps a row until its team's mapping is known. It stays unresolved, so the watermark cannot pass
   * it; past a quarter of the memory budget held rows are parked instead (Kafka keeps them).
   */
  #hold(state: PartitionState, route: RouteConfig, record: SourceRecord, json: Buffer, team: number | undefined, chunk: AckChunk): void {
    if (this.#heldBytes + json.length > this.#config.maxBufferedBytes / 4 && this.#source.rewind !== undefined) {
      this.#park(state, chunk);
      return;
    }
    const ack = new AckSet();
    ack.add(chunk);
    state.held.push({ record, route, json, team, chunk, ack });
    this.#heldBytes += json.length;
    this.#metrics.heldRecords.inc();
    this.#reserve(json.length, undefined);
  }

  /**
   * Looks a team up until the destinations source answers (with backoff): its rows stay held or
   * parked meanwhile, so the partition's position waits, and moves on once the answer is in.
   */
  #lookup(team: number): void {
    if (this.#lookingUp.has(team)) return;
    this.#lookingUp.add(team);
    const signal = this.#stop.signal;
    this.#track(
      (async () => {
        for (let failures = 0; !signal.aborted; ) {
          try {
            await this.#directory.lookup(team, signal);
          } catch (error) {
            failures++;
            this.#metrics.teamLookupFailures.inc();
            this.#logger.warn({ team, failures, err: error }, 'team lookup failed; its rows stay held and it is asked again');
            await sleep(backoffDelay(this.#config.retry, failures), undefined, { signal }).catch(() => undefined);
            continue;
          }
          this.#releaseHeld(team);
          // Rows of the team parked while waiting (over the held budget) are read again.
          if (!this.#parking.active && [...this.#partitions.values()].some((s) => s.needsRewind)) this.#requestRewind();
          return;
        }
      })().finally(() => this.#lookingUp.delete(team)),
    );
  }

  /** Routes held rows again (of one team, or all) after their mapping may have appeared. */
  #releaseHeld(team: number | undefined): void {
    for (const state of this.#partitions.values()) {
      if (state.held.length === 0) continue;
      const still: typeof state.held = [];
      for (const held of state.held) {
        if (team !== undefined && held.team !== team) {
          still.push(held);
          continue;
        }
        const decision = this.#directory.decide(held.route, held.team);
        if (decision.kind === 'hold') {
          still.push(held);
          continue;
        }
        if (decision.kind === 'deadLetter') {
          this.#deadLetterNow(state, held.route, held.record, held.chunk, { errorClass: ErrorClasses.unknownTeam, code: 'INSERTER_UNKNOWN_TEAM', message: `team ${held.team} has no destination`, route: held.route.name, ...(held.team === undefined ? {} : { team: held.team }) });
        } else {
          const lane = this.#lane(state, held.record, held.route, decision.destination);
          const batch = lane.append(held.record, held.json, held.team, held.chunk);
          this.#reserve(held.json.length, decision.destination.id);
          if (batch.size >= this.#config.batch.maxRows || batch.bytes >= this.#config.batch.maxBytes) this.#flush(lane);
        }
        held.ack.resolve();
        this.#heldBytes -= held.json.length;
        this.#metrics.heldRecords.dec();
        this.#release(held.json.length, undefined);
      }
      state.held = still;
    }
  }

  /**
   * New mappings: batches decided under the old ones are flushed first (so a team's rows in one lane
   * never overlap another lane's — the ledger's claim relies on it), then held rows route again, and
   * rows parked while waiting are re-read.
   */
  #onDestinationsChanged(): void {
    for (const state of this.#partitions.values()) for (const lane of state.lanes.values()) if (!lane.stop.signal.aborted) this.#flush(lane);
    this.#releaseHeld(undefined);
    if ([...this.#partitions.values()].some((s) => s.needsRewind) && !this.#parking.active) this.#requestRewind();
  }

  /** A parked destination past its deadLetterAfterParkedMs: its rows go to the dead-letter topic. */
  #outlivedParking(destination: DestinationConfig): boolean {
    const limit = destination.deadLetterAfterParkedMs;
    if (limit === undefined) return false;
    const parkedFor = this.#parking.parkedFor(destination.id);
    return parkedFor !== undefined && parkedFor >= limit;
  }

  /** Leaves a record unresolved on purpose; it is re-read from Kafka when its scope resumes. */
  #park(state: PartitionState, chunk: AckChunk): void {
    new AckSet().add(chunk);
    state.needsRewind = true;
  }

  #lane(state: PartitionState, record: SourceRecord, route: RouteConfig, destination: DestinationConfig): Lane {
    const laneKey = `${route.name}\u0000${destination.id}`;
    let lane = state.lanes.get(laneKey);
    if (lane === undefined) {
      lane = new Lane(record.topic, record.partition, route, destination);
      if (this.#parking.active && this.#parking.stopsLane(this.#laneScope(lane))) this.#stopLane(lane);
      state.lanes.set(laneKey, lane);
    }
    return lane;
  }

  /**
   * A record whose batch was decided before a restart or rewind: if that batch is known to be in
   * the warehouse it is skipped; otherwise it joins the re-formed batch, which is delivered with the
   * recorded token once it holds exactly the recorded rows. A re-formed batch is all or nothing: if
   * any of its rows is paused, all of them wait.
   */
  #replay(state: PartitionState, route: RouteConfig, intent: Intent, record: SourceRecord, json: Buffer, team: number | undefined, chunk: AckChunk): void {
    const destination = this.#directory.destination(intent.destination);
    if (destination === undefined) {
      // The destination was removed from the config: park, never guess another one.
      this.#park(state, chunk);
      return;
    }
    if (this.#parking.active && this.#intentBlocked(route, destination, intent)) {
      this.#park(state, chunk);
      return;
    }
    const lane = this.#lane(state, record, route, destination);
    if (!lane.replays.has(intent.token)) state.replaying++;
    const batch = lane.appendReplay(intent, record, json, team, chunk);
    this.#reserve(json.length, destination.id);
    if (batch.size >= intent.rows) this.#completeReplay(state, lane, batch);
  }

  /**
   * Re-formed batches whose range the partition has read past are complete even if they hold fewer
   * rows than recorded (rows another owner's intent claimed); waiting longer would stall the
   * partition forever. Their token still names the original batch.
   */
  #completeReplays(state: PartitionState, offset: bigint): void {
    for (const lane of state.lanes.values()) {
      for (const batch of [...lane.replays.values()]) if (batch.intent !== undefined && offset >= batch.intent.records.last) this.#completeReplay(state, lane, batch);
    }
  }

  #completeReplay(state: PartitionState, lane: Lane, batch: Batch): void {
    const intent = batch.intent as Intent;
    lane.replays.delete(intent.token);
    state.replaying--;
    // An intent names its records exactly, so a re-formed batch short of them is a bug: say so loudly.
    if (batch.size !== intent.rows) this.#logger.error({ token: intent.token, rows: batch.size, recorded: intent.rows }, 're-formed batch differs from its intent');
    this.#enqueue(lane, batch);
  }

  #intentBlocked(route: RouteConfig, destination: DestinationConfig, intent: Intent): boolean {
    const row = { route: route.name, database: route.database ?? destination.database, table: route.table, destination: destination.id };
    if (intent.teams === undefined) return this.#parking.blocks({ ...row, team: undefined });
    for (const team of intent.teams) if (this.#parking.blocks({ ...row, team })) return true;
    return false;
  }

  #flush(lane: Lane): void {
    const batch = lane.take();
    if (batch !== undefined) this.#enqueue(lane, batch);
  }

  #enqueue(lane: Lane, batch: Batch): void {
    batch.generation = this.#partitions.get(partitionKey(lane.topic, lane.partition))?.generation ?? 0;
    const delivery = lane.tail.then(() => this.#deliverHolding(lane, batch));
    lane.tail = delivery;
    this.#track(delivery);
  }

  /** Delivers a batch, and if it fails for a reason no split or retry cures, keeps it and tries again. */
  async #deliverHolding(lane: Lane, batch: Batch): Promise<void> {
    const state = this.#partitions.get(partitionKey(lane.topic, lane.partition));
    // A re-formed batch's intent is durable already; a new batch's intent is saved before its insert.
    let intentDurable = batch.intent !== undefined;
    batch.sortByOffset(); // before its token and any split: a re-formed batch must match it row for row
    this.#inflight.begin(lane, batch);
    try {
      // Queued before a rewind and not started: its records are being read again and will form
      // new batches (a started batch has an intent, which the re-read claims instead).
      if (batch.intent === undefined && state !== undefined && batch.generation !== state.generation) return;
      const signal = AbortSignal.any([this.#hardStop.signal, lane.stop.signal, batch.stop.signal]);
      for (let attempt = 1; !lane.abandoned && !signal.aborted; attempt++) {
        // An earlier delivery of the same intent (before a rewind) may have finished meanwhile.
        if (batch.intent?.done === true) {
          batch.acks.resolve();
          return;
        }
        if (this.#parking.active && this.#parking.stopsBatch(this.#laneScope(lane), batch.teamSet)) break;
        try {
          if (state?.ledger !== undefined && batch.intent === undefined) {
            // Intent first: once it is durable, any future owner re-forms exactly this batch.
            batch.intent = {
              route: lane.route.name,
              destination: lane.destination.id,
              token: lane.token(batch, 0, batch.size),
              records: OffsetSet.fromSorted(batch.records.map((r) => r.offset)),
              rows: batch.size,
              teams: lane.route.destination === 'team' ? [...batch.teamSet].sort((x, y) => x - y) : undefined,
              parts: undefined,
              done: false,
            };
            state.ledger.add(batch.intent);
          }
          if (state?.ledger !== undefined && this.#ledgers !== undefined && !intentDurable) {
            if (state.revoked) return; // another owner decides this partition now
            await state.saveLedger(this.#ledgers, this.#hardStop.signal);
            intentDurable = true;
            // Revoked while the intent was being written: the new owner may not have seen it, so
            // inserting now could duplicate what it inserts. Leave the rows to the new owner.
            if (state.revoked || lane.abandoned) return;
          }
          await this.#deliverer.deliver(lane, batch, signal, state === undefined ? undefined : this.#journal(state, batch));
          if (batch.intent !== undefined) state?.ledger?.complete(batch.intent);
          batch.acks.resolve();
          return;
        } catch (error) {
          if ((error as { code?: unknown }).code === 'INSERTER_LEDGER_FENCED') {
            // The ledger is not held any more: nothing more may be recorded or inserted from this state.
            this.#ledgerLost(lane.topic, lane.partition, error);
            if (state) this.#retake(state);
            return;
          }
          if (error instanceof AbortedError || signal.aborted) {
            // Paused, revoked or shutting down: the batch stays unresolved and is re-read later.
            if (state && !this.#hardStop.signal.aborted) state.needsRewind = true;
            return;
          }
          this.#logger.error({ destination: lane.destination.id, table: lane.table.table, attempt, err: error }, 'batch held: insert keeps failing');
          await sleep(this.#config.retry.capMs, undefined, { signal }).catch(() => undefined);
        }
      }
      if (state && !lane.abandoned) state.needsRewind = true;
    } finally {
      this.#inflight.end(lane, batch);
      this.#release(batch.bytes, lane.destination.id);
    }
  }

  /**
   * Writes a record's dead letter. It stays unresolved until the broker acknowledges the write, also
   * across rewinds (a re-read joins the write in flight); once acknowledged it is remembered in the
   * ledger, so a re-read never routes it again. A write that fails leaves it unresolved and re-read.
   */
  #deadLetterNow(state: PartitionState, route: RouteConfig, record: SourceRecord, chunk: AckChunk, reason: DeadLetterReason): void {
    const size = record.value?.length ?? 0;
    this.#reserve(size, undefined);
    const flight = state.startDeadLetter(route.name, record.offset, chunk);
    this.#track(
      this.#writeDeadLetter(route, record, reason)
        .then(
          () => {
            state.ledger?.markResolved(route.name, record.offset);
            state.endDeadLetter(route.name, record.offset, flight, true);
          },
          (error: unknown) => {
            state.endDeadLetter(route.name, record.offset, flight, false);
            if (this.#hardStop.signal.aborted || state.revoked) return; // re-read after restart
            this.#logger.warn({ err: error, topic: record.topic, partition: record.partition, offset: String(record.offset) }, 'dead-letter write failed; the record is read again');
            state.needsRewind = true;
            this.#requestRewind();
          },
        )
        .finally(() => this.#release(size, undefined)),
    );
  }

  /** The ledger side of a delivery: splits and dead-letter decisions are durable before they act. */
  #journal(state: PartitionState, batch: Batch): DeliveryJournal | undefined {
    const intent = batch.intent;
    const store = this.#ledgers;
    const ledger = state.ledger;
    if (intent === undefined || store === undefined || ledger === undefined) return undefined;
    const durable = async (signal: AbortSignal): Promise<void> => {
      if (state.revoked) throw new AbortedError('partition revoked');
      await state.saveLedger(store, signal);
      if (state.revoked) throw new AbortedError('partition revoked');
    };
    // Row ranges only mean something for a batch holding exactly the intent's records; a re-formed
    // batch short of them (its missing records were resolved before the position it was read from:
    // an operator moved the group's position) is sent as one insert under the intent's token.
    if (batch.size !== intent.rows) return undefined;
    // The ranges a re-formed batch starts with may have been sent already (by a previous owner, or
    // by this process before a rewind); ranges this delivery makes by splitting have not.
    const sent = new Set(batch.replayed ? (intent.parts ?? [{ from: 0, to: intent.rows }]).map((p) => `${p.from}-${p.to}`) : []);
    return {
      mayHaveLanded: (from, to) => sent.has(`${from}-${to}`),
      leaves: () => intent.parts,
      split: (from, to, ranges, signal) => {
        ledger.split(intent, from, to, ranges);
        return durable(signal);
      },
      decide: (from, to, settled, reason, signal) => {
        ledger.settle(intent, from, to, settled, reason);
        return durable(signal);
      },
      inserted: (from, to) => ledger.settle(intent, from, to, 'done'),
    };
  }

  /** Resolves only once the dead letter is durable; an abort rejects, so nothing counts it as delivered. */
  async #writeDeadLetter(route: RouteConfig, record: SourceRecord, reason: DeadLetterReason): Promise<void> {
    const topic = route.deadLetterTopic ?? `${record.topic}.dlq`;
    await this.#deadLetters.write(topic, record, reason, this.#hardStop.signal);
    this.#metrics.deadLetters.inc({ route: route.name, class: reason.errorClass });
  }

  // ---- pauses, parked destinations, rewinds ------------------------------------------------

  /**
   * Applies the cluster-wide pause set. Newly paused lanes stop: their open batches are dropped
   * (Kafka keeps the rows), further insert attempts stop, and an attempt on the wire finishes —
   * inflight(scope) reaches 0 when the scope is quiet. Lifting a pause re-reads from the committed
   * positions, so everything resumes exactly where it stopped.
   */
  setPauses(pauses: readonly Pause[]): void {
    const { added, lifted } = this.#parking.setPauses(pauses);
    if (added.length === 0 && !lifted) return;
    this.#metrics.pausedScopes.set(pauses.length);
    const laneScopes = added.filter((scope) => scope.kind !== 'team');
    const teams = new Set(added.flatMap((scope) => (scope.kind === 'team' ? [scope.team] : [])));
    if (laneScopes.length > 0) this.#stopLanes((lane) => laneScopes.some((scope) => scopeTouchesLane(scope, this.#laneScope(lane))));
    if (teams.size > 0) this.#stopTeams(teams);
    if (lifted) {
      this.#restartLanes();
      this.#requestRewind();
    }
  }

  /** Insert requests on the wire now that may carry rows of the scope; 0 means the scope is quiet. */
  inflight(scope: PauseScope): number {
    let n = 0;
    for (const active of this.#inflight.active()) {
      if (active.attempts === 0) continue;
      const lane = this.#laneScope(active.lane);
      if (scope.kind === 'team' ? active.batch.teamSet.has(scope.team) : scopeMatches(scope, { ...lane, team: undefined })) n += active.attempts;
    }
    return n;
  }

  #laneScope(lane: Lane): { route: string; database: string; table: string; destination: string } {
    return { route: lane.route.name, database: lane.table.database, table: lane.table.table, destination: lane.destination.id };
  }

  /** Stops the matching lanes: open batches dropped, retries stopped, new rows parked. */
  #stopLanes(matches: (lane: Lane) => boolean): void {
    for (const state of this.#partitions.values()) {
      for (const lane of state.lanes.values()) {
        if (!matches(lane)) continue;
        this.#stopLane(lane);
        const open = lane.take();
        if (open) {
          this.#release(open.bytes, lane.destination.id);
          state.needsRewind = true;
        }
        for (const replay of lane.replays.values()) this.#release(replay.bytes, lane.destination.id);
        if (lane.replays.size > 0) state.needsRewind = true;
        state.replaying -= lane.replays.size;
        lane.replays.clear();
      }
    }
  }

  /** Stops only what holds rows of these teams: open and re-forming batches, and deliveries. */
  #stopTeams(teams: ReadonlySet<number>): void {
    const holds = (batch: Batch): boolean => [...teams].some((team) => batch.teamSet.has(team));
    for (const state of this.#partitions.values()) {
      for (const lane of state.lanes.values()) {
        if (lane.open !== undefined && holds(lane.open)) {
          this.#release((lane.take() as Batch).bytes, lane.destination.id);
          state.needsRewind = true;
        }
        for (const [token, replay] of lane.replays) {
          if (!holds(replay)) continue;
          this.#release(replay.bytes, lane.destination.id);
          lane.replays.delete(token);
          state.replaying--;
          state.needsRewind = true;
        }
      }
    }
    for (const active of this.#inflight.active()) if (holds(active.batch)) active.batch.stop.abort();
  }

  #stopLane(lane: Lane): void {
    if (!lane.stop.signal.aborted) lane.stop.abort();
  }

  /** Lanes no longer touched by any pause or parked destination get a fresh stop signal. */
  #restartLanes(): void {
    for (const state of this.#partitions.values()) {
      for (const lane of state.lanes.values()) {
        if (lane.stop.signal.aborted && !lane.abandoned && !this.#parking.stopsLane(this.#laneScope(lane))) lane.stop = new AbortController();
      }
    }
  }

  /** Parks a destination holding more than its budget while its inserts are failing. */
  #checkBudget(destination: DestinationConfig): void {
    const held = this.#bufferedByDestination.get(destination.id) ?? 0;
    if (held <= destination.maxBufferedBytes || this.#parking.isDestinationParked(destination.id)) return;
    if (!this.#destinationFailing(destination.id)) return;
    this.#parking.parkDestination(destination.id);
    this.#metrics.parkedDestinations.set(this.#parking.parkedDestinations().length);
    this.#logger.warn({ destination: destination.id, bufferedBytes: held, budget: destination.maxBufferedBytes }, 'destination over its memory budget while failing: parked (Kafka keeps its rows)');
    // Open batches are dropped; the delivery already retrying stays, as the probe for recovery.
    for (const state of this.#partitions.values()) {
      for (const lane of state.lanes.values()) {
        if (lane.destination.id !== destination.id) continue;
        const open = lane.take();
        if (open) {
          this.#release(open.bytes, destination.id);
          state.needsRewind = true;
        }
      }
    }
  }

  #destinationFailing(id: string): boolean {
    return this.#inflight.failingDestinations.has(id);
  }

  /** A parked destination whose deliveries all finished is healthy again: unpark and re-read. */
  #checkParked(): void {
    for (const id of this.#parking.parkedDestinations()) {
      if ((this.#bufferedByDestination.get(id) ?? 0) > 0) continue;
      // Nothing of it in flight: it is back only once it answers. Probe it (a schema read) now and
      // then; the answer clears or keeps its failing mark.
      if (this.#inflight.failingDestinations.has(id)) {
        this.#probe(id);
        continue;
      }
      this.#parking.unparkDestination(id);
      this.#outlived.delete(id);
        this.#metrics.parkedDestinations.set(this.#parking.parkedDestinations().length);
      this.#logger.info({ destination: id }, 'parked destination recovered: re-reading its rows');
      this.#requestRewind();
    }
  }

  #probe(id: string): void {
    const now = Date.now();
    if ((this.#probedAt.get(id) ?? 0) > now - PROBE_INTERVAL_MS) return;
    this.#probedAt.set(id, now);
    const destination = this.#directory.destination(id);
    const route = this.#config.routes[0];
    if (destination === undefined || route === undefined) return;
    const table = { database: route.database ?? destination.database, table: route.table };
    this.#track(
      this.#directory
        .sink(destination)
        .describe(table, AbortSignal.timeout(destination.requestTimeoutMs))
        .then(
          () => undefined,
          () => undefined,
        ),
    );
  }

  /**
   * Re-reads every owned partition from its committed position (one rewind at a time). Records that
   * arrive until the stream is switched are dropped; a failed switch is tried again.
   */
  #requestRewind(): void {
    const rewind = this.#source.rewind?.bind(this.#source);
    if (rewind === undefined) return;
    this.#rewindsRequested++;
    if (this.#rewinding) {
      this.#rewindAgain = true;
      return;
    }
    this.#rewinding = (async () => {
      for (let failures = 0; !this.#stop.signal.aborted; ) {
        this.#rewindAgain = false;
        const target = this.#rewindsRequested;
        this.#logger.info('re-reading owned partitions from their committed positions');
        try {
          await rewind(() => {
            this.#rewindsSwitched = target;
            this.onReset();
          }, this.#hardStop.signal);
          failures = 0;
        } catch (error) {
          failures++;
          this.#logger.warn({ err: error, failures }, 're-reading from the committed positions failed; trying again');
          await sleep(backoffDelay(this.#config.retry, failures), undefined, { signal: this.#stop.signal }).catch(() => undefined);
          continue;
        }
        if (!this.#rewindAgain) break;
      }
    })().finally(() => {
      this.#rewinding = undefined;
    });
    this.#track(this.#rewinding);
  }

  #ledgerLost(topic: string, partition: number, error: unknown): void {
    if ((error as { fenced?: unknown }).fenced === true) this.#logger.warn({ topic, partition }, 'fenced by a newer owner of the partition: nothing more is recorded or inserted from this state');
    else this.#logger.warn({ topic, partition, err: error }, 'ledger write failed: nothing more is recorded or inserted from this state');
  }

  /** Saves a partition's ledger for a commit; a ledger no longer held makes the partition be taken over again. */
  #saveOrRetake(state: PartitionState, store: LedgerStore): Promise<void> {
    return state.saveLedger(store, this.#hardStop.signal).catch((error: unknown) => {
      if ((error as { code?: unknown }).code === 'INSERTER_LEDGER_FENCED') {
        this.#ledgerLost(state.ref.topic, state.ref.partition, error);
        this.#retake(state);
      }
      throw error;
    });
  }

  // ---- timers, commits, accounting ---------------------------------------------------------

  #tick(): void {
    const now = Date.now();
    for (const state of this.#partitions.values()) {
      for (const lane of state.lanes.values()) {
        if (lane.open !== undefined && now - lane.open.createdAt >= this.#config.batch.maxAgeMs) this.#flush(lane);
      }
    }
    if (this.#parking.parkedDestinations().length > 0) {
      this.#checkParked();
      this.#checkOutlived();
    }
  }

  /** When a parked destination outlives its limit, its parked rows are read again to dead-letter them. */
  #checkOutlived(): void {
    for (const id of this.#parking.parkedDestinations()) {
      const destination = this.#directory.destination(id);
      if (destination === undefined || this.#outlived.has(id) || !this.#outlivedParking(destination)) continue;
      this.#outlived.add(id);
      this.#logger.error({ destination: id, limitMs: destination.deadLetterAfterParkedMs }, 'destination unavailable past its limit: its rows go to the dead-letter topic until it recovers');
      this.#requestRewind();
    }
  }

  /** One commit at a time: overlapping commits could land an older position after a newer one. */
  #commit(): Promise<void> {
    this.#committing ??= this.#commitOnce().finally(() => {
      this.#committing = undefined;
    });
    return this.#committing;
  }

  async #commitOnce(): Promise<void> {
    // Positions are taken first, then every intent completed so far is saved, so the ledger on
    // disk knows everything below the positions committed. A restart never re-inserts a batch
    // whose token may have left the warehouse's deduplication window.
    const taken: Array<{ state: PartitionState; position: CommitPosition }> = [];
    // Now and then unchanged positions are committed again: a commit the previous owner sent before a
    // rebalance can land after this owner's and move the group's position back (nothing is inserted
    // twice — see Ledger.resolvedBelow — but the lag would show it forever on an idle partition).
    const now = Date.now();
    const reassert = now - this.#reassertedAt >= REASSERT_POSITIONS_MS;
    if (reassert) this.#reassertedAt = now;
    for (const state of this.#partitions.values()) {
      if (state.revoked) continue;
      // The watermark, or — nothing read past it since a rewind reset the watermark — the watermark
      // the rewind reset: everything below either was resolved here.
      const watermark = state.tracker.committable();
      const offset = watermark > state.resolvedFloor ? watermark : state.resolvedFloor;
      if (offset > state.committed) taken.push({ state, position: { ...state.ref, offset, epoch: state.tracker.epoch } });
      // Nothing newer: this process's own last commit in this ownership is committed again.
      else if (reassert && state.committed >= 0n) taken.push({ state, position: { ...state.ref, offset: state.committed, epoch: state.tracker.epoch } });
    }
    // Owned partitions with no state have had nothing read since they were assigned (idle at their
    // end): their position at assignment is committed again if the group's is below it now.
    const repairs = reassert ? await this.#repairPositions() : [];
    if (this.#ledgers !== undefined) {
      const store = this.#ledgers;
      const saves: Array<Promise<void>> = [];
      for (const state of this.#partitions.values()) if (!state.revoked && state.ledger?.dirty) saves.push(this.#saveOrRetake(state, store));
      try {
        await Promise.all(saves);
      } catch (error) {
        this.#logger.warn({ err: error }, 'ledger save failed; positions are committed later');
        if (reassert) this.#reassertedAt = 0; // re-assert on the next interval, not 10 s later
        return;
      }
    }
    // A partition revoked (and perhaps owned again, with new state) while the ledgers were saved
    // is not committed from the old state: its position belongs to an owner that no longer exists.
    const current = taken.filter(({ state }) => !state.revoked && this.#partitions.get(partitionKey(state.ref.topic, state.ref.partition)) === state);
    const idle = repairs.filter((p) => this.#owned?.has(partitionKey(p.topic, p.partition)) === true && !this.#partitions.has(partitionKey(p.topic, p.partition)));
    if (current.length === 0 && idle.length === 0) return;
    try {
      await this.#source.commit([...current.map(({ position }) => position), ...idle]);
      for (const { state, position } of current) {
        if (state.revoked) continue;
        if (position.offset > state.committed) state.committed = position.offset;
        state.ledger?.prune(position.offset);
        this.#metrics.committedOffset.set({ topic: position.topic, partition: String(position.partition) }, Number(position.offset));
      }
    } catch (error) {
      this.#logger.warn({ err: error }, 'offset commit failed; will retry');
      if (reassert) this.#reassertedAt = 0; // re-assert on the next interval, not 10 s later
    }
  }

  async #repairPositions(): Promise<CommitPosition[]> {
    const repair = this.#source.repairPosition?.bind(this.#source);
    if (repair === undefined || this.#owned === undefined) return [];
    const out: CommitPosition[] = [];
    for (const [key, ref] of this.#owned) {
      if (this.#partitions.has(key)) continue;
      try {
        const position = await repair(ref, this.#hardStop.signal);
        if (position !== undefined) out.push(position);
      } catch (error) {
        this.#logger.debug({ err: error, topic: ref.topic, partition: ref.partition }, 'could not read the committed position');
      }
    }
    return out;
  }

  /** Label children looked up once per topic: the per-record path does no label hashing. */
  #consumedCounters(topic: string): { messages: { inc(n?: number): void }; bytes: { inc(n?: number): void } } {
    let counters = this.#consumedByTopic.get(topic);
    if (counters === undefined) {
      counters = { messages: this.#metrics.consumedMessages.labels(topic), bytes: this.#metrics.consumedBytes.labels(topic) };
      this.#consumedByTopic.set(topic, counters);
    }
    return counters;
  }

  #anyReplaying(): boolean {
    for (const state of this.#partitions.values()) if (state.replaying > 0) return true;
    return false;
  }

  #resetState(state: PartitionState): void {
    for (const held of state.held) {
      this.#heldBytes -= held.json.length;
      this.#metrics.heldRecords.dec();
    }
    state.reset((bytes, destination) => this.#release(bytes, destination));
  }

  #partitionState(record: SourceRecord): PartitionState {
    const key = partitionKey(record.topic, record.partition);
    let state = this.#partitions.get(key);
    if (state === undefined) {
      state = new PartitionState({ topic: record.topic, partition: record.partition });
      this.#partitions.set(key, state);
    }
    return state;
  }

  #reserve(bytes: number, destination: string | undefined): void {
    this.#buffered += bytes;
    this.#metrics.bufferedBytes.set(this.#buffered);
    if (destination === undefined) return;
    this.#bufferedByDestination.set(destination, (this.#bufferedByDestination.get(destination) ?? 0) + bytes);
    const config = this.#directory.destination(destination);
    if (config !== undefined && (this.#bufferedByDestination.get(destination) ?? 0) > config.maxBufferedBytes) this.#checkBudget(config);
  }

  #release(bytes: number, destination: string | undefined): void {
    this.#buffered -= bytes;
    this.#metrics.bufferedBytes.set(this.#buffered);
    if (destination !== undefined) this.#bufferedByDestination.set(destination, (this.#bufferedByDestination.get(destination) ?? 0) - bytes);
    if (this.#buffered <= this.#config.maxBufferedBytes && this.#drainWaiters.length > 0) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  #waitForDrain(): Promise<void> {
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.then(
      () => this.#tasks.delete(task),
      (error: unknown) => {
        this.#tasks.delete(task);
        this.#logger.error({ err: error }, 'pipeline task failed');
      },
    );
  }

  /** Per partition and lane: state, progress and the last error, for the admin API and tests. */
  status(): PipelineStatus {
    return new PipelineStatusView(this.#partitions.values(), this.#parking, this.#bufferedByDestination).build();
  }

  /**
   * Graceful stop: stop fetching, flush open batches, wait for deliveries (up to the deadline),
   * commit what is resolved, leave the group. Idempotent.
   */
  close(deadlineMs = 30_000): Promise<void> {
    this.#closing ??= (async () => {
      this.#stop.abort();
      for (const wake of this.#drainWaiters.splice(0)) wake();
      await this.#running?.catch((error: unknown) => this.#logger.warn({ err: error }, 'source stopped with an error'));
      // Timers stop first: a commit timer still adding tasks would keep the wait below from ending.
      for (const timer of this.#timers) clearInterval(timer);
      for (const state of this.#partitions.values()) for (const lane of state.lanes.values()) if (!lane.stop.signal.aborted) this.#flush(lane);
      const deadline = setTimeout(() => this.#hardStop.abort(), deadlineMs);
      while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
      clearTimeout(deadline);
      await this.#commit(); // a commit begun before the drain may be in flight: the next one sees all
      await this.#commit();
      const stuck = this.status().partitions.filter((p) => p.unresolved > 0);
      if (stuck.length > 0) this.#logger.warn({ partitions: stuck.map((p) => ({ topic: p.topic, partition: p.partition, committed: p.committed, unresolved: p.unresolved, held: p.held, lanes: p.lanes.map((l) => `${l.destination}:${l.state}`) })) }, 'stopping with unresolved records: they are read again by the next owner');
      await this.#source.close();
      await Promise.allSettled([this.#directory.close(), this.#deadLetters.close(), this.#ledgers?.close(), this.#deliverer.flushReports()]);
    })();
    return this.#closing;
  }

  /** Immediate stop without flushing: in-flight work is abandoned (it is re-read after restart). */
  async destroy(): Promise<void> {
    this.#hardStop.abort();
    await this.close(0);
  }
}
