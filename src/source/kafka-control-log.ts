// Owns the control topic on Kafka: a compacted, one-partition topic `<groupId>.inserter-control`
// that every replica reads from its beginning and then follows. Each replica follows it in a consumer
// group of its own (`<groupId>.inserter-control.<replicaId>`): a shared group would hand the single
// partition to one replica only. Offsets are never committed, so the group leaves nothing behind.
import { Consumer, Producer, type Message, type MessagesStream } from '@platformatic/kafka';
import { handleClientErrors } from './kafka-client-errors.ts';
import { kafkaClientOptions, type KafkaConnection } from './kafka-connection.ts';
import { ensureStateTopic } from './kafka-topics.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { InserterError } from '../errors/inserter-error.ts';
import { retry, type BackoffPolicy } from '../sink/retry.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ControlLog, ControlRecord } from '../control/control-log.ts';

export interface KafkaControlLogOptions {
  readonly brokers: readonly string[];
  /** TLS and SASL (source/kafka-connection.ts); none: plaintext. */
  readonly connection?: KafkaConnection;
  readonly clientId: string;
  readonly groupId: string;
  readonly topic: string;
  readonly replicaId: string;
  readonly retry: BackoffPolicy;
  readonly logger: Logger;
}

type Stream = MessagesStream<Buffer, Buffer, Buffer, Buffer>;

/** Compaction keeps one record per key; heartbeats roll segments often so old ones go quickly. */
const TOPIC_CONFIGS = [
  { name: 'cleanup.policy', value: 'compact' },
  { name: 'segment.ms', value: String(10 * 60_000) },
  { name: 'min.cleanable.dirty.ratio', value: '0.1' },
  // A resumed pause's tombstone is kept a day, then forgotten (a missing key means "not paused").
  { name: 'delete.retention.ms', value: String(24 * 3600_000) },
];

export class KafkaControlLog implements ControlLog {
  readonly #options: KafkaControlLogOptions;
  readonly #producer: Producer<Buffer, Buffer, Buffer, Buffer>;
  readonly #stop = new AbortController();
  #consumer: Consumer<Buffer, Buffer, Buffer, Buffer> | undefined;
  #stream: Stream | undefined;
  /** Next offset to deliver. */
  #position = 0n;
  #lastHeard = Date.now();
  #ready: Promise<void> | undefined;
  #following: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: KafkaControlLogOptions) {
    this.#options = options;
    this.#producer = new Producer({ clientId: `${options.clientId}-control`, ...kafkaClientOptions(options), idempotent: true, acks: -1 });
    handleClientErrors(this.#producer);
  }

  async follow(onRecord: (record: ControlRecord) => void, signal: AbortSignal): Promise<void> {
    await this.#ensureTopic(signal);
    const consumer = new Consumer({
      clientId: `${this.#options.clientId}-control-reader`,
      groupId: `${this.#options.groupId}.inserter-control.${this.#options.replicaId}`,
      ...kafkaClientOptions(this.#options),
      autocommit: false,
      maxWaitTime: 200,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
    });
    this.#consumer = consumer;
    handleClientErrors(consumer);
    const [ends, starts] = await retry(
      () => Promise.all([consumer.listOffsets({ topics: [this.#options.topic] }), consumer.listOffsets({ topics: [this.#options.topic], timestamp: -2n })]),
      this.#options.retry,
      signal,
      { isRetryable: () => !this.#stop.signal.aborted },
    );
    const end = ends.get(this.#options.topic)?.[0] ?? 0n;
    this.#position = starts.get(this.#options.topic)?.[0] ?? 0n;
    const caughtUp = Promise.withResolvers<void>();
    if (this.#position >= end) caughtUp.resolve();
    const deliver = (message: Message<Buffer, Buffer, Buffer, Buffer>): void => {
      this.#lastHeard = Date.now();
      if (message.offset < this.#position) return; // re-delivered after a stream restart
      this.#position = message.offset + 1n;
      if (message.key !== undefined) {
        const value = message.value === undefined || message.value === null || message.value.length === 0 ? undefined : message.value.toString();
        onRecord({ key: message.key.toString(), value, offset: message.offset, timestamp: Number(message.timestamp) });
      }
      if (this.#position >= end) caughtUp.resolve();
    };
    this.#following = this.#run(consumer, deliver, () => {
      // Compaction may have removed the records just below `end`: the fetch position tells.
      if (this.#stream !== undefined && this.#stream.readableLength === 0 && this.#fetchPosition() >= end) caughtUp.resolve();
    });
    const onAbort = (): void => caughtUp.reject(new InserterError('INSERTER_CONTROL_ABORTED', 'stopped before the control topic was read'));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await caughtUp.promise;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Keeps a stream open, re-creating it from the next offset after an error. */
  async #run(consumer: Consumer<Buffer, Buffer, Buffer, Buffer>, deliver: (m: Message<Buffer, Buffer, Buffer, Buffer>) => void, onFetch: () => void): Promise<void> {
    const topic = this.#options.topic;
    for (let attempt = 0; !this.#stop.signal.aborted; attempt++) {
      try {
        const stream = await consumer.consume({ topics: [topic], mode: 'manual', offsets: [{ topic, partition: 0, offset: this.#position }], autocommit: false, maxWaitTime: 200 });
        this.#stream = stream;
        const ended = new Promise<void>((resolve, reject) => {
          stream.on('data', deliver);
          stream.on('fetch', () => {
            this.#lastHeard = Date.now();
            onFetch();
          });
          stream.once('error', reject);
          stream.once('close', resolve);
        });
        attempt = 0;
        await ended;
        if (this.#stop.signal.aborted) return;
        throw new InserterError('INSERTER_CONTROL_STREAM_CLOSED', 'control topic stream closed', { retryable: true });
      } catch (error) {
        if (this.#stop.signal.aborted) return;
        this.#options.logger.warn({ err: error, attempt }, 'control topic reader failed; reading again from the last position');
        await this.#stream?.close().catch(() => undefined);
        await sleep(Math.min(5_000, 200 * 2 ** attempt), undefined, { signal: this.#stop.signal }).catch(() => undefined);
      }
    }
  }

  #fetchPosition(): bigint {
    return this.#stream?.offsetsToFetch.get(`${this.#options.topic}:0`) ?? -1n;
  }

  async append(key: string, value: string | undefined, signal: AbortSignal): Promise<bigint> {
    await this.#ensureTopic(signal);
    const message = { topic: this.#options.topic, partition: 0, key: Buffer.from(key), ...(value === undefined ? {} : { value: Buffer.from(value) }) };
    const result = await retry(() => this.#producer.send({ messages: [message] }), this.#options.retry, signal, { isRetryable: () => true });
    const offset = result.offsets?.[0]?.offset;
    if (offset === undefined) throw new InserterError('INSERTER_CONTROL_WRITE', 'the broker did not report the offset of a control record', { retryable: true });
    return offset;
  }

  silenceMs(): number {
    return Date.now() - this.#lastHeard;
  }

  #ensureTopic(signal: AbortSignal): Promise<void> {
    const { brokers, connection, topic, retry: policy } = this.#options;
    this.#ready ??= ensureStateTopic({ brokers, connection, clientId: `${this.#options.clientId}-control`, topic, configs: TOPIC_CONFIGS, retry: policy }, signal).then(
      () => undefined,
      (error: unknown) => {
        this.#ready = undefined;
        throw error;
      },
    );
    return this.#ready;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stop.abort();
      await this.#stream?.close().catch(() => undefined);
      await this.#following?.catch(() => undefined);
      await Promise.allSettled([this.#consumer?.close(true), this.#producer.close()]);
    })();
    return this.#closing;
  }
}
