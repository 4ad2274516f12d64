// Owns writing dead letters to Kafka: the original key, value and headers, plus headers saying why,
// where it came from and where it was going (never credentials). A dead letter counts as delivered
// only once the broker acknowledged it; until then the writer retries and the record stays unresolved.
// A dead letter the broker refuses as too large is written without its value (it stays in the source
// topic), so it never blocks a partition. Also owns the start-up check that existing dead-letter
// topics accept `maxMessageBytes` plus headers.
import { Admin, ConfigResourceTypes, ConfigSources, Producer } from '@platformatic/kafka';
import { InserterError } from '../errors/inserter-error.ts';
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
  /** Called each time a dead letter is written without its value (the broker refused it as too large). */
  onValueOmitted?: (topic: string) => void;
}

/** Header of a dead letter written without its value: the value's size in bytes; the value is left in the source topic. */
export const valueOmittedHeader = 'x-inserter-value-omitted';

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
    const send = (m: typeof message): Promise<unknown> =>
      retry(() => this.#producer.send({ messages: [m] }), this.#options.retry, signal, {
        isRetryable: (error) => !isTooLarge(error),
        onRetry: (error, attempt) => this.#options.logger.warn({ topic, attempt, err: error }, 'dead-letter write failed; retrying'),
      });
    try {
      await send(message);
    } catch (error) {
      if (!isTooLarge(error)) throw error;
      // The value stays in the source topic: the original coordinates and its size are in the headers.
      const bytes = record.value?.length ?? 0;
      this.#options.logger.error(
        { topic, originalTopic: record.topic, partition: record.partition, offset: String(record.offset), valueBytes: bytes, err: error },
        'dead letter refused as too large by the broker: written without its value, which is left in the source topic',
      );
      headers.set(Buffer.from(valueOmittedHeader), Buffer.from(String(bytes)));
      const { value: _omitted, ...withoutValue } = message;
      await send(withoutValue);
      this.#options.onValueOmitted?.(topic);
    }
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

/** True when the broker refused a produce as too large (MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE), however wrapped. */
export function isTooLarge(error: unknown, depth = 0): boolean {
  if (depth > 5 || typeof error !== 'object' || error === null) return false;
  const e = error as { apiId?: unknown; errors?: unknown; cause?: unknown };
  if (e.apiId === 'MESSAGE_TOO_LARGE' || e.apiId === 'RECORD_LIST_TOO_LARGE') return true;
  if (Array.isArray(e.errors) && e.errors.some((inner: unknown) => isTooLarge(inner, depth + 1))) return true;
  return isTooLarge(e.cause, depth + 1);
}

export interface DeadLetterTopicsCheck {
  brokers: readonly string[];
  connection?: KafkaConnection;
  clientId: string;
  /** The configured routes' dead-letter topics. */
  topics: readonly string[];
  maxMessageBytes: number;
}

/**
 * Refuses (INSERTER_DLQ_TOPIC_TOO_SMALL) when an existing dead-letter topic accepts less than
 * `maxMessageBytes` plus the headroom; topics that do not exist yet are created with the right size.
 */
export async function checkDeadLetterTopics(options: DeadLetterTopicsCheck): Promise<void> {
  const needed = deadLetterTopicMaxBytes(options.maxMessageBytes);
  const admin = new Admin({ clientId: `${options.clientId}-dlq-check`, ...kafkaClientOptions(options) });
  handleClientErrors(admin);
  try {
    const existing = new Set(await admin.listTopics());
    const topics = [...new Set(options.topics)].filter((t) => existing.has(t));
    if (topics.length === 0) return;
    const described = await admin.describeConfigs({
      resources: topics.map((t) => ({ resourceType: ConfigResourceTypes.TOPIC, resourceName: t, configurationKeys: ['max.message.bytes'] })),
    });
    const problems: string[] = [];
    for (const topic of topics) {
      const config = described.find((d) => d.resourceName === topic)?.configs.find((c) => c.name === 'max.message.bytes');
      const accepted = Number(config?.value ?? NaN);
      if (!Number.isFinite(accepted) || accepted >= needed) continue;
      const setting =
        config?.configSource === ConfigSources.DYNAMIC_TOPIC_CONFIG
          ? `its max.message.bytes is ${accepted}`
          : `it has no max.message.bytes of its own and the broker's message.max.bytes is ${accepted}`;
      problems.push(
        `dead-letter topic ${topic} accepts less than a dead letter may need: ${setting}; set the topic's max.message.bytes to at least ${needed} (maxMessageBytes ${options.maxMessageBytes} + ${deadLetterHeadroomBytes} for headers)`,
      );
    }
    if (problems.length > 0) throw new InserterError('INSERTER_DLQ_TOPIC_TOO_SMALL', problems.join('; '));
  } finally {
    await admin.close();
  }
}
