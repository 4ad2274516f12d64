// Owns the Kafka side of dead letters: the transport the dead-letter writer (deadletter/writer.ts)
// sends through — an idempotent producer, a bounded check that the topic exists (creating it when
// `kafka.createDeadLetterTopics` > 0, with `max.message.bytes` for `maxMessageBytes` plus headers),
// and what a refusal means (too large, unknown topic) — and the start-up check, bounded in time,
// that existing dead-letter topics accept `maxMessageBytes` plus headers.
import { Admin, ConfigResourceTypes, ConfigSources, Producer } from '@platformatic/kafka';
import { InserterError, errorMessage } from '../errors/inserter-error.ts';
import { DeadLetterPublisher, missingTopic, type DeadLetterHooks, type DeadLetterMessage, type DeadLetterTransport } from '../deadletter/writer.ts';
import { omittedHeader } from '../deadletter/types.ts';
import type { BackoffPolicy } from '../sink/retry.ts';
import type { Logger } from '../telemetry/logger.ts';
import { handleClientErrors } from './kafka-client-errors.ts';
import { kafkaClientOptions, type KafkaConnection } from './kafka-connection.ts';
import { untilAborted } from './until-aborted.ts';

export interface DeadLetterWriterOptions {
  brokers: readonly string[];
  /** TLS and SASL (source/kafka-connection.ts); none: plaintext. */
  connection?: KafkaConnection;
  clientId: string;
  createPartitions: number;
  /** The largest value a record may have (config `maxMessageBytes`): topics created here take it with headers. */
  maxMessageBytes?: number;
  retry: BackoffPolicy;
  /** How long one write attempt waits for the broker (default 30 s); a missing topic is told at once. */
  writeTimeoutMs?: number;
  logger: Logger;
  /** Called each time a dead letter is written without its value (the broker refused it as too large). */
  onValueOmitted?: (topic: string) => void;
  /** Failed attempts, dead letters waiting, parts omitted (metrics). */
  hooks?: DeadLetterHooks;
}

/** Header of a dead letter written without its value: the value's size in bytes; the value is left in the source topic. */
export const valueOmittedHeader = omittedHeader.value;

/** Room for a dead letter's key, its original headers, the `x-inserter-*` headers and the batch framing. */
export const deadLetterHeadroomBytes = 256 * 1024;

/** `max.message.bytes` of a dead-letter topic created for records of up to `maxMessageBytes`. */
export function deadLetterTopicMaxBytes(maxMessageBytes: number): number {
  return maxMessageBytes + deadLetterHeadroomBytes;
}

/** The dead-letter writer over Kafka. */
export class DeadLetterWriter extends DeadLetterPublisher {
  constructor(options: DeadLetterWriterOptions) {
    const hooks = options.hooks ?? {};
    const onValueOmitted = options.onValueOmitted;
    super(new KafkaDeadLetterTransport(options), {
      retry: options.retry,
      logger: options.logger,
      ...(options.writeTimeoutMs === undefined ? {} : { writeTimeoutMs: options.writeTimeoutMs }),
      hooks: {
        ...hooks,
        onOmitted: (topic, what) => {
          onValueOmitted?.(topic); // the value is left out either way
          hooks.onOmitted?.(topic, what);
        },
      },
    });
  }
}

class KafkaDeadLetterTransport implements DeadLetterTransport {
  readonly #producer: Producer<Buffer, Buffer, Buffer, Buffer>;
  readonly #admin: Admin;
  readonly #options: DeadLetterWriterOptions;

  constructor(options: DeadLetterWriterOptions) {
    this.#options = options;
    // Idempotent: the client retries a send for ever (its own sequence numbers make that safe), so a
    // send to a topic that does not exist waits inside the client; prepare() tells that case first.
    this.#producer = new Producer({ clientId: `${options.clientId}-dlq`, ...kafkaClientOptions(options), idempotent: true, acks: -1, partitioner: keyPartitioner });
    this.#admin = new Admin({ clientId: `${options.clientId}-dlq-admin`, ...kafkaClientOptions(options) });
    handleClientErrors(this.#producer, (error) => options.logger.debug({ err: error }, 'dead-letter producer connection error'));
    handleClientErrors(this.#admin);
  }

  /** One metadata request, not retried (the client's metadata is cached for a few seconds). */
  async prepare(topic: string): Promise<void> {
    try {
      await this.#producer.metadata({ topics: [topic], retries: 0 });
      return;
    } catch (error) {
      if (!isUnknownTopic(error)) throw error;
      if (this.#options.createPartitions === 0) throw missingTopic(topic, error);
    }
    await this.#createTopic(topic);
  }

  async #createTopic(topic: string): Promise<void> {
    const configs = this.#options.maxMessageBytes === undefined ? [] : [{ name: 'max.message.bytes', value: String(deadLetterTopicMaxBytes(this.#options.maxMessageBytes)) }];
    try {
      await this.#admin.createTopics({ topics: [topic], partitions: this.#options.createPartitions, replicas: -1, configs });
      this.#options.logger.info({ topic, partitions: this.#options.createPartitions }, 'dead-letter topic created');
    } catch (error) {
      if (!/already exists/i.test(JSON.stringify((error as { errors?: unknown }).errors ?? '') + String(error))) throw missingTopic(topic, error);
    }
  }

  async send(message: DeadLetterMessage): Promise<void> {
    await this.#producer.send({ messages: [message] });
  }

  isTooLarge(error: unknown): boolean {
    return isTooLarge(error);
  }

  isUnknownTopic(error: unknown): boolean {
    return isUnknownTopic(error);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#producer.close(), this.#admin.close()]);
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

/**
 * The dead letter's partition from its key (Kafka's murmur2, in 32-bit arithmetic; the client's
 * own runs in BigInt that grows with every 4 bytes, so a 1 MiB key took minutes of CPU), else 0.
 * The client takes it modulo the topic's partition count.
 */
export function keyPartitioner(_message: unknown, key: Buffer | undefined): number {
  return key === undefined || key.length === 0 ? 0 : murmur2(key) & 0x7fffffff;
}

export function murmur2(data: Buffer): number {
  const m = 0x5bd1e995;
  const length = data.length;
  let h = 0x9747b28c ^ length;
  const tail = length & ~3;
  for (let i = 0; i < tail; i += 4) {
    let k = data.readInt32LE(i);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const rest = length & 3;
  if (rest === 3) h ^= (data[tail + 2] ?? 0) << 16;
  if (rest >= 2) h ^= (data[tail + 1] ?? 0) << 8;
  if (rest >= 1) h = Math.imul(h ^ (data[tail] ?? 0), m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** True when the broker does not know the topic (UNKNOWN_TOPIC_OR_PARTITION, the client's "Unknown topic"), however wrapped. */
export function isUnknownTopic(error: unknown, depth = 0): boolean {
  if (depth > 5 || typeof error !== 'object' || error === null) return false;
  const e = error as { apiId?: unknown; apiCode?: unknown; message?: unknown; errors?: unknown; cause?: unknown };
  if (e.apiId === 'UNKNOWN_TOPIC_OR_PARTITION' || e.apiCode === 3) return true;
  if (typeof e.message === 'string' && e.message.startsWith('Unknown topic ')) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner: unknown) => isUnknownTopic(inner, depth + 1))) return true;
  return isUnknownTopic(e.cause, depth + 1);
}

export interface DeadLetterTopicsCheck {
  brokers: readonly string[];
  connection?: KafkaConnection;
  clientId: string;
  /** The configured routes' dead-letter topics. */
  topics: readonly string[];
  maxMessageBytes: number;
  /** How long the check may take, retries included (default 30 s). */
  timeoutMs?: number;
  /** Ends the check early (a signal while starting). */
  signal?: AbortSignal;
}

export const defaultDeadLetterCheckTimeoutMs = 30_000;

/**
 * Refuses (INSERTER_DLQ_TOPIC_TOO_SMALL) when an existing dead-letter topic accepts less than
 * `maxMessageBytes` plus the headroom; topics that do not exist yet are created with the right size.
 * Bounded: without an answer within `timeoutMs` it fails with INSERTER_DLQ_TOPIC_CHECK_FAILED,
 * naming the brokers and the topics.
 */
export async function checkDeadLetterTopics(options: DeadLetterTopicsCheck): Promise<void> {
  const timeoutMs = options.timeoutMs ?? defaultDeadLetterCheckTimeoutMs;
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = options.signal === undefined ? deadline : AbortSignal.any([deadline, options.signal]);
  const perRequestMs = Math.max(1_000, Math.min(10_000, Math.floor(timeoutMs / 2)));
  const admin = new Admin({ clientId: `${options.clientId}-dlq-check`, ...kafkaClientOptions(options), retries: 0, connectTimeout: perRequestMs, timeout: perRequestMs });
  handleClientErrors(admin);
  const topics = [...new Set(options.topics)];
  let last: unknown;
  try {
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        await untilAborted(describeTooSmall(admin, topics, options.maxMessageBytes), signal, 'checking the dead-letter topics');
        return;
      } catch (error) {
        if (error instanceof InserterError && error.code === 'INSERTER_DLQ_TOPIC_TOO_SMALL') throw error;
        if (signal.aborted) break;
        last = error;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, Math.min(2_000, 250 * attempt));
          function done(): void {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            resolve();
          }
          signal.addEventListener('abort', done, { once: true });
        });
      }
    }
    const why = deadline.aborted ? `no answer within ${timeoutMs} ms` : 'start-up was interrupted';
    throw new InserterError(
      'INSERTER_DLQ_TOPIC_CHECK_FAILED',
      `the dead-letter topics (${topics.join(', ')}) could not be checked on the brokers ${options.brokers.join(',')}: ${why}${last === undefined ? '' : ` (last error: ${errorMessage(last)})`}; is Kafka reachable, and may this client describe the topics' configuration (DescribeConfigs)?`,
      { cause: last, details: { brokers: options.brokers.join(','), topics: topics.join(',') } },
    );
  } finally {
    await admin.close();
  }
}

async function describeTooSmall(admin: Admin, allTopics: readonly string[], maxMessageBytes: number): Promise<void> {
  const needed = deadLetterTopicMaxBytes(maxMessageBytes);
  const existing = new Set(await admin.listTopics());
  const topics = allTopics.filter((t) => existing.has(t));
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
      config?.configSource === ConfigSources.DYNAMIC_TOPIC_CONFIG ? `its max.message.bytes is ${accepted}` : `it has no max.message.bytes of its own and the broker's message.max.bytes is ${accepted}`;
    problems.push(
      `dead-letter topic ${topic} accepts less than a dead letter may need: ${setting}; set the topic's max.message.bytes to at least ${needed} (maxMessageBytes ${maxMessageBytes} + ${deadLetterHeadroomBytes} for headers)`,
    );
  }
  if (problems.length > 0) throw new InserterError('INSERTER_DLQ_TOPIC_TOO_SMALL', problems.join('; '));
}
