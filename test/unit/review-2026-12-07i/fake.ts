// A fake broker behind @platformatic/kafka's public Consumer methods (prototype stubs, restored by
// `restore()`): drives the real KafkaFetchSource deterministically. Fetches wait until the test
// answers them (`answer`/`fail`).
import { Consumer } from '@platformatic/kafka';
import type { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import type { CommitPosition, PartitionRef, SourceHandler, SourceRecord } from '../../../src/source/types.ts';

export const TOPIC = 't';
export const TOPIC_ID = 'tid';

export interface FakeBatch {
  firstOffset: bigint;
  firstTimestamp: bigint;
  lastOffsetDelta: number;
  attributes: number;
  partitionLeaderEpoch: number;
  producerId: bigint;
  records: Array<{ offsetDelta: number; timestampDelta: bigint; key: Buffer | null; value: Buffer | null; headers: Array<[Buffer, Buffer]> }>;
}

/** A batch holding `offsets` (its first offset is offsets[0] unless `first` says otherwise). */
export function batch(offsets: number[], opts: { first?: number; last?: number; control?: boolean; epoch?: number } = {}): FakeBatch {
  const first = opts.first ?? offsets[0]!;
  const last = opts.last ?? offsets[offsets.length - 1]!;
  return {
    firstOffset: BigInt(first),
    firstTimestamp: 1000n,
    lastOffsetDelta: last - first,
    attributes: opts.control === true ? 0x20 : 0,
    partitionLeaderEpoch: opts.epoch ?? 0,
    producerId: -1n,
    records: offsets.map((o) => ({ offsetDelta: o - first, timestampDelta: BigInt(o), key: null, value: Buffer.from(String(o)), headers: [] })),
  };
}

export interface PendingFetch {
  options: { node: number; topics: Array<{ topicId: string; partitions: Array<{ partition: number; fetchOffset: bigint; currentLeaderEpoch: number }> }> };
  resolve(response: unknown): void;
  reject(error: unknown): void;
}

export class FakeKafka {
  consumer: (Consumer & { assignments: unknown }) | undefined;
  partitions = 2;
  leaderEpoch = 0;
  leaders: number[] = [1, 1];
  logStart = new Map<number, bigint>();
  /** The log end (listOffsets' latest) of each partition; 1,000,000 where unset. */
  logEnd = new Map<number, bigint>();
  committed = new Map<number, bigint>();
  /** When set, the next listCommittedOffsets call waits for this (or fails with it). */
  committedHook: ((partition: number) => Promise<bigint | undefined>) | undefined;
  assignment: number[] = [0, 1];
  fetches: PendingFetch[] = [];
  /** Fetch requests made so far. */
  requested = 0;
  commits: CommitPosition[] = [];
  closed = false;
  readonly #saved = new Map<string, PropertyDescriptor | undefined>();

  constructor() {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the stubs run with the consumer as `this`
    const fake = this;
    const proto = Consumer.prototype as unknown as Record<string, unknown>;
    const stub = (name: string, fn: (this: Consumer, ...args: never[]) => unknown): void => {
      this.#saved.set(name, Object.getOwnPropertyDescriptor(proto, name));
      Object.defineProperty(proto, name, { value: fn, configurable: true, writable: true });
    };
    stub('joinGroup', function () {
      fake.consumer = this;
      fake.join(fake.assignment);
      return Promise.resolve();
    });
    stub('metadata', () =>
      Promise.resolve({
        topics: new Map([[TOPIC, { id: TOPIC_ID, partitions: Array.from({ length: fake.partitions }, (_, i) => ({ leader: fake.leaders[i] ?? 1, leaderEpoch: fake.leaderEpoch })) }]]),
      }),
    );
    stub('listOffsets', (options: { timestamp?: bigint }) =>
      Promise.resolve(new Map([[TOPIC, Array.from({ length: fake.partitions }, (_, i) => (options.timestamp === -2n ? (fake.logStart.get(i) ?? 0n) : (fake.logEnd.get(i) ?? 1_000_000n)))]])),
    );
    stub('listCommittedOffsets', async (options: { topics: Array<{ topic: string; partitions: number[] }> }) => {
      const p = options.topics[0]!.partitions[0]!;
      const hook = fake.committedHook;
      const value = hook !== undefined ? await hook(p) : (fake.committed.get(p) ?? -1n);
      const arr: bigint[] = [];
      arr[p] = value ?? -1n;
      return new Map([[TOPIC, arr]]);
    });
    stub(
      'fetch',
      (options: PendingFetch['options']) =>
        new Promise((resolve, reject) => {
          fake.requested++;
          fake.fetches.push({ options, resolve, reject });
        }),
    );
    stub('commit', (options: { offsets: CommitPosition[] }) => {
      for (const o of options.offsets) {
        fake.commits.push(o);
        fake.committed.set(o.partition, o.offset);
      }
      return Promise.resolve();
    });
    stub('close', () => {
      fake.closed = true;
      for (const f of fake.fetches.splice(0)) f.reject(Object.assign(new Error('Client is closed.'), { code: 'PLT_KFK_USER' }));
      return Promise.resolve();
    });
  }

  restore(): void {
    const proto = Consumer.prototype as unknown as Record<string, unknown>;
    for (const [name, d] of this.#saved) {
      if (d === undefined) delete proto[name];
      else Object.defineProperty(proto, name, d);
    }
  }

  /** A group join with these partitions of TOPIC. */
  join(partitions: number[]): void {
    this.assignment = partitions;
    const assignments = [{ topic: TOPIC, partitions }];
    this.consumer!.assignments = assignments;
    this.consumer!.emit('consumer:group:join', { assignments });
  }

  /** The next fetch request (waits for it). */
  async nextFetch(): Promise<PendingFetch> {
    await until(() => this.fetches.length > 0, 'a fetch');
    return this.fetches.shift()!;
  }

  /** The first fetch requested after `count` requests (earlier ones are answered empty). */
  async fetchAfter(count: number): Promise<PendingFetch> {
    for (;;) {
      const before = this.requested - this.fetches.length;
      const f = await this.nextFetch();
      if (before >= count) return f;
      f.resolve(FakeKafka.response([]));
    }
  }

  /**
   * The first fetch that asks for `partition` (others are answered empty): a partition assigned to
   * a node whose loop is mid-fetch joins that loop's next request.
   */
  async fetchIncluding(partition: number): Promise<PendingFetch> {
    for (;;) {
      const f = await this.nextFetch();
      if (FakeKafka.offsets(f).has(partition)) return f;
      f.resolve(FakeKafka.response([]));
    }
  }

  /** The requested offset of each partition of a fetch. */
  static offsets(f: PendingFetch): Map<number, bigint> {
    const m = new Map<number, bigint>();
    for (const t of f.options.topics) for (const p of t.partitions) m.set(p.partition, p.fetchOffset);
    return m;
  }

  static response(parts: Array<[number, FakeBatch[]]>): unknown {
    return { responses: [{ topicId: TOPIC_ID, partitions: parts.map(([partitionIndex, records]) => ({ partitionIndex, errorCode: 0, records })) }] };
  }
}

export function options(overrides: Record<string, unknown> = {}): ConstructorParameters<typeof KafkaFetchSource>[0] {
  return { brokers: ['127.0.0.1:1'], clientId: 'probe', groupId: 'g', topics: [TOPIC], fetchMaxBytes: 1 << 20, fetchMaxWaitMs: 50, sessionTimeoutMs: 10_000, ...overrides };
}

export interface Log {
  records: SourceRecord[];
  events: string[];
}

/** A handler recording everything; `onRecord` may be replaced. */
export function recorder(onRecord?: (r: SourceRecord) => void | Promise<void>): SourceHandler & Log {
  const records: SourceRecord[] = [];
  const events: string[] = [];
  return {
    records,
    events,
    onRecord(r) {
      records.push(r);
      events.push(`r${r.partition}:${r.offset}`);
      return onRecord?.(r);
    },
    onAssigned(ps: readonly PartitionRef[]) {
      events.push(`assigned ${ps.map((p) => p.partition).join(',')}`);
    },
    onRevoked(ps: readonly PartitionRef[]) {
      events.push(`revoked ${ps.map((p) => p.partition).join(',')}`);
    },
    onReset() {
      events.push('reset');
    },
  };
}

export async function until(cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** Offsets delivered for a partition, in order. */
export function delivered(log: Log, partition: number): number[] {
  return log.records.filter((r) => r.partition === partition).map((r) => Number(r.offset));
}

export function deferred<T = void>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((a, b) => ((resolve = a), (reject = b)));
  return { promise, resolve, reject };
}
