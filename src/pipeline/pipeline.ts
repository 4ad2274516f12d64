// Owns the data flow of one process: source → decode → route → batch → sink → ack. It keeps the
// per-partition state (commit watermark, lanes, held rows), flushes batches on rows, bytes or age,
// applies backpressure to the source when too many bytes are buffered, and commits positions only
// below records that are in their warehouse or in the dead-letter topic.
import { setTimeout as sleep } from 'node:timers/promises';
import { Ledger, type Intent, type LedgerStore } from '../ack/ledger.ts';
import { AckSet, PartitionTracker, type AckChunk } from '../ack/partition-tracker.ts';
import type { Config, DestinationConfig, RouteConfig } from '../config/load.ts';
import { decodeJsonRecord } from '../decode/json.ts';
import type { DeadLetterReason, DeadLetterSink } from '../deadletter/writer.ts';
import { ErrorClasses } from '../errors/classes.ts';
import { AbortedError, DecodeError } from '../errors/inserter-error.ts';
import { DestinationDirectory, type SinkFactory } from '../route/destinations.ts';
import type { CommitPosition, PartitionRef, Source, SourceHandler, SourceRecord } from '../source/types.ts';
import { partitionKey } from '../source/types.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { Deliverer } from './deliver.ts';
import { Lane, type Batch } from './lane.ts';
import { TableSchemas } from './table-schemas.ts';

interface PartitionState {
  readonly ref: PartitionRef;
  readonly tracker: PartitionTracker;
  readonly lanes: Map<string, Lane>;
  readonly held: Array<{ record: SourceRecord; route: RouteConfig }>;
  committed: bigint;
  revoked: boolean;
  /** Exactly-once state; loaded before the partition's first record is processed. */
  ledger: Ledger | undefined;
  ledgerLoading: Promise<void> | undefined;
  ledgerSaving: Promise<void>;
  ledgerSaveQueued: Promise<void> | undefined;
}

export interface PipelineDeps {
  readonly config: Config;
  readonly source: Source;
  readonly sinkFactory: SinkFactory;
  readonly deadLetters: DeadLetterSink;
  /** Where intents are recorded; without it delivery is at-least-once. */
  readonly ledgers?: LedgerStore;
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
  readonly #routesByTopic = new Map<string, RouteConfig[]>();
  readonly #partitions = new Map<string, PartitionState>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #stop = new AbortController();
  /** Aborts deliveries and dead-letter waits: only on destroy() or when a shutdown deadline passes. */
  readonly #hardStop = new AbortController();
  #buffered = 0;
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
    this.#directory = new DestinationDirectory(deps.config, deps.sinkFactory);
    for (const route of deps.config.routes) {
      const list = this.#routesByTopic.get(route.topic) ?? [];
      list.push(route);
      this.#routesByTopic.set(route.topic, list);
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
    this.#timers.push(setInterval(() => this.#flushAged(), tick));
    this.#timers.push(setInterval(() => this.#track(this.#commit()), this.#config.commitIntervalMs));
    this.#running = this.#source.run(this, this.#stop.signal);
    return this.#running;
  }

  onAssigned(partitions: readonly PartitionRef[]): void {
    this.#logger.info({ partitions: partitions.map((p) => `${p.topic}/${p.partition}`) }, 'partitions assigned');
  }

  onRevoked(partitions: readonly PartitionRef[]): void {
    this.#logger.info({ partitions: partitions.map((p) => `${p.topic}/${p.partition}`) }, 'partitions revoked');
    for (const ref of partitions) {
      const key = partitionKey(ref.topic, ref.partition);
      const state = this.#partitions.get(key);
      if (state === undefined) continue;
      // Unfinished work is abandoned, not committed: the new owner re-reads from the committed position.
      state.revoked = true;
      for (const lane of state.lanes.values()) {
        lane.abandoned = true;
        const open = lane.take();
        if (open) this.#release(open.bytes);
      }
      for (const held of state.held) this.#release(held.record.value?.length ?? 0);
      state.held.length = 0;
      this.#partitions.delete(key);
    }
  }

  onRecord(record: SourceRecord): void | Promise<void> {
    const state = this.#partitionState(record);
    if (this.#ledgers !== undefined && state.ledger === undefined) {
      // The partition's ledger must be known before its first record is routed.
      return this.#loadLedger(state).then(() => {
        if (!state.revoked) return this.#process(state, record);
      });
    }
    return this.#process(state, record);
  }

  #process(state: PartitionState, record: SourceRecord): void | Promise<void> {
    const next = state.tracker.nextOffset;
    if (next !== undefined && record.offset < next) return; // re-delivered after a rejoin: already tracked
    const size = record.value?.length ?? 0;
    this.#metrics.consumedMessages.inc({ topic: record.topic });
    this.#metrics.consumedBytes.inc({ topic: record.topic }, size);
    const chunk = state.tracker.track(record.offset, record.epoch);
    const routes = this.#routesByTopic.get(record.topic) ?? [];
    for (const route of routes) this.#routeRecord(state, route, record, chunk);
    if (this.#buffered > this.#config.maxBufferedBytes) return this.#waitForDrain();
  }

  #routeRecord(state: PartitionState, route: RouteConfig, record: SourceRecord, chunk: AckChunk): void {
    let json: Buffer;
    let team: number | undefined;
    try {
      ({ json, teamId: team } = decodeJsonRecord(record, { maxMessageBytes: this.#config.maxMessageBytes, teamId: route.teamId }));
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.#metrics.decodeErrors.inc({ route: route.name, code: error.code });
      const errorClass = error.code === 'INSERTER_DECODE_OVERSIZED' ? ErrorClasses.oversized : ErrorClasses.decode;
      this.#deadLetterNow(route, record, chunk, { errorClass, code: error.code, message: error.message, route: route.name });
      return;
    }
    const decision = this.#directory.decide(route, team);
    if (decision.kind === 'deadLetter') {
      const errorClass = decision.reason === 'no_team' ? ErrorClasses.decode : ErrorClasses.unknownTeam;
      const message = decision.reason === 'no_team' ? 'message has no team id' : `team ${team} has no destination`;
      this.#deadLetterNow(route, record, chunk, { errorClass, code: `INSERTER_${decision.reason.toUpperCase()}`, message, route: route.name, ...(team === undefined ? {} : { team }) });
      return;
    }
    if (decision.kind === 'hold') {
      // The record stays unresolved, so the watermark cannot pass it until a mapping appears.
      const ack = new AckSet();
      ack.add(chunk);
      state.held.push({ record, route });
      this.#metrics.heldRecords.set(this.#countHeld());
      this.#reserve(json.length);
      return;
    }
    const intent = state.ledger?.claim(route.name, record.offset, team);
    if (intent !== undefined) {
      this.#replay(state, route, intent, record, json, team, chunk);
      return;
    }
    const lane = this.#lane(state, record, route, decision.destination);
    const batch = lane.append(record, json, team, chunk);
    this.#reserve(json.length);
    if (batch.size >= this.#config.batch.maxRows || batch.bytes >= this.#config.batch.maxBytes) this.#flush(lane);
  }

  #lane(state: PartitionState, record: SourceRecord, route: RouteConfig, destination: DestinationConfig): Lane {
    const laneKey = `${route.name}\u0000${destination.id}`;
    let lane = state.lanes.get(laneKey);
    if (lane === undefined) {
      lane = new Lane(record.topic, record.partition, route, destination);
      state.lanes.set(laneKey, lane);
    }
    return lane;
  }

  /**
   * A record whose batch was decided before a crash: if that batch is known to be in the warehouse
   * it is skipped; otherwise it joins the re-formed batch, which is delivered with the recorded
   * token once it holds exactly the recorded rows.
   */
  #replay(state: PartitionState, route: RouteConfig, intent: Intent, record: SourceRecord, json: Buffer, team: number | undefined, chunk: AckChunk): void {
    if (intent.done) return; // in the warehouse already: resolved, nothing to hold
    const destination = this.#directory.destination(intent.destination);
    if (destination === undefined) {
      // The destination was removed from the config: hold, never guess another one.
      new AckSet().add(chunk);
      state.held.push({ record, route });
      return;
    }
    const lane = this.#lane(state, record, route, destination);
    const batch = lane.appendReplay(intent, record, json, team, chunk);
    this.#reserve(json.length);
    if (batch.size >= intent.rows || record.offset >= intent.to) {
      lane.replays.delete(intent.token);
      if (batch.size !== intent.rows) this.#logger.error({ token: intent.token, rows: batch.size, recorded: intent.rows }, 're-formed batch differs from its intent');
      this.#enqueue(lane, batch);
    }
  }

  #loadLedger(state: PartitionState): Promise<void> {
    state.ledgerLoading ??= (async () => {
      const store = this.#ledgers as LedgerStore;
      const json = await store.load(state.ref.topic, state.ref.partition, this.#hardStop.signal);
      state.ledger = Ledger.fromJson(json);
      const pending = state.ledger.pending();
      if (pending > 0) this.#logger.info({ topic: state.ref.topic, partition: state.ref.partition, pending }, 're-forming batches recorded before a restart');
    })();
    return state.ledgerLoading;
  }

  /** Saves the partition's ledger; concurrent callers share one queued save of the newest state. */
  #saveLedger(state: PartitionState): Promise<void> {
    const store = this.#ledgers;
    const ledger = state.ledger;
    if (store === undefined || ledger === undefined) return Promise.resolve();
    state.ledgerSaveQueued ??= state.ledgerSaving.then(async () => {
      state.ledgerSaveQueued = undefined;
      ledger.markClean();
      await store.save(state.ref.topic, state.ref.partition, ledger.toJson(), this.#hardStop.signal);
    });
    state.ledgerSaving = state.ledgerSaveQueued.catch(() => undefined);
    return state.ledgerSaveQueued;
  }

  #flush(lane: Lane): void {
    const batch = lane.take();
    if (batch !== undefined) this.#enqueue(lane, batch);
  }

  #enqueue(lane: Lane, batch: Batch): void {
    const delivery = lane.tail.then(() => this.#deliverHolding(lane, batch));
    lane.tail = delivery;
    this.#track(delivery);
  }

  /** Delivers a batch, and if it fails for a reason no split or retry cures, keeps it and tries again. */
  async #deliverHolding(lane: Lane, batch: Batch): Promise<void> {
    const signal = this.#hardStop.signal;
    const state = this.#partitions.get(partitionKey(lane.topic, lane.partition));
    // A re-formed batch's intent is durable already; a new batch's intent is saved before its insert.
    let intentDurable = batch.intent !== undefined;
    try {
      for (let attempt = 1; !lane.abandoned; attempt++) {
        try {
          if (state?.ledger !== undefined && batch.intent === undefined) {
            // Intent first: once it is durable, any future owner re-forms exactly this batch.
            batch.intent = {
              route: lane.route.name,
              destination: lane.destination.id,
              from: batch.records[0]?.offset ?? -1n,
              to: batch.records[batch.records.length - 1]?.offset ?? -1n,
              rows: batch.size,
              teams: lane.route.destination === 'team' ? [...batch.teamSet].sort((x, y) => x - y) : undefined,
              token: lane.token(batch, 0, batch.size),
              done: false,
            };
            state.ledger.add(batch.intent);
          }
          if (state?.ledger !== undefined && !intentDurable) {
            await this.#saveLedger(state);
            intentDurable = true;
          }
          await this.#deliverer.deliver(lane, batch, signal);
          if (batch.intent !== undefined) state?.ledger?.complete(batch.intent);
          batch.acks.resolve();
          return;
        } catch (error) {
          if (error instanceof AbortedError || signal.aborted) return;
          this.#logger.error({ destination: lane.destination.id, table: lane.table.table, attempt, err: error }, 'batch held: insert keeps failing');
          await sleep(this.#config.retry.capMs, undefined, { signal }).catch(() => undefined);
        }
      }
    } finally {
      this.#release(batch.bytes);
    }
  }

  #deadLetterNow(route: RouteConfig, record: SourceRecord, chunk: AckChunk, reason: DeadLetterReason): void {
    const ack = new AckSet();
    ack.add(chunk);
    const size = record.value?.length ?? 0;
    this.#reserve(size);
    this.#track(
      this.#writeDeadLetter(route, record, reason)
        .then(() => ack.resolve())
        .finally(() => this.#release(size)),
    );
  }

  async #writeDeadLetter(route: RouteConfig, record: SourceRecord, reason: DeadLetterReason): Promise<void> {
    const topic = route.deadLetterTopic ?? `${record.topic}.dlq`;
    try {
      await this.#deadLetters.write(topic, record, reason, this.#hardStop.signal);
      this.#metrics.deadLetters.inc({ route: route.name, class: reason.errorClass });
    } catch (error) {
      if (error instanceof AbortedError) return; // unresolved: the record is re-read after restart
      throw error;
    }
  }

  #flushAged(): void {
    const now = Date.now();
    for (const state of this.#partitions.values()) {
      for (const lane of state.lanes.values()) {
        if (lane.open !== undefined && now - lane.open.createdAt >= this.#config.batch.maxAgeMs) this.#flush(lane);
      }
    }
  }

  async #commit(): Promise<void> {
    const positions: CommitPosition[] = [];
    for (const state of this.#partitions.values()) {
      if (state.revoked) continue;
      const position = state.tracker.committable();
      if (position > state.committed) positions.push({ ...state.ref, offset: position, epoch: state.tracker.epoch });
    }
    // Completed intents are saved before the positions past them are committed, so a restart never
    // re-inserts a batch whose token may have left the warehouse's deduplication window.
    const saves: Array<Promise<void>> = [];
    for (const state of this.#partitions.values()) if (!state.revoked && state.ledger?.dirty) saves.push(this.#saveLedger(state));
    await Promise.all(saves).catch((error: unknown) => this.#logger.warn({ err: error }, 'ledger save failed; will retry'));
    if (positions.length === 0) return;
    try {
      await this.#source.commit(positions);
      for (const p of positions) {
        const state = this.#partitions.get(partitionKey(p.topic, p.partition));
        if (state && p.offset > state.committed) state.committed = p.offset;
        state?.ledger?.prune(p.offset);
        this.#metrics.committedOffset.set({ topic: p.topic, partition: String(p.partition) }, Number(p.offset));
      }
    } catch (error) {
      this.#logger.warn({ err: error }, 'offset commit failed; will retry');
    }
  }

  #partitionState(record: SourceRecord): PartitionState {
    const key = partitionKey(record.topic, record.partition);
    let state = this.#partitions.get(key);
    if (state === undefined) {
      state = {
        ref: { topic: record.topic, partition: record.partition },
        tracker: new PartitionTracker(),
        lanes: new Map(),
        held: [],
        committed: -1n,
        revoked: false,
        ledger: undefined,
        ledgerLoading: undefined,
        ledgerSaving: Promise.resolve(),
        ledgerSaveQueued: undefined,
      };
      this.#partitions.set(key, state);
    }
    return state;
  }

  #countHeld(): number {
    let n = 0;
    for (const state of this.#partitions.values()) n += state.held.length;
    return n;
  }

  #reserve(bytes: number): void {
    this.#buffered += bytes;
    this.#metrics.bufferedBytes.set(this.#buffered);
  }

  #release(bytes: number): void {
    this.#buffered -= bytes;
    this.#metrics.bufferedBytes.set(this.#buffered);
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

  /** Unresolved records per owned partition (for status and tests). */
  status(): Array<{ topic: string; partition: number; committed: string; unresolved: number; held: number }> {
    return [...this.#partitions.values()].map((s) => ({ ...s.ref, committed: String(s.committed), unresolved: s.tracker.unresolved(), held: s.held.length }));
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
      for (const state of this.#partitions.values()) for (const lane of state.lanes.values()) this.#flush(lane);
      const deadline = setTimeout(() => this.#hardStop.abort(), deadlineMs);
      while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
      clearTimeout(deadline);
      for (const timer of this.#timers) clearInterval(timer);
      await this.#commit();
      await this.#source.close();
      await Promise.allSettled([this.#directory.close(), this.#deadLetters.close(), this.#ledgers?.close()]);
    })();
    return this.#closing;
  }

  /** Immediate stop without flushing: in-flight work is abandoned (it is re-read after restart). */
  async destroy(): Promise<void> {
    this.#hardStop.abort();
    await this.close(0);
  }
}
