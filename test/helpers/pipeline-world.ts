// A small in-memory world for driving the real Pipeline in unit tests, with real timers: a source
// fed by the test (one or several partitions; rewinds switch when the test says so), a warehouse
// that deduplicates by token, a dead-letter topic whose writes the test can hold, a ledger store
// that can "die", and a destinations provider whose per-team lookups the test answers or fails.
import { tmpdir } from 'node:os';
import { MemoryLedgerStore, type LedgerJson } from '../../src/ack/ledger.ts';
import { buildConfig, type Config, type DestinationConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import type { DecoderFactory } from '../../src/decode/types.ts';
import type { DeadLetterReason, DeadLetterSink } from '../../src/deadletter/types.ts';
import type { EncoderFactory } from '../../src/encode/types.ts';
import { AbortedError } from '../../src/errors/inserter-error.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import type { DestinationProvider, DestinationSnapshot } from '../../src/route/provider.ts';
import type { ColumnInfo, InsertBatch, InsertResult, Sink, TableRef, TableSchema } from '../../src/sink/types.ts';
import type { CommitPosition, PartitionRef, Source, SourceHandler, SourceRecord } from '../../src/source/types.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';

export const TOPIC = 't';

export function worldConfig(overrides: Partial<ConfigInput> = {}): Config {
  return buildConfig(
    {
      kafka: { brokers: ['memory:9092'] },
      destinations: [{ id: 'd1', url: 'http://localhost:8123' }],
      routes: [{ name: 'events', topic: TOPIC, table: 'events', createTable: { enabled: false } }],
      commitIntervalMs: 10,
      batch: { maxRows: 1000, maxBytes: 1 << 24, maxAgeMs: 20 },
      retry: { baseMs: 5, factor: 2, capMs: 20 },
      telemetry: { logLevel: 'silent' },
      ...overrides,
    },
    tmpdir(),
  );
}

export function event(offset: number, team: number | undefined, pad = 0): SourceRecord {
  const body = team === undefined ? { uuid: `u${offset}` } : { team_id: team, uuid: `u${offset}`, pad: 'x'.repeat(pad) };
  return { topic: TOPIC, partition: 0, offset: BigInt(offset), timestamp: BigInt(Date.now()), key: undefined, value: Buffer.from(JSON.stringify(body)), headers: [], epoch: 0 };
}

/**
 * The log of a topic's partitions in one stream, read in append order like the Kafka source:
 * appended records of the partitions it owns are delivered with backpressure honoured (records of
 * others are skipped), and a rewind reads every owned partition again from its committed position.
 * Owns partition 0 unless told otherwise; `assign`/`revoke` change what it owns and tell the pipeline.
 */
export class FedSource implements Source {
  handler: SourceHandler | undefined;
  readonly log: SourceRecord[] = [];
  readonly commits: CommitPosition[] = [];
  readonly owned: Set<number>;
  rewinds = 0;
  /** While set, a rewind waits for `releaseRewind()` (a slow switch: deliveries started before it go on). */
  holdRewinds = false;
  #heldRewind: (() => void) | undefined;
  #cursor = 0;
  /** After a rewind: per partition, the position it is read again from (records below it are skipped). */
  #from = new Map<number, bigint>();
  #pumping: Promise<void> | undefined;
  #stopped: (() => void) | undefined;
  /** Like the Kafka source: `run` ends only after the record being handed over is accepted. */
  readonly #kafkaLike: boolean;
  #signal: AbortSignal | undefined;

  constructor(options: { partitions?: readonly number[]; kafkaLike?: boolean } = {}) {
    this.owned = new Set(options.partitions ?? [0]);
    this.#kafkaLike = options.kafkaLike ?? false;
  }

  run(handler: SourceHandler, signal: AbortSignal): Promise<void> {
    this.handler = handler;
    this.#signal = signal;
    return new Promise((resolve) => {
      this.#stopped = resolve;
      const onAbort = (): void => {
        if (!this.#kafkaLike || this.#pumping === undefined) resolve();
        else void this.#pumping.finally(() => resolve());
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  async commit(positions: readonly CommitPosition[]): Promise<void> {
    this.commits.push(...positions);
  }

  rewind(onSwitch: () => void): Promise<void> {
    this.rewinds++;
    const switchNow = (): void => {
      this.#from = new Map([...this.owned].map((p) => [p, this.committedAt(p) < 0n ? 0n : this.committedAt(p)]));
      this.#cursor = 0;
      onSwitch();
      void this.#pump();
    };
    if (!this.holdRewinds) {
      switchNow();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#heldRewind = () => {
        this.#heldRewind = undefined;
        switchNow();
        resolve();
      };
    });
  }

  get rewindHeld(): boolean {
    return this.#heldRewind !== undefined;
  }

  releaseRewind(): void {
    this.#heldRewind?.();
  }

  async close(): Promise<void> {
    this.#stopped?.();
  }

  /** The pipeline is assigned these partitions (of TOPIC), and the source reads them. */
  assign(handler: SourceHandler, partitions: readonly number[]): void {
    for (const p of partitions) this.owned.add(p);
    handler.onAssigned(partitions.map((partition) => ({ topic: TOPIC, partition })));
  }

  /** The pipeline loses these partitions, and the source reads them no more. */
  revoke(handler: SourceHandler, partitions: readonly number[]): void {
    for (const p of partitions) this.owned.delete(p);
    handler.onRevoked(partitions.map((partition) => ({ topic: TOPIC, partition })));
  }

  /** The position last committed for partition 0, or -1. */
  get committed(): bigint {
    return this.committedAt(0);
  }

  /** The position last committed for `partition`, or -1. */
  committedAt(partition: number): bigint {
    for (let i = this.commits.length - 1; i >= 0; i--) {
      const c = this.commits[i] as CommitPosition;
      if (c.partition === partition) return c.offset;
    }
    return -1n;
  }

  /** Everything appended has been handed to the pipeline (and accepted: no backpressure pending). */
  get caughtUp(): boolean {
    return this.#cursor >= this.log.length && this.#pumping === undefined;
  }

  append(records: readonly SourceRecord[]): Promise<void> {
    this.log.push(...records);
    return this.#pump();
  }

  #pump(): Promise<void> {
    const handler = this.handler;
    if (handler === undefined) throw new Error('source not running');
    this.#pumping ??= (async () => {
      await Promise.resolve(); // the body never finishes before #pumping is set
      try {
        while (this.#cursor < this.log.length && this.#signal?.aborted !== true) {
          const record = this.log[this.#cursor++] as SourceRecord;
          if (!this.owned.has(record.partition) || record.offset < (this.#from.get(record.partition) ?? 0n)) continue;
          const waiting = handler.onRecord(record);
          if (waiting !== undefined) await waiting;
        }
      } finally {
        this.#pumping = undefined;
      }
    })();
    return this.#pumping;
  }
}

/** One warehouse table per destination; an insert whose token was seen is dropped, like ClickHouse. */
export class TokenWarehouse {
  readonly rows: Array<{ destination: string; uuid: string; token: string }> = [];
  readonly tokens = new Set<string>();
  readonly inserts: string[] = [];
  /** Return an error to fail an insert before anything is stored (`uuids`: the insert's rows). */
  fail: ((token: string, rows: number, uuids: readonly string[]) => Error | undefined) | undefined;
  /** The live schema every table reports (a test alters it by replacing it). */
  columns: ColumnInfo[] = [
    { name: 'team_id', type: 'Int64', defaultKind: '' },
    { name: 'uuid', type: 'String', defaultKind: '' },
  ];

  sink(destination: DestinationConfig): Sink {
    return {
      destinationId: destination.id,
      describe: async (_table: TableRef): Promise<TableSchema> => ({ columns: [...this.columns] }),
      createTable: async () => undefined,
      insert: async (batch: InsertBatch): Promise<InsertResult> => {
        const uuids: string[] = [];
        for (const line of Buffer.concat(batch.body).toString('utf8').split('\n')) if (line !== '') uuids.push((JSON.parse(line) as { uuid: string }).uuid);
        const error = this.fail?.(batch.token, batch.rows, uuids);
        if (error !== undefined) throw error;
        this.inserts.push(`${batch.token} (${batch.rows})`);
        if (this.tokens.has(batch.token)) return { writtenRows: 0 };
        this.tokens.add(batch.token);
        for (const uuid of uuids) this.rows.push({ destination: destination.id, uuid, token: batch.token });
        return { writtenRows: batch.rows };
      },
      close: async () => undefined,
    };
  }

  /** Sinks whose inserts go through `insert`, given the warehouse's own sink (to fail, delay or lose replies). */
  sinksWith(insert: (inner: Sink, batch: InsertBatch, signal?: AbortSignal) => Promise<InsertResult>): (destination: DestinationConfig) => Sink {
    return (destination) => {
      const inner = this.sink(destination);
      return { ...inner, insert: (batch, signal) => insert(inner, batch, signal) };
    };
  }

  uuids(): string[] {
    return this.rows.map((r) => r.uuid);
  }
}

/** Dead letters are acknowledged at once unless `hold` is set: then they wait (the writer retrying) until aborted. */
export class HeldDeadLetters implements DeadLetterSink {
  readonly written: Array<{ offset: bigint; reason: DeadLetterReason }> = [];
  hold = false;
  readonly #held: Array<() => void> = [];

  write(_topic: string, record: SourceRecord, reason: DeadLetterReason, signal: AbortSignal): Promise<void> {
    const done = (): void => void this.written.push({ offset: record.offset, reason });
    if (!this.hold) {
      done();
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(new AbortedError('dead-letter write aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      this.#held.push(() => {
        signal.removeEventListener('abort', onAbort);
        done();
        resolve();
      });
    });
  }

  /** The broker accepts the writes held so far. */
  release(): void {
    for (const write of this.#held.splice(0)) write();
  }

  async close(): Promise<void> {}
}

/** A ledger store that a test can "kill": saves after that never land. */
export class DyingLedgerStore extends MemoryLedgerStore {
  dead = false;
  override async save(topic: string, partition: number, ledger: LedgerJson): Promise<void> {
    if (this.dead) throw new AbortedError('process killed');
    await super.save(topic, partition, ledger);
  }
}

/** Teams of the snapshot are known; others are looked up: the test answers or fails each lookup. */
export class AnsweringProvider implements DestinationProvider {
  readonly #snapshot: DestinationSnapshot;
  readonly lookups: number[] = [];
  readonly #waiting = new Map<number, Array<{ resolve: (d: string | undefined) => void; reject: (e: Error) => void }>>();

  constructor(config: Config, teams: Record<number, string>) {
    this.#snapshot = { version: 'v1', loadedAt: Date.now(), destinations: new Map(config.destinations.map((d) => [d.id, d])), teams: new Map(Object.entries(teams).map(([t, d]) => [Number(t), d])) };
  }

  async start(): Promise<void> {}
  snapshot(): DestinationSnapshot {
    return this.#snapshot;
  }

  lookupTeam(team: number, signal: AbortSignal): Promise<string | undefined> {
    this.lookups.push(team);
    return new Promise((resolve, reject) => {
      signal.addEventListener('abort', () => reject(new AbortedError('lookup aborted')), { once: true });
      const list = this.#waiting.get(team) ?? [];
      list.push({ resolve, reject });
      this.#waiting.set(team, list);
    });
  }

  waiting(team: number): boolean {
    return (this.#waiting.get(team)?.length ?? 0) > 0;
  }

  answer(team: number, destination: string | undefined): void {
    for (const w of this.#waiting.get(team)?.splice(0) ?? []) w.resolve(destination);
  }

  fail(team: number): void {
    for (const w of this.#waiting.get(team)?.splice(0) ?? []) w.reject(new Error('destinations API unavailable'));
  }

  onChange(): () => void {
    return () => undefined;
  }
  async close(): Promise<void> {}
}

export interface World {
  readonly pipeline: Pipeline;
  readonly source: FedSource;
  readonly ref: PartitionRef;
}

export interface WorldParts {
  readonly config: Config;
  readonly warehouse: TokenWarehouse;
  /** The destinations' sinks (the warehouse's if not given: a test wraps them to fail or delay inserts). */
  readonly sinkFactory?: (destination: DestinationConfig) => Sink;
  readonly deadLetters?: DeadLetterSink;
  readonly ledgers?: MemoryLedgerStore;
  readonly provider?: DestinationProvider;
  readonly decoders?: DecoderFactory;
  readonly encoders?: EncoderFactory;
  /** The source (a FedSource of partition 0 if not given). */
  readonly source?: FedSource;
  /** The partitions assigned at the start (partition 0 if not given). */
  readonly partitions?: readonly number[];
}

/** Starts a pipeline on the given parts and assigns it its partitions. Call `pipeline.destroy()` or `close()` at the end. */
export function startWorld(parts: WorldParts): World {
  const source = parts.source ?? new FedSource();
  const pipeline = new Pipeline({
    config: parts.config,
    source,
    sinkFactory: parts.sinkFactory ?? ((d) => parts.warehouse.sink(d)),
    deadLetters: parts.deadLetters ?? new HeldDeadLetters(),
    ledgers: parts.ledgers ?? new MemoryLedgerStore(),
    ...(parts.provider === undefined ? {} : { provider: parts.provider }),
    ...(parts.decoders === undefined ? {} : { decoders: parts.decoders }),
    ...(parts.encoders === undefined ? {} : { encoders: parts.encoders }),
    logger: createLogger(process.env.TEST_LOG ?? 'silent'),
    metrics: new Metrics(),
  });
  void pipeline.start();
  source.assign(pipeline, parts.partitions ?? [0]);
  return { pipeline, source, ref: { topic: TOPIC, partition: 0 } };
}

/** Polls until `condition` holds (real time); fails with `what` after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
