// Owns writing dead letters to Kafka: the original key, value and headers, plus headers saying why,
// where it came from and where it was going (never credentials). A dead letter counts as delivered
// only once the broker acknowledged it; until then the writer retries and the record stays unresolved.
import { Admin, Producer } from '@platformatic/kafka';
import { deadLetterHeader, type DeadLetterReason, type DeadLetterSink } from '../deadletter/types.ts';
import type { SourceRecord } from './types.ts';
import { retry, type BackoffPolicy } from '../sink/retry.ts';
import type { Logger } from '../telemetry/logger.ts';
import { handleClientErrors } from './kafka-client-errors.ts';
import { kafkaClientOptions, type KafkaConnection } from './kafka-connection.ts';

export interface DeadLetterWriterOptions {
  brokers: readonly string[];
  /** TLS and SASL (source/kafka-connection.ts); none: plaintext. */
  connection?: KafkaConnection;
  clientId: string;
  createPartitions: number;
  /** The largest value a record may have (config `maxMessageBytes`): topics created here take it with headers. */
  maxMessageBytes?: number;
  retry: BackoffPolicy;
  logger: Logger;
}

/** Room for a dead letter's key, its original headers, the `x-inserter-*` headers and the batch framing. */
export const deadLetterHeadroomBytes = 256 * 1024;

/** `max.message.bytes` of a dead-letter topic created for records of up to `maxMessageBytes`. */
export function deadLetterTopicMaxBytes(maxMessageBytes: number): number {
  return maxMessageBytes + deadLetterHeadroomBytes;
}

export class DeadLetterWriter implements DeadLetterSink {
  readonly #producer: Producer<Buffer, Buffer, Buffer, Buffer>;
  readonly #admin: Admin;
  readonly #options: DeadLetterWriterOptions;
  readonly #ensured = new Map<string, Promise<void>>();
  #closing: Promise<void> | undefined;

  constructor(options: DeadLetterWriterOptions) {
    this.#options = options;
    this.#producer = new Producer({ clientId: `${options.clientId}-dlq`, ...kafkaClientOptions(options), idempotent: true, acks: -1 });
    this.#admin = new Admin({ clientId: `${options.clientId}-dlq-admin`, ...kafkaClientOptions(options) });
    handleClientErrors(this.#producer, (error) => options.logger.debug({ err: error }, 'dead-letter producer connection error'));
    handleClientErrors(this.#admin);
  }

  /** Resolves once the broker has the dead letter; retries (waits) rather than lose it. */
  async write(topic: string, record: SourceRecord, reason: DeadLetterReason, signal: AbortSignal): Promise<void> {
    await this.#ensureTopic(topic, signal);
    const headers = new Map<Buffer, Buffer>();
    for (const [name, value] of record.headers) headers.set(name, value);
    const add = (name: string, value: string | number | bigint | undefined): void => {
      if (value !== undefined) headers.set(Buffer.from(name), Buffer.from(String(value)));
    };
    const now = new Date().toISOString();
    add(deadLetterHeader.class, reason.errorClass);
    add(deadLetterHeader.code, reason.code);
    add(deadLetterHeader.serverCode, reason.serverCode);
    add(deadLetterHeader.message, reason.message.slice(0, 2000));
    add(deadLetterHeader.route, reason.route);
    add(deadLetterHeader.destination, reason.destination);
    add(deadLetterHeader.table, reason.table);
    add(deadLetterHeader.team, reason.team);
    add(deadLetterHeader.attempts, reason.attempts ?? 1);
    add(deadLetterHeader.firstFailure, (reason.firstFailure ?? new Date()).toISOString());
    add(deadLetterHeader.lastFailure, now);
    add(deadLetterHeader.topic, record.topic);
    add(deadLetterHeader.partition, record.partition);
    add(deadLetterHeader.offset, record.offset);
    add(deadLetterHeader.timestamp, record.timestamp);
    const message = { topic, headers, ...(record.key ? { key: record.key } : {}), ...(record.value ? { value: record.value } : {}) };
    await retry(() => this.#producer.send({ messages: [message] }), this.#options.retry, signal, {
      isRetryable: () => true,
      onRetry: (error, attempt) => this.#options.logger.warn({ topic, attempt, err: error }, 'dead-letter write failed; retrying'),
    });
  }

  #ensureTopic(topic: string, signal: AbortSignal): Promise<void> {
    let ensured = this.#ensured.get(topic);
    if (ensured === undefined) {
      ensured = this.#options.createPartitions === 0 ? Promise.resolve() : this.#createTopic(topic, signal);
      this.#ensured.set(topic, ensured);
      ensured.catch(() => this.#ensured.delete(topic));
    }
    return ensured;
  }

  async #createTopic(topic: string, signal: AbortSignal): Promise<void> {
    await retry(
      async () => {
        const existing = await this.#admin.listTopics();
        if (existing.includes(topic)) return;
        try {
          const configs = this.#options.maxMessageBytes === undefined ? [] : [{ name: 'max.message.bytes', value: String(deadLetterTopicMaxBytes(this.#options.maxMessageBytes)) }];
          await this.#admin.createTopics({ topics: [topic], partitions: this.#options.createPartitions, replicas: -1, configs });
        } catch (error) {
          if (!/already exists/i.test(JSON.stringify((error as { errors?: unknown }).errors ?? '') + String(error))) throw error;
        }
      },
      this.#options.retry,
      signal,
      { isRetryable: () => true },
    );
  }

  close(): Promise<void> {
    this.#closing ??= Promise.allSettled([this.#producer.close(), this.#admin.close()]).then(() => undefined);
    return this.#closing;
  }
}
