// Review 2026-12-07a of b644759 (every ledger write carries its partition's position): the fakes and
// set-up the review's tests share.
//   - `rig`: a PartitionState, its runtime and a Committer over review-e's CommittingLedgerStore
//     (a store that commits positions like KafkaLedgerStore), for driving saveLedger directly;
//   - `LedgerKafka`: the broker side of the REAL KafkaLedgerStore, faked under @platformatic/kafka's
//     Producer, Consumer and Admin (prototype methods mocked for one test): transactions append the
//     ledger record at send and a commit or abort marker at their end, a TxnOffsetCommit moves the
//     group's position (a FedSource's commits) only when its transaction commits, a newer producer of
//     a transactional id fences the older, and a load reads the log back through the real
//     kafka-ledger-reader. A test can refuse the position part (TxnOffsetCommit) or the coordinator;
//   - `startProc`: the real Pipeline over a FedSource, a warehouse and any ledger store;
//   - `unresolvedBelow`: the oracle every landed position is checked with (no record below it may be
//     neither in the warehouse nor dead-lettered); `WatchfulStore`: a CommittingLedgerStore that
//     checks it for each position it commits.
import type { TestContext } from 'node:test';
import { Admin, Consumer, IS_CONTROL, IS_TRANSACTIONAL, Producer } from '@platformatic/kafka';
import { Committer } from '../../../src/ack/committer.ts';
import { Ledger, type LedgerJson, type LedgerStore, type MemoryLedgerStore } from '../../../src/ack/ledger.ts';
import { AckSet } from '../../../src/ack/partition-tracker.ts';
import type { Config, DestinationConfig } from '../../../src/config/load.ts';
import type { DeadLetterSink } from '../../../src/deadletter/types.ts';
import { PartitionState } from '../../../src/pipeline/partition-state.ts';
import type { Pipeline } from '../../../src/pipeline/pipeline.ts';
import { PipelineRuntime } from '../../../src/pipeline/runtime.ts';
import type { DestinationProvider } from '../../../src/route/provider.ts';
import type { Sink } from '../../../src/sink/types.ts';
import { KafkaLedgerStore } from '../../../src/source/kafka-ledger-store.ts';
import { partitionKey, type CommitPosition, type SourceRecord } from '../../../src/source/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { Metrics } from '../../../src/telemetry/metrics.ts';
import { event, FedSource, startWorld, TokenWarehouse, TOPIC, until, worldConfig, type HeldDeadLetters } from '../../helpers/pipeline-world.ts';
import { CommittingLedgerStore } from '../review-2026-12-06e/commit-world.ts';

/** Retries fast, so a held batch is tried again within a test's patience. */
const fastRetries = { baseMs: 5, capMs: 20, pauseMs: 20 };
const errorPolicy = { defaults: { transient_network: fastRetries, unknown_server_error: fastRetries, row_data: { baseMs: 5, capMs: 20 } } };

/** Team 8 → d1; batches of `maxRows`; commits every `commitIntervalMs`. */
export function carryConfig(maxRows: number, commitIntervalMs: number, overrides: Parameters<typeof worldConfig>[0] = {}): Config {
  return worldConfig({ teams: { map: { 8: 'd1' } }, commitIntervalMs, batch: { maxRows, maxBytes: 1 << 24, maxAgeMs: 20 }, errorPolicy, ...overrides });
}

// ---------------------------------------------------------------------------------------------
// PartitionState + Committer, driven directly.

export interface Rig {
  readonly rt: PipelineRuntime;
  readonly state: PartitionState;
  readonly store: CommittingLedgerStore;
  readonly committer: Committer;
  /** Plain commits through the source: there must be none with a store that commits positions. */
  readonly plain: CommitPosition[];
  /** A save the way a lane makes one (its intent, a split, a decision). */
  laneSave(): Promise<CommitPosition | undefined>;
}

export function rig(commitIntervalMs = 1_000): Rig {
  const source = new FedSource(); // its commits are the plain ones
  const store = new CommittingLedgerStore();
  const rt = new PipelineRuntime({ config: worldConfig({ commitIntervalMs }), logger: createLogger('silent'), metrics: new Metrics(), source, ledgers: store });
  const state = new PartitionState({ topic: TOPIC, partition: 0 }, () => rt.saveSignal);
  state.ledger = Ledger.fromJson(undefined);
  rt.partitions.set(partitionKey(TOPIC, 0), state);
  // Like Ownership.saveForCommit.
  const committer = new Committer(rt, (s) => s.saveLedger(store, rt.saveSignal));
  return { rt, state, store, committer, plain: source.commits, laneSave: () => state.saveLedger(store, rt.hardStop.signal) };
}

/** Records tracked and resolved at once (their rows landed). */
export function resolved(state: PartitionState, offsets: readonly bigint[]): void {
  for (const offset of offsets) {
    const acks = new AckSet();
    acks.add(state.tracker.track(offset, 0));
    acks.resolve();
  }
}

/** Records tracked and left unresolved (a batch in flight): resolve the returned set later. */
export function pending(state: PartitionState, offsets: readonly bigint[]): AckSet {
  const acks = new AckSet();
  for (const offset of offsets) acks.add(state.tracker.track(offset, 0));
  return acks;
}

// ---------------------------------------------------------------------------------------------
// The broker side of KafkaLedgerStore.

interface LogBatch {
  firstOffset: bigint;
  lastOffsetDelta: number;
  attributes: number;
  producerId: bigint;
  records: Array<{ offsetDelta: number; key: Buffer | null; value: Buffer | null }>;
}

interface ProducerState {
  readonly tid: string;
  readonly pid: bigint;
  readonly epoch: number;
}

/** A Kafka error the client surfaces (its `apiCode`, and `canRetry` as @platformatic/kafka sets it). */
export function kafkaError(id: string, apiCode: number): Error {
  return Object.assign(new Error(`${id}: refused by the broker (fake)`), { apiId: id, apiCode, canRetry: false });
}

export class LedgerKafka {
  /** Where a committed TxnOffsetCommit moves the group's position. */
  group: FedSource | undefined;
  /** What the consumer knows of the group coordinator (KafkaLedgerStoreOptions.groupCoordinator). */
  coordinator: number | null = 1;
  /** Refuses a TxnOffsetCommit (the position part of a write): return the error. */
  offsetFault: ((offset: bigint) => Error | undefined) | undefined;
  /** Every request, in order: `<api> <transactional id>` (InitProducerId, Produce, AddOffsetsToTxn, TxnOffsetCommit, EndTxn(commit|abort)). */
  readonly requests: string[] = [];
  /** Positions moved by committed transactions, in order. */
  readonly positions: CommitPosition[] = [];
  /** Called when a committed transaction moves a position, before it is visible to the group. */
  onPosition: ((position: CommitPosition) => void) | undefined;
  readonly #logs = new Map<number, LogBatch[]>();
  readonly #epochs = new Map<string, number>();
  readonly #producers = new WeakMap<object, ProducerState>();
  #nextPid = 1000n;

  /** Mocks the client classes' network methods for the test (restored when it ends). */
  install(t: TestContext): void {
    const begin = (producer: object): unknown => this.#begin(producer);
    t.mock.method(Producer.prototype, 'beginTransaction', async function (this: object) {
      return begin(this);
    });
    t.mock.method(Producer.prototype, 'close', async () => undefined);
    const metadata = async ({ topics }: { topics: string[] }): Promise<unknown> => ({
      topics: new Map(topics.map((topic) => [topic, { id: `${topic}-id`, partitionsCount: 64, partitions: Array.from({ length: 64 }, () => ({ leader: 1, leaderEpoch: 0 })) }])),
    });
    t.mock.method(Admin.prototype, 'listTopics', async () => ['ledger']);
    t.mock.method(Admin.prototype, 'metadata', metadata);
    t.mock.method(Admin.prototype, 'close', async () => undefined);
    t.mock.method(Consumer.prototype, 'metadata', metadata);
    t.mock.method(Consumer.prototype, 'close', async () => undefined);
    t.mock.method(Consumer.prototype, 'listOffsets', async ({ topics, timestamp }: { topics: string[]; timestamp?: bigint }) => {
      const ends = Array.from({ length: 64 }, (_, p) => (timestamp === -2n ? 0n : BigInt(this.#log(p).length)));
      return new Map(topics.map((topic) => [topic, ends]));
    });
    t.mock.method(Consumer.prototype, 'fetch', async ({ topics }: { topics: Array<{ partitions: Array<{ partition: number; fetchOffset: bigint }> }> }) => {
      const { partition, fetchOffset } = topics[0]?.partitions[0] as { partition: number; fetchOffset: bigint };
      return { responses: [{ partitions: [{ records: this.#log(partition).slice(Number(fetchOffset)) }] }] };
    });
  }

  /** A client of this broker, as inserter builds one (group `g`, ledger topic `ledger`). */
  store(): KafkaLedgerStore {
    return new KafkaLedgerStore({
      brokers: ['fake:9092'],
      clientId: 'inserter',
      groupId: 'g',
      topic: 'ledger',
      retry: { baseMs: 1, factor: 2, capMs: 5 },
      groupCoordinator: () => this.coordinator,
    });
  }

  /** Transactions of a ledger partition, by outcome. */
  transactions(partition = 0): { committed: number; aborted: number } {
    const markers = this.#log(partition).filter((b) => (b.attributes & IS_CONTROL) !== 0);
    const committed = markers.filter((b) => b.records[0]?.key?.readInt16BE(2) === 1).length;
    return { committed, aborted: markers.length - committed };
  }

  /** Takeovers of the ledger of source partition `partition` (InitProducerId of its transactional id). */
  takeovers(partition = 0): number {
    return this.#epochs.get(`g/ledger/${TOPIC}/${partition}`) ?? 0;
  }

  #log(partition: number): LogBatch[] {
    let log = this.#logs.get(partition);
    if (log === undefined) {
      log = [];
      this.#logs.set(partition, log);
    }
    return log;
  }

  #append(partition: number, batch: Omit<LogBatch, 'firstOffset' | 'lastOffsetDelta'>): void {
    const log = this.#log(partition);
    log.push({ ...batch, firstOffset: BigInt(log.length), lastOffsetDelta: 0 });
  }

  #begin(producer: object): unknown {
    let state = this.#producers.get(producer);
    if (state === undefined) {
      const options = (producer as Record<symbol, { transactionalId?: string }>)[Object.getOwnPropertySymbols(producer).find((s) => s.description === 'plt.kafka.base.options') as symbol];
      const tid = options?.transactionalId ?? '?';
      const epoch = (this.#epochs.get(tid) ?? 0) + 1;
      this.#epochs.set(tid, epoch); // InitProducerId: fences every older producer of the id
      state = { tid, pid: this.#nextPid++, epoch };
      this.#producers.set(producer, state);
      this.requests.push(`InitProducerId ${tid}`);
    }
    const self = state;
    const check = async (api: string): Promise<void> => {
      await new Promise((resolve) => setImmediate(resolve)); // a request on the wire: other work runs meanwhile
      this.requests.push(`${api} ${self.tid}`);
      if ((this.#epochs.get(self.tid) ?? 0) > self.epoch) throw new Error('PRODUCER_FENCED: there is a newer producer with the same transactionalId which fences the current one');
    };
    const touched = new Set<number>();
    let offset: CommitPosition | undefined;
    const end = (commit: boolean): void => {
      for (const partition of touched)
        this.#append(partition, { attributes: IS_CONTROL | IS_TRANSACTIONAL, producerId: self.pid, records: [{ offsetDelta: 0, key: Buffer.from([0, 0, 0, commit ? 1 : 0]), value: null }] });
      if (commit && offset !== undefined) {
        this.onPosition?.(offset);
        this.positions.push(offset);
        this.group?.commits.push(offset);
      }
    };
    return {
      cancel: async () => undefined,
      send: async ({ messages }: { messages: Array<{ partition: number; key: Buffer; value: Buffer }> }) => {
        await check('Produce');
        for (const m of messages) {
          touched.add(m.partition);
          this.#append(m.partition, { attributes: IS_TRANSACTIONAL, producerId: self.pid, records: [{ offsetDelta: 0, key: m.key, value: m.value }] });
        }
      },
      addConsumer: () => check('AddOffsetsToTxn'),
      addOffset: async (message: { topic: string; partition: number; offset: bigint }) => {
        await check('TxnOffsetCommit');
        const refused = this.offsetFault?.(message.offset + 1n);
        if (refused !== undefined) throw refused;
        offset = { topic: message.topic, partition: message.partition, offset: message.offset + 1n, epoch: 0 };
      },
      commit: async () => {
        await check('EndTxn(commit)');
        end(true);
      },
      abort: async () => {
        await check('EndTxn(abort)');
        end(false);
      },
    };
  }
}

/** Requests of the ledger of source partition 0 sent since `from` (an index into `requests`), without the transactional id. */
export function requestsSince(kafka: LedgerKafka, from: number): string[] {
  return kafka.requests.slice(from).map((r) => r.split(' ')[0] as string);
}

// ---------------------------------------------------------------------------------------------
// The real Pipeline.

export interface Proc {
  readonly pipeline: Pipeline;
  readonly source: FedSource;
}

/**
 * pipeline-world's startWorld with any ledger store (it types its store as a MemoryLedgerStore; the
 * Pipeline takes any LedgerStore, and KafkaLedgerStore is not one).
 */
export function startProc(
  config: Config,
  parts: {
    ledgers: LedgerStore;
    warehouse: TokenWarehouse;
    sink?: (d: DestinationConfig) => Sink;
    letters?: DeadLetterSink;
    partitions?: number[];
    provider?: DestinationProvider;
    source?: FedSource;
  },
): Proc {
  const { pipeline, source } = startWorld({
    config,
    warehouse: parts.warehouse,
    sinkFactory: parts.sink,
    deadLetters: parts.letters,
    ledgers: parts.ledgers as MemoryLedgerStore,
    provider: parts.provider,
    source: parts.source ?? new FedSource({ partitions: parts.partitions ?? [0] }),
    partitions: parts.partitions,
  });
  return { pipeline, source };
}

/** A process over a fresh fake broker (installed for the test), its warehouse, and the group's positions in its source. */
export function kafkaProc(t: TestContext, config: Config): { kafka: LedgerKafka; warehouse: TokenWarehouse; proc: Proc } {
  const kafka = new LedgerKafka();
  kafka.install(t);
  const warehouse = new TokenWarehouse();
  const proc = startProc(config, { ledgers: kafka.store(), warehouse });
  kafka.group = proc.source;
  return { kafka, warehouse, proc };
}

/**
 * Waits for `rows` rows in the warehouse, then reads the status (as an operator's poll would): the
 * tracker closes a resolved chunk of < 512 records only when its position is read, so the records
 * read next start a new chunk and the next intent write carries the position (in production a
 * backlog fills 512-record chunks; these tests have a few records).
 */
export async function landed(proc: Proc, warehouse: TokenWarehouse, rows: number): Promise<void> {
  await until(() => warehouse.rows.length === rows, `${rows} rows in`);
  proc.pipeline.status();
}

/** Records `from`…`to - 1` of partition 0, of `team`. */
export function events(from: number, to: number, team = 8): SourceRecord[] {
  return Array.from({ length: to - from }, (_, i) => event(from + i, team));
}

/**
 * Records of `partition` in `log` below `position` that are neither in the warehouse (by uuid) nor
 * dead-lettered: a landed position above any of them passed an unresolved record.
 */
export function unresolvedBelow(
  log: ReadonlyArray<{ partition: number; offset: bigint; value: Buffer | null | undefined }>,
  warehouse: TokenWarehouse,
  letters: HeldDeadLetters,
  position: CommitPosition,
): bigint[] {
  const landed = new Set(warehouse.uuids());
  const dead = new Set(letters.written.map((w) => w.offset));
  const out: bigint[] = [];
  for (const record of log) {
    if (record.partition !== position.partition || record.offset >= position.offset) continue;
    let uuid: string | undefined;
    try {
      uuid = (JSON.parse(record.value?.toString() ?? '') as { uuid?: string }).uuid;
    } catch {
      uuid = undefined;
    }
    if ((uuid === undefined || !landed.has(uuid)) && !dead.has(record.offset)) out.push(record.offset);
  }
  return out;
}

/** Commits like review-e's store, and checks every position it lands against the oracle. */
export class WatchfulStore extends CommittingLedgerStore {
  /** Positions that landed above an unresolved record. */
  readonly violations: string[] = [];
  readonly #log: readonly SourceRecord[];
  readonly #warehouse: TokenWarehouse;
  readonly #letters: HeldDeadLetters;

  constructor(log: readonly SourceRecord[], warehouse: TokenWarehouse, letters: HeldDeadLetters) {
    super();
    this.#log = log;
    this.#warehouse = warehouse;
    this.#letters = letters;
  }

  override async commit(position: CommitPosition, ledger: LedgerJson, signal: AbortSignal): Promise<boolean> {
    const landed = await super.commit(position, ledger, signal);
    const below = landed ? unresolvedBelow(this.#log, this.#warehouse, this.#letters, position) : [];
    if (below.length > 0) this.violations.push(`${position.partition}@${position.offset} above unresolved ${below.join(',')}`);
    return landed;
  }

  /** Whether every committed position of each partition went forward. */
  forwardOnly(): boolean {
    const last = new Map<number, bigint>();
    for (const w of this.landed) {
      if (w.kind !== 'commit') continue;
      if ((last.get(w.partition) ?? -1n) >= (w.offset as bigint)) return false;
      last.set(w.partition, w.offset as bigint);
    }
    return true;
  }
}
