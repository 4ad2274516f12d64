// Owns the Pulsar side of dead letters: the transport the dead-letter writer (deadletter/writer.ts)
// sends through — one WebSocket producer per dead-letter topic, opened lazily, a check through the
// admin API that the topic exists (creating it, with a retention, when `createTopics` is set), and
// what a refusal means (too large, unknown topic) — and the mapping of a dead letter onto a Pulsar
// message and back. Pulsar's key and properties are strings and properties are a map (read back in
// no particular order), so bytes that are not UTF-8, and names the mapping needs, are escaped
// reversibly (docs/design/pulsar.md, "Bus adapters"):
//
// - the value is the payload; the key is the message key; each header is a property;
// - a value (key, property value) that is not valid UTF-8, or starts with `b64:`, is `b64:` + base64;
// - an original header's name that is not valid UTF-8, starts with `b64:`, is one of the writer's
//   `x-inserter-*` names, or repeats an earlier name, is `b64:<index>:` + base64 of the name;
// - the writer's `x-inserter-*` headers are plain ASCII properties.
import { isUtf8 } from 'node:buffer';
import type { Secret } from '../config/secret.ts';
import { errorMessage } from '../errors/inserter-error.ts';
import type { RawDeadLetter } from '../deadletter/record.ts';
import { deadLetterHeader } from '../deadletter/types.ts';
import { DeadLetterPublisher, DeadLetterWriteError, defaultDeadLetterWriteTimeoutMs, type DeadLetterHooks, type DeadLetterMessage, type DeadLetterTransport } from '../deadletter/writer.ts';
import type { BackoffPolicy } from '../sink/retry.ts';
import type { Logger } from '../telemetry/logger.ts';
import { PulsarAdmin, PulsarRequestError } from './pulsar-admin.ts';
import { decodeMessageId, offsetOf } from './pulsar-message-id.ts';
import { PulsarProducer, PulsarPublishError, type OutgoingMessage } from './pulsar-producer.ts';

export interface PulsarDeadLetterWriterOptions {
  /** The broker's web service, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  readonly tenant: string;
  readonly namespace: string;
  /** A JWT for the broker's token authentication; sent in a header, never logged. */
  readonly token?: Secret;
  /** Creates a missing dead-letter topic (non-partitioned); otherwise a missing one is INSERTER_DLQ_TOPIC_MISSING. */
  readonly createTopics: boolean;
  /** Retention of a topic created here: unlimited time (never deleted as inactive) and this size. Default 10,240 MB. */
  readonly retentionSizeInMB?: number;
  /** Frames above this are refused as too large before sending (the broker's webSocketMaxTextFrameSize). Default 1 MiB. */
  readonly maxFrameBytes?: number;
  readonly retry: BackoffPolicy;
  /** How long one write attempt waits for the broker (default 30 s). */
  readonly writeTimeoutMs?: number;
  readonly logger: Logger;
  /** Failed attempts, dead letters waiting, parts omitted (metrics). */
  readonly hooks?: DeadLetterHooks;
  readonly keepaliveMs?: number;
  /** How long a topic found to exist is trusted before the admin API is asked again. Default 3 s. */
  readonly topicCheckMs?: number;
}

const DEFAULT_TOPIC_CHECK_MS = 3_000;
/** After the write timeout: the publisher's own bound fires first and reports the timeout. */
const RECEIPT_MARGIN_MS = 1_000;

/** The dead-letter writer over Pulsar. */
export class PulsarDeadLetterWriter extends DeadLetterPublisher {
  constructor(options: PulsarDeadLetterWriterOptions) {
    super(new PulsarDeadLetterTransport(options), {
      retry: options.retry,
      logger: options.logger,
      ...(options.writeTimeoutMs === undefined ? {} : { writeTimeoutMs: options.writeTimeoutMs }),
      ...(options.hooks === undefined ? {} : { hooks: options.hooks }),
    });
  }
}

class PulsarDeadLetterTransport implements DeadLetterTransport {
  readonly #options: PulsarDeadLetterWriterOptions;
  readonly #admin: PulsarAdmin;
  /** One producer per dead-letter topic, opened on first use and again after its connection ended. */
  readonly #open = new Map<string, PulsarProducer>();
  readonly #opening = new Map<string, Promise<PulsarProducer>>();
  /** Ends admin calls and producer opens still running at close(). */
  readonly #closer = new AbortController();
  /** When each topic was last found to exist (and, with `createTopics`, retained); checks in flight. */
  readonly #checked = new Map<string, number>();
  readonly #checking = new Map<string, Promise<void>>();
  /** The frame limit: configured, or learned from the broker closing a connection over a larger frame. */
  #maxFrameBytes: number | undefined;

  constructor(options: PulsarDeadLetterWriterOptions) {
    this.#options = options;
    this.#admin = new PulsarAdmin(options);
    this.#maxFrameBytes = options.maxFrameBytes;
  }

  /**
   * Asks the admin API whether the topic exists, at most every `topicCheckMs` per topic (an open
   * producer proves nothing: the WebSocket service's client reconnects it to a deleted topic, which
   * the namespace's automatic topic creation creates again — without retention, even without
   * `createTopics`). A missing topic is INSERTER_DLQ_TOPIC_MISSING without `createTopics` (and its
   * producer is closed); with it, it is created. With `createTopics`, a non-partitioned topic without a
   * retention of its own gets one before anything is written to it: without one, Pulsar deletes the
   * messages no subscription needs, and the topic itself once idle.
   */
  async prepare(topic: string): Promise<void> {
    const checkedAt = this.#checked.get(topic);
    if (checkedAt !== undefined && Date.now() - checkedAt < (this.#options.topicCheckMs ?? DEFAULT_TOPIC_CHECK_MS)) return;
    let checking = this.#checking.get(topic);
    if (checking === undefined) {
      const started = Date.now();
      checking = this.#check(topic)
        .then(() => {
          this.#checked.set(topic, started);
        })
        .finally(() => this.#checking.delete(topic));
      this.#checking.set(topic, checking);
    }
    await checking;
  }

  async #check(topic: string): Promise<void> {
    const signal = this.#closer.signal;
    let kind: 'topic' | 'partitioned' | 'created' | undefined = await this.#exists(topic);
    if (kind === undefined) {
      // A producer left open would create the topic again (its client reconnects): closed.
      await this.#drop(topic);
      if (!this.#options.createTopics) throw missingTopic(topic);
      try {
        await this.#admin.createTopic(topic, signal);
      } catch (error) {
        throw missingTopic(topic, error);
      }
      kind = 'created';
      this.#options.logger.info({ topic }, 'dead-letter topic created');
    }
    // A partitioned topic is not created here (nor by automatic creation, by default): used as it is.
    if (!this.#options.createTopics || kind === 'partitioned') return;
    try {
      // Created here: it has none yet.
      const current = kind === 'created' ? undefined : await this.#admin.retention(topic, signal);
      if (current === undefined) await this.#admin.setRetention(topic, { retentionTimeInMinutes: -1, retentionSizeInMB: this.#options.retentionSizeInMB ?? 10_240 }, signal);
    } catch (error) {
      throw new DeadLetterWriteError(
        'INSERTER_DLQ_FAILED',
        topic,
        `the retention of the dead-letter topic ${topic} could not be checked or set (nothing is written to it without one): ${errorMessage(error)}`,
        {
          cause: error,
        },
      );
    }
  }

  /** Whether the topic exists: non-partitioned (`topic`), partitioned (the non-partitioned stats of a partitioned topic are a 404), or not (undefined). */
  async #exists(topic: string): Promise<'topic' | 'partitioned' | undefined> {
    const signal = this.#closer.signal;
    try {
      await this.#admin.stats(topic, signal);
      return 'topic';
    } catch (error) {
      if (!(error instanceof PulsarRequestError) || error.status !== 404) throw error;
    }
    return (await this.#admin.partitions(topic, signal)) > 0 ? 'partitioned' : undefined;
  }

  /** Closes the topic's producer, if open. */
  async #drop(topic: string): Promise<void> {
    const producer = this.#open.get(topic);
    if (producer === undefined) return;
    this.#open.delete(topic);
    await producer.close().catch(() => undefined);
  }

  /**
   * Sends through the topic's producer. A send without a receipt a little after the write timeout
   * (the publisher reports the timeout first) closes the connection (pulsar-producer.ts: it is
   * broken), and fails: the publisher then writes the dead letter again through a new producer.
   */
  async send(message: DeadLetterMessage): Promise<void> {
    const producer = await this.#producer(message.topic);
    const ms = (this.#options.writeTimeoutMs ?? defaultDeadLetterWriteTimeoutMs) + RECEIPT_MARGIN_MS;
    // A timer of its own rather than AbortSignal.timeout: the signal is the producer's only reference to it.
    const receipt = new AbortController();
    const timer = setTimeout(() => receipt.abort(new DOMException(`no receipt within ${ms} ms`, 'TimeoutError')), ms);
    try {
      await producer.send(toPulsarMessage(message), receipt.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  #producer(topic: string): Promise<PulsarProducer> {
    const open = this.#open.get(topic);
    if (open?.isOpen === true) return Promise.resolve(open);
    let opening = this.#opening.get(topic);
    if (opening === undefined) {
      opening = this.#openProducer(topic).finally(() => this.#opening.delete(topic));
      this.#opening.set(topic, opening);
    }
    return opening;
  }

  async #openProducer(topic: string): Promise<PulsarProducer> {
    const signal = this.#closer.signal;
    let producer: PulsarProducer;
    try {
      producer = await PulsarProducer.open(
        {
          admin: this.#admin,
          url: this.#options.url,
          topic,
          what: `dead-letter producer of ${topic}`,
          ...(this.#maxFrameBytes === undefined ? {} : { maxFrameBytes: this.#maxFrameBytes }),
          ...(this.#options.keepaliveMs === undefined ? {} : { keepaliveMs: this.#options.keepaliveMs }),
          onFrameLimit: (bytes) => {
            this.#maxFrameBytes = bytes;
          },
        },
        signal,
      );
    } catch (error) {
      // The WebSocket API does not say why a producer was refused: a missing topic is the one case that matters.
      if (!signal.aborted && !(await this.#exists(topic).catch(() => true))) throw missingTopic(topic, error);
      throw error;
    }
    if (signal.aborted) {
      await producer.close();
      throw new PulsarPublishError(`dead-letter producer of ${topic}: the writer is closed`, { sent: false });
    }
    this.#open.set(topic, producer);
    return producer;
  }

  isTooLarge(error: unknown): boolean {
    return error instanceof PulsarPublishError && error.tooLarge;
  }

  isUnknownTopic(error: unknown): boolean {
    if (error instanceof DeadLetterWriteError) return error.code === 'INSERTER_DLQ_TOPIC_MISSING';
    return error instanceof PulsarPublishError && /TopicDoesNotExist|Topic ?not ?found|TopicTerminated/i.test(error.message);
  }

  async close(): Promise<void> {
    this.#closer.abort();
    await Promise.allSettled([...this.#opening.values()]);
    const producers = [...this.#open.values()];
    this.#open.clear();
    await Promise.allSettled(producers.map((p) => p.close()));
  }
}

function missingTopic(topic: string, cause?: unknown): DeadLetterWriteError {
  return new DeadLetterWriteError(
    'INSERTER_DLQ_TOPIC_MISSING',
    topic,
    `the dead-letter topic ${topic} does not exist and is not created (pulsar.createDeadLetterTopics is false, or the broker refused to create it): create it`,
    cause === undefined ? {} : { cause },
  );
}

/** Marks a string that holds base64 (a value, or an escaped header name). */
export const ESCAPE = 'b64:';
const writerNames: ReadonlySet<string> = new Set(Object.values(deadLetterHeader));
/** The writer's headers in the order a dead letter carries them (error class first: parseDeadLetter splits there). */
const writerOrder: readonly string[] = Object.values(deadLetterHeader);

function plainOrEscaped(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  return isUtf8(bytes) && !text.startsWith(ESCAPE) ? text : ESCAPE + bytes.toString('base64');
}

function unescape(text: string): Buffer {
  return text.startsWith(ESCAPE) ? Buffer.from(text.slice(ESCAPE.length), 'base64') : Buffer.from(text, 'utf8');
}

/** The Pulsar message of a dead letter: the value as payload, the key as key, the headers as properties (escaped where needed). */
export function toPulsarMessage(message: DeadLetterMessage): OutgoingMessage {
  const headers = [...message.headers];
  // The writer's headers come last, from its error class on (deadletter/writer.ts deadLetterMessage).
  const names = headers.map(([name]) => name.toString('utf8'));
  const classAt = names.lastIndexOf(deadLetterHeader.class);
  const split = classAt >= 0 && names.slice(classAt).every((n) => writerNames.has(n)) ? classAt : headers.length;
  // No prototype: a header named __proto__ is a property like any other.
  const properties = Object.create(null) as Record<string, string>;
  headers.forEach(([name, value], i) => {
    let property = name.toString('utf8');
    const original = i < split;
    const escape = !isUtf8(name) || property.startsWith(ESCAPE) || Object.hasOwn(properties, property) || (original && writerNames.has(property));
    if (escape) property = `${ESCAPE}${i}:${name.toString('base64')}`;
    properties[property] = plainOrEscaped(value);
  });
  return {
    payload: message.value ?? Buffer.alloc(0),
    ...(message.key === undefined ? {} : { key: plainOrEscaped(message.key) }),
    properties,
  };
}

/** A message of a dead-letter topic, as the WebSocket reader and consumer deliver it. */
export interface PulsarDeadLetterFrame {
  readonly messageId: string;
  readonly payload?: string;
  readonly properties?: Readonly<Record<string, string>>;
  readonly publishTime?: string;
  readonly key?: string;
}

/**
 * A dead letter as read from a Pulsar dead-letter topic, for parseDeadLetter: the original headers
 * first, then the writer's in their usual order. An absent value reads back as an empty one (a
 * WebSocket producer cannot publish a null value); the original headers' order is not kept.
 */
export function fromPulsarMessage(topic: string, frame: PulsarDeadLetterFrame): RawDeadLetter {
  const id = decodeMessageId(frame.messageId);
  const originals: Array<{ at: number; header: readonly [Buffer, Buffer] }> = [];
  const writer = new Map<string, Buffer>();
  for (const [property, text] of Object.entries(frame.properties ?? {})) {
    const value = unescape(text);
    const escaped = /^b64:(\d+):([A-Za-z0-9+/=]*)$/.exec(property);
    if (escaped !== null) originals.push({ at: Number(escaped[1]), header: [Buffer.from(escaped[2] as string, 'base64'), value] });
    else if (writerNames.has(property)) writer.set(property, value);
    else originals.push({ at: -1, header: [Buffer.from(property, 'utf8'), value] });
  }
  originals.sort((a, b) => a.at - b.at);
  const headers = [...originals.map((o) => o.header), ...writerOrder.filter((n) => writer.has(n)).map((n) => [Buffer.from(n), writer.get(n) as Buffer] as const)];
  const time = Date.parse(frame.publishTime ?? '');
  return {
    topic,
    partition: Math.max(0, id.partition),
    offset: offsetOf(id),
    timestamp: BigInt(Number.isFinite(time) ? time : 0),
    key: frame.key === undefined ? undefined : unescape(frame.key),
    value: Buffer.from(frame.payload ?? '', 'base64'),
    headers,
  };
}
