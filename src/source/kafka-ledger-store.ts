// Owns keeping partition ledgers in a compacted Kafka topic (one record per source partition, key
// `group/topic/partition`). Kafka is already the durable, replicated system the pipeline depends on,
// so exactly-once adds no database. A load reads the (small, compacted) topic to its end, so it
// sees the last ledger any previous owner wrote; a save returns only once the broker acknowledged it.
import { Admin, Consumer, Producer } from '@platformatic/kafka';
import type { LedgerJson, LedgerStore } from '../ack/ledger.ts';
import { retry, type BackoffPolicy } from '../sink/retry.ts';

const SAVE_TIMEOUT_MS = 15_000;

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export interface KafkaLedgerStoreOptions {
  brokers: readonly string[];
  clientId: string;
  groupId: string;
  topic: string;
  retry: BackoffPolicy;
}

export class KafkaLedgerStore implements LedgerStore {
  readonly #options: KafkaLedgerStoreOptions;
  readonly #producer: Producer<Buffer, Buffer, Buffer, Buffer>;
  #ready: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: KafkaLedgerStoreOptions) {
    this.#options = options;
    this.#producer = new Producer({ clientId: `${options.clientId}-ledger`, bootstrapBrokers: [...options.brokers], idempotent: true, acks: -1 });
  }

  #key(topic: string, partition: number): string {
    return `${this.#options.groupId}/${topic}/${partition}`;
  }

  async load(topic: string, partition: number, signal: AbortSignal): Promise<LedgerJson | undefined> {
    await this.#ensureTopic(signal);
    const all = await retry(() => this.#readAll(), this.#options.retry, signal, { isRetryable: () => true });
    const text = all.get(this.#key(topic, partition));
    return text === undefined || text === '' ? undefined : (JSON.parse(text) as LedgerJson);
  }

  async save(topic: string, partition: number, ledger: LedgerJson, signal: AbortSignal): Promise<void> {
    await this.#ensureTopic(signal);
    const message = { topic: this.#options.topic, partition: 0, key: Buffer.from(this.#key(topic, partition)), value: Buffer.from(JSON.stringify(ledger)) };
    // A send that never settles must not hold the partition's deliveries: give up on it and retry
    // (writing the same ledger twice is harmless; the newest write wins under compaction).
    await retry(() => withTimeout(this.#producer.send({ messages: [message] }), SAVE_TIMEOUT_MS, 'ledger write'), this.#options.retry, signal, { isRetryable: () => true });
  }

  async #readAll(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const consumer = new Consumer({ clientId: `${this.#options.clientId}-ledger-reader`, groupId: `${this.#options.groupId}.ledger-reader`, bootstrapBrokers: [...this.#options.brokers], autocommit: false, maxWaitTime: 100 });
    try {
      const ends = await consumer.listOffsets({ topics: [this.#options.topic] });
      const end = ends.get(this.#options.topic)?.[0] ?? 0n;
      const starts = await consumer.listOffsets({ topics: [this.#options.topic], timestamp: -2n });
      const start = starts.get(this.#options.topic)?.[0] ?? 0n;
      if (end <= start) return out;
      const stream = await consumer.consume({ topics: [this.#options.topic], mode: 'earliest', autocommit: false, maxWaitTime: 100 });
      try {
        for await (const m of stream) {
          if (m.key) out.set(m.key.toString(), m.value?.toString() ?? '');
          if (m.offset >= end - 1n) break;
        }
      } finally {
        await stream.close().catch(() => undefined);
      }
    } finally {
      await consumer.close(true);
    }
    return out;
  }

  #ensureTopic(signal: AbortSignal): Promise<void> {
    this.#ready ??= retry(
      async () => {
        const admin = new Admin({ clientId: `${this.#options.clientId}-ledger-admin`, bootstrapBrokers: [...this.#options.brokers] });
        try {
          if ((await admin.listTopics()).includes(this.#options.topic)) return;
          await admin.createTopics({ topics: [this.#options.topic], partitions: 1, replicas: -1, configs: [{ name: 'cleanup.policy', value: 'compact' }] }).catch((error: unknown) => {
            if (!/already exists/i.test(String(error) + JSON.stringify((error as { errors?: unknown }).errors ?? ''))) throw error;
          });
        } finally {
          await admin.close();
        }
      },
      this.#options.retry,
      signal,
      { isRetryable: () => true },
    ).catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  close(): Promise<void> {
    this.#closing ??= this.#producer.close();
    return this.#closing;
  }
}
