// Helpers of review 2026-12-07k on top of the review fake (test/unit/review-2026-12-07i/fake.ts,
// not edited): start/teardown, an auto-answering broker, a fake whose listOffsets fails the way
// the real client's does when a partition of the topic has no leader, and the real client's own
// errors (built by @platformatic/kafka 2.12.1's code, not by hand).
import { Consumer, MultipleErrors, NetworkError, ResponseError } from '@platformatic/kafka';
import { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import type { SourceHandler } from '../../../src/source/types.ts';
import { FakeKafka, TOPIC, TOPIC_ID, batch, options, recorder, until, type PendingFetch } from '../review-2026-12-07i/fake.ts';

export interface Running {
  source: KafkaFetchSource;
  stop: AbortController;
  running: Promise<void>;
  /** 'resolved', the error run() rejected with, or undefined while it runs. */
  outcome(): unknown;
}

export async function start(kafka: FakeKafka, handler: SourceHandler = recorder(), errors: Array<{ error: unknown; attempt: number }> = [], overrides: Record<string, unknown> = {}): Promise<Running> {
  const source = new KafkaFetchSource(options({ onError: (error: unknown, attempt: number) => errors.push({ error, attempt }), ...overrides }));
  const stop = new AbortController();
  let outcome: unknown;
  const running = source.run(handler, stop.signal);
  running.then(
    () => (outcome = 'resolved'),
    (error: unknown) => (outcome = error ?? 'rejected'),
  );
  await until(() => kafka.consumer !== undefined, 'the join');
  return { source, stop, running, outcome: () => outcome };
}

/** Stops run() (answering every fetch until it ended), closes, restores the prototype. */
export async function teardown(kafka: FakeKafka, r: Running): Promise<void> {
  r.stop.abort();
  await until(
    () => {
      for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response([]));
      return r.outcome() !== undefined;
    },
    'run() to end in teardown',
    20_000,
  ).catch(() => undefined);
  await r.running.catch(() => undefined);
  await r.source.close();
  kafka.restore();
}

export const tick = (ms = 0): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Answers every fetch as it comes with `answer(fetch)` (every 2 ms) until the returned stop is called. */
export function autoAnswer(kafka: FakeKafka, answer: (f: PendingFetch) => unknown): () => void {
  const timer = setInterval(() => {
    for (const f of kafka.fetches.splice(0)) f.resolve(answer(f));
  }, 2);
  return () => clearInterval(timer);
}

/**
 * A fake whose listOffsets behaves like the real client's (consumer.js #listOffsets): without a
 * `partitions` filter it asks for EVERY partition of the topic, and one partition without a
 * reachable leader (leader -1, or a node in `down`) fails the whole call with the client's
 * MultipleErrors('Listing offsets failed.', [NetworkError(...)]).
 */
export class OutageKafka extends FakeKafka {
  readonly down = new Set<number>();
  listOffsetsCalls = 0;

  constructor() {
    super();
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the stub runs with the consumer as `this`
    const fake = this;
    const proto = Consumer.prototype as unknown as Record<string, unknown>;
    Object.defineProperty(proto, 'listOffsets', {
      configurable: true,
      writable: true,
      value: (opts: { timestamp?: bigint; partitions?: Record<string, number[]> }) => {
        fake.listOffsetsCalls++;
        const asked = opts.partitions?.[TOPIC] ?? Array.from({ length: fake.partitions }, (_, i) => i);
        const unreachable = asked.filter((p) => {
          const leader = fake.leaders[p] ?? 1;
          return leader < 0 || fake.down.has(leader);
        });
        if (unreachable.length > 0) {
          const inner = new NetworkError('Cannot get a connection: the broker is not available in the current cluster metadata.', { canRetry: true });
          return Promise.reject(new MultipleErrors('Listing offsets failed.', [inner]));
        }
        return Promise.resolve(new Map([[TOPIC, Array.from({ length: fake.partitions }, (_, i) => (opts.timestamp === -2n ? (fake.logStart.get(i) ?? 0n) : (fake.logEnd.get(i) ?? 1_000_000n)))]]));
      },
    });
  }
}

interface ClusterPartition {
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  offlineReplicas: number[];
}

/**
 * What the REAL client's consumer.fetch() rejects with when its own metadata (which it reads, and
 * refreshes, itself: consumer.js #fetchNodeForRequest / kGetFetchNode) names these leaders. Uses a
 * real Consumer whose internal metadata lookup answers `leaders` (no broker is contacted).
 * Must run before a FakeKafka stubs Consumer.prototype.fetch.
 */
export async function realFetchError(leaders: number[], requested: number[]): Promise<unknown> {
  const consumer = new Consumer({ clientId: 'probe-real', groupId: 'g', bootstrapBrokers: ['127.0.0.1:1'], retries: 0 });
  let proto: object | null = Object.getPrototypeOf(consumer) as object | null;
  let kMetadata: symbol | undefined;
  while (proto !== null && kMetadata === undefined) {
    kMetadata = Object.getOwnPropertySymbols(proto).find((s) => s.description === 'plt.kafka.base.metadata');
    proto = Object.getPrototypeOf(proto) as object | null;
  }
  if (kMetadata === undefined) throw new Error('the client has no internal metadata method');
  const partitions: ClusterPartition[] = leaders.map((leader) => ({ leader, leaderEpoch: 0, replicas: [leader], offlineReplicas: leader < 0 ? [2] : [] }));
  const metadata = { brokers: new Map([[1, { host: '127.0.0.1', port: 1 }]]), topics: new Map([[TOPIC, { id: TOPIC_ID, partitionsCount: leaders.length, partitions }]]) };
  Object.defineProperty(consumer, kMetadata, { value: (_options: unknown, callback: (error: Error | null, value: unknown) => void) => callback(null, metadata) });
  try {
    await consumer.fetch({
      node: 1,
      topics: [{ topicId: TOPIC_ID, partitions: requested.map((partition) => ({ partition, fetchOffset: 0n, partitionMaxBytes: 1024, currentLeaderEpoch: 0, lastFetchedEpoch: 0 })) }],
      maxBytes: 1024,
      maxWaitTime: 10,
    });
    return undefined;
  } catch (error) {
    return error;
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
}

/** The client's own fetch(), taken before any FakeKafka replaced it. */
const realFetch = Object.getOwnPropertyDescriptor(Consumer.prototype, 'fetch');

function clientSymbol(target: object, description: string): symbol {
  for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    const found = Object.getOwnPropertySymbols(o).find((s) => s.description === description);
    if (found !== undefined) return found;
  }
  throw new Error(`the client has no ${description}`);
}

export interface FetchCall {
  node: number;
  partitions: Map<number, bigint>;
  failed: boolean;
}

/**
 * A fake whose consumer.fetch() is the REAL client's (routing by its own metadata, retries,
 * sessions, error handling), with the broker simulated below it: the client's internal metadata
 * lookup answers `leaders` (always fresh, as after the client's own refresh), its connection pool
 * hands out a connection per node, and the Fetch API answers like a broker — NOT_LEADER_OR_FOLLOWER
 * (a partition error of the whole response, as the client turns it into a ResponseError) for a
 * partition the node does not lead, else two records per partition below `available`, or nothing
 * after maxWaitTime. `healed` makes every node answer (to end a test).
 */
export class RealFetchKafka extends FakeKafka {
  readonly calls: FetchCall[] = [];
  readonly available = new Map<number, bigint>();
  healed = false;
  #installed = false;

  constructor() {
    super();
    if (realFetch === undefined) throw new Error('no Consumer.prototype.fetch');
    Object.defineProperty(Consumer.prototype, 'fetch', realFetch);
  }

  override join(partitions: number[]): void {
    if (!this.#installed && this.consumer !== undefined) {
      this.#installed = true;
      this.#install(this.consumer);
    }
    super.join(partitions);
  }

  #install(consumer: Consumer): void {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- used inside the client's callbacks
    const fake = this;
    const kMetadata = clientSymbol(consumer, 'plt.kafka.base.metadata');
    const kGetApi = clientSymbol(consumer, 'plt.kafka.base.getApi');
    const kConnections = clientSymbol(consumer, 'plt.kafka.base.connections');
    const metadata = (): unknown => ({
      brokers: new Map([1, 2, 3].map((node) => [node, { nodeId: node, host: '127.0.0.1', port: 1 }])),
      topics: new Map([
        [
          TOPIC,
          {
            id: TOPIC_ID,
            partitionsCount: fake.partitions,
            partitions: Array.from({ length: fake.partitions }, (_, i) => ({ leader: fake.leaders[i] ?? 1, leaderEpoch: fake.leaderEpoch, replicas: [1, 2, 3], offlineReplicas: [] })),
          },
        ],
      ]),
    });
    type Callback = (error: Error | null, value?: unknown) => void;
    Object.defineProperty(consumer, kMetadata, { configurable: true, value: (_options: unknown, callback: Callback) => callback(null, metadata()) });
    const pool = { get: (broker: { nodeId: number }, callback: Callback) => callback(null, { node: broker.nodeId }) };
    Object.defineProperty(consumer, kConnections, { configurable: true, writable: true, value: pool });
    const fetchApi = (
      connection: { node: number },
      maxWaitTime: number,
      _minBytes: number,
      _maxBytes: number,
      _isolation: number,
      _sessionId: number,
      _sessionEpoch: number,
      topics: Array<{ topicId: string; partitions: Array<{ partition: number; fetchOffset: bigint }> }>,
      _forgotten: unknown,
      _rack: unknown,
      callback: Callback,
    ): void => {
      const partitions = new Map<number, bigint>();
      for (const t of topics) for (const p of t.partitions) partitions.set(p.partition, p.fetchOffset);
      const notLed = [...partitions.keys()].filter((p) => (fake.leaders[p] ?? 1) !== connection.node);
      const failed = notLed.length > 0 && !fake.healed;
      fake.calls.push({ node: connection.node, partitions, failed });
      const parts = [...partitions].map(([partitionIndex, offset]) => {
        const end = fake.available.get(partitionIndex) ?? 0n;
        const records = failed || offset >= end ? [] : [batch(offset + 1n < end ? [Number(offset), Number(offset) + 1] : [Number(offset)])];
        return { partitionIndex, errorCode: 0, highWatermark: end, lastStableOffset: end, logStartOffset: 0n, abortedTransactions: [], preferredReadReplica: -1, records };
      });
      const response = { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses: [{ topicId: TOPIC_ID, partitions: parts }] };
      if (failed) {
        const errors = Object.fromEntries(notLed.map((p) => [`/responses/0/partitions/${p}`, [6, null] as [number, null]]));
        setImmediate(() => callback(new ResponseError(1, 17, errors, response)));
        return;
      }
      const empty = parts.every((p) => p.records.length === 0);
      setTimeout(() => callback(null, response), empty ? maxWaitTime : 0);
    };
    Object.defineProperty(consumer, kGetApi, {
      configurable: true,
      value: (name: string, callback: Callback) => (name === 'Fetch' ? callback(null, fetchApi) : callback(new Error(`no simulated ${name}`))),
    });
  }
}
