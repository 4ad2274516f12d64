// Owns writing one dead letter until the bus acknowledges it, whatever the bus: the message (the
// original key, value and headers plus the writer's `x-inserter-*` headers), each attempt bounded in
// time, failures classified (a missing topic, no acknowledgement in time, refused as too large) and
// reported, retried with backoff until written or the signal aborts. A write that timed out is not
// sent again while it may still land: the next attempt waits on it again. A dead letter refused as
// too large is written without its value, then also without its key and original headers; one refused
// even then is a permanent error, retried only every `capMs` (a partition's commits wait behind it).
// The transport (source/kafka-dead-letter-writer.ts) speaks the bus.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ErrorCode } from '../errors/codes.ts';
import { AbortedError, errorMessage, InserterError, type InserterErrorOptions } from '../errors/inserter-error.ts';
import { backoffDelay, type BackoffPolicy } from '../sink/retry.ts';
import type { SourceRecord } from '../source/types.ts';
import type { Logger } from '../telemetry/logger.ts';
import { deadLetterHeader, omittedHeader, type DeadLetterReason, type DeadLetterSink } from './types.ts';

export interface DeadLetterMessage {
  readonly topic: string;
  readonly key?: Buffer;
  readonly value?: Buffer;
  readonly headers: Map<Buffer, Buffer>;
}

/** What the writer needs of a bus. */
export interface DeadLetterTransport {
  /** Makes sure `topic` exists (creating it when configured); rejects with a DeadLetterWriteError INSERTER_DLQ_TOPIC_MISSING when it does not. */
  prepare(topic: string): Promise<void>;
  /** Resolves once the bus acknowledged the message durably. */
  send(message: DeadLetterMessage): Promise<void>;
  /** The bus refused the message as too large. */
  isTooLarge(error: unknown): boolean;
  /** The topic does not exist (the send named a topic the bus does not know). */
  isUnknownTopic(error: unknown): boolean;
  close(): Promise<void>;
}

export type DeadLetterWriteCode = Extract<ErrorCode, 'INSERTER_DLQ_TOPIC_MISSING' | 'INSERTER_DLQ_WRITE_TIMEOUT' | 'INSERTER_DLQ_REFUSED' | 'INSERTER_DLQ_FAILED'>;

/** A dead-letter write attempt that did not go through; `topic` is the dead-letter topic. Retried. */
export class DeadLetterWriteError extends InserterError {
  readonly topic: string;
  /** `code`, narrowed. */
  readonly kind: DeadLetterWriteCode;
  constructor(code: DeadLetterWriteCode, topic: string, message: string, options: InserterErrorOptions = {}) {
    super(code, message, { retryable: true, ...options, details: { topic, ...options.details } });
    this.name = 'DeadLetterWriteError';
    this.topic = topic;
    this.kind = code;
  }
}

export interface DeadLetterHooks {
  /** Each failed attempt, classified. */
  onFailure?: (topic: string, code: DeadLetterWriteCode) => void;
  /** +1 when a write first fails, -1 when it is written or given up (shutdown): the dead letters waiting right now. */
  onStuck?: (topic: string, delta: 1 | -1) => void;
  /** A dead letter written without its value (`value`), or also without its key and original headers (`key_headers`). */
  onOmitted?: (topic: string, what: 'value' | 'key_headers') => void;
}

export interface DeadLetterWriterCore {
  retry: BackoffPolicy;
  /** How long one attempt waits for the acknowledgement (default 30 s). */
  writeTimeoutMs?: number;
  logger: Logger;
  hooks?: DeadLetterHooks;
}

export const defaultDeadLetterWriteTimeoutMs = 30_000;
const messageHeaderLimit = 2_000;

/** Writes dead letters through a transport; resolves only once one is durable, rejects only when the signal aborts. */
export class DeadLetterPublisher implements DeadLetterSink {
  readonly #transport: DeadLetterTransport;
  readonly #core: DeadLetterWriterCore;
  #closing: Promise<void> | undefined;

  constructor(transport: DeadLetterTransport, core: DeadLetterWriterCore) {
    this.#transport = transport;
    this.#core = core;
  }

  async write(topic: string, record: SourceRecord, reason: DeadLetterReason, signal: AbortSignal): Promise<void> {
    const full = deadLetterMessage(topic, record, reason);
    let pending: Promise<void> | undefined; // a send that timed out and may still land
    let stuck = false;
    try {
      for (let attempt = 1; ; attempt++) {
        if (signal.aborted) throw new AbortedError('dead-letter write aborted', { cause: signal.reason });
        let failure: DeadLetterWriteError;
        try {
          if (pending === undefined) {
            await this.#bounded(this.#transport.prepare(topic), topic, signal, () => `the dead-letter topic ${topic} could not be checked within ${this.#timeoutMs} ms`);
            pending = this.#sendSmallest(full, record, reason, signal);
          }
          await this.#bounded(pending, topic, signal, () => `the dead letter of ${where(record)} was not acknowledged by the broker within ${this.#timeoutMs} ms (topic ${topic})`);
          return;
        } catch (error) {
          if (signal.aborted) throw new AbortedError('dead-letter write aborted', { cause: error });
          failure = this.#classify(error, topic, record);
          if (failure.code !== 'INSERTER_DLQ_WRITE_TIMEOUT')
            pending = undefined; // settled: a new send is safe
          else if (pending !== undefined) failure = (await this.#whyNoAnswer(topic, signal)) ?? failure; // still in flight: the next attempt joins it
        }
        if (!stuck) {
          stuck = true;
          this.#core.hooks?.onStuck?.(topic, 1);
        }
        this.#core.hooks?.onFailure?.(topic, failure.kind);
        if (this.#core.retry.maxAttempts !== undefined && attempt >= this.#core.retry.maxAttempts) throw failure;
        const permanent = failure.code === 'INSERTER_DLQ_REFUSED';
        const delay = permanent ? this.#core.retry.capMs : backoffDelay(this.#core.retry, attempt);
        const context = { topic, code: failure.code, attempt, retryInMs: delay, originalTopic: record.topic, partition: record.partition, offset: String(record.offset) };
        if (permanent || attempt === 1) this.#core.logger.error({ ...context, err: failure }, `dead-letter write failed; the record stays unresolved and is retried: ${failure.message}`);
        else this.#core.logger.warn({ ...context, err: failure }, 'dead-letter write failed; retrying');
        try {
          await sleep(delay, undefined, { signal });
        } catch {
          throw new AbortedError('dead-letter write aborted', { cause: failure });
        }
      }
    } finally {
      if (stuck) this.#core.hooks?.onStuck?.(topic, -1);
    }
  }

  /** After a send timed out: a missing topic (deleted while running) is named as such. */
  async #whyNoAnswer(topic: string, signal: AbortSignal): Promise<DeadLetterWriteError | undefined> {
    try {
      await this.#bounded(this.#transport.prepare(topic), topic, signal, () => `the dead-letter topic ${topic} could not be checked within ${this.#timeoutMs} ms`);
      return undefined;
    } catch (error) {
      return error instanceof DeadLetterWriteError && error.code === 'INSERTER_DLQ_TOPIC_MISSING' ? error : undefined;
    }
  }

  get #timeoutMs(): number {
    return this.#core.writeTimeoutMs ?? defaultDeadLetterWriteTimeoutMs;
  }

  /** Sends the whole dead letter; refused as too large, without its value; then also without its key and original headers. */
  async #sendSmallest(full: DeadLetterMessage, record: SourceRecord, reason: DeadLetterReason, signal: AbortSignal): Promise<void> {
    const transport = this.#transport;
    try {
      await transport.send(full);
      return;
    } catch (error) {
      if (!transport.isTooLarge(error) || signal.aborted) throw error;
      const bytes = record.value?.length ?? 0;
      this.#core.logger.error(
        { topic: full.topic, originalTopic: record.topic, partition: record.partition, offset: String(record.offset), valueBytes: bytes, err: error },
        'dead letter refused as too large by the broker: written without its value, which is left in the source topic',
      );
    }
    const headers = new Map(full.headers);
    headers.set(Buffer.from(omittedHeader.value), Buffer.from(String(record.value?.length ?? 0)));
    const { value: _value, ...withoutValue } = full;
    try {
      await transport.send({ ...withoutValue, headers });
      this.#core.hooks?.onOmitted?.(full.topic, 'value');
      return;
    } catch (error) {
      if (!transport.isTooLarge(error) || signal.aborted) throw error;
    }
    // Even the key and the original headers are too much: keep only the writer's headers.
    const bare = deadLetterMessage(full.topic, { ...record, key: undefined, value: undefined, headers: [] }, reason).headers;
    bare.set(Buffer.from(omittedHeader.value), Buffer.from(String(record.value?.length ?? 0)));
    bare.set(Buffer.from(omittedHeader.keyHeaders), Buffer.from(`key ${record.key?.length ?? 0} bytes, ${record.headers.length} headers ${headersBytes(record)} bytes`));
    this.#core.logger.error(
      { topic: full.topic, originalTopic: record.topic, partition: record.partition, offset: String(record.offset), keyBytes: record.key?.length ?? 0, headers: record.headers.length },
      'dead letter still too large without its value: written without its key and original headers too, which are left in the source topic',
    );
    await transport.send({ topic: full.topic, headers: bare });
    this.#core.hooks?.onOmitted?.(full.topic, 'key_headers');
  }

  /** `operation`, or a DeadLetterWriteError INSERTER_DLQ_WRITE_TIMEOUT after the timeout; the operation itself goes on. */
  #bounded(operation: Promise<void>, topic: string, signal: AbortSignal, timeoutMessage: () => string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => finish(() => reject(new AbortedError('dead-letter write aborted', { cause: signal.reason })));
      const timer = setTimeout(() => finish(() => reject(new DeadLetterWriteError('INSERTER_DLQ_WRITE_TIMEOUT', topic, timeoutMessage()))), this.#timeoutMs);
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        settle();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      operation.then(
        () => finish(resolve),
        (error: unknown) => finish(() => reject(error instanceof Error ? error : new Error(String(error)))),
      );
    });
  }

  #classify(error: unknown, topic: string, record: SourceRecord): DeadLetterWriteError {
    if (error instanceof DeadLetterWriteError) return error;
    if (this.#transport.isUnknownTopic(error)) return missingTopic(topic, error);
    if (this.#transport.isTooLarge(error))
      return new DeadLetterWriteError(
        'INSERTER_DLQ_REFUSED',
        topic,
        `the dead-letter topic ${topic} refuses the dead letter of ${where(record)} as too large even without its value, key and original headers: raise the topic's max.message.bytes; retried every retry.capMs`,
        { cause: error, retryable: false },
      );
    return new DeadLetterWriteError('INSERTER_DLQ_FAILED', topic, `the dead letter of ${where(record)} could not be written to ${topic}: ${errorMessage(error)}`, { cause: error });
  }

  close(): Promise<void> {
    this.#closing ??= this.#transport.close();
    return this.#closing;
  }
}

export function missingTopic(topic: string, cause?: unknown): DeadLetterWriteError {
  return new DeadLetterWriteError(
    'INSERTER_DLQ_TOPIC_MISSING',
    topic,
    `the dead-letter topic ${topic} does not exist and is not created (kafka.createDeadLetterTopics is 0, or the broker refused to create it): create it`,
    cause === undefined ? {} : { cause },
  );
}

function where(record: SourceRecord): string {
  return `${record.topic}/${record.partition}/${record.offset}`;
}

/** The dead letter: the original key, value and headers, then the writer's headers (error class first: dlq reads them back as one block). */
export function deadLetterMessage(topic: string, record: SourceRecord, reason: DeadLetterReason): DeadLetterMessage {
  const headers = new Map<Buffer, Buffer>();
  for (const [name, value] of record.headers) headers.set(name, value);
  const add = (name: string, value: string | number | bigint | undefined): void => {
    if (value !== undefined) headers.set(Buffer.from(name), Buffer.from(String(value)));
  };
  add(deadLetterHeader.class, reason.errorClass);
  add(deadLetterHeader.code, reason.code);
  add(deadLetterHeader.serverCode, reason.serverCode);
  add(deadLetterHeader.message, reason.message.slice(0, messageHeaderLimit));
  add(deadLetterHeader.route, reason.route);
  add(deadLetterHeader.destination, reason.destination);
  add(deadLetterHeader.table, reason.table);
  add(deadLetterHeader.team, reason.team);
  add(deadLetterHeader.attempts, reason.attempts ?? 1);
  add(deadLetterHeader.firstFailure, (reason.firstFailure ?? new Date()).toISOString());
  add(deadLetterHeader.lastFailure, new Date().toISOString());
  add(deadLetterHeader.topic, record.topic);
  add(deadLetterHeader.partition, record.partition);
  add(deadLetterHeader.offset, record.offset);
  add(deadLetterHeader.timestamp, record.timestamp);
  if (reason.mayHaveLanded === true) add(deadLetterHeader.mayHaveLanded, 'true');
  return { topic, headers, ...(record.key ? { key: record.key } : {}), ...(record.value ? { value: record.value } : {}) };
}

function headersBytes(record: SourceRecord): number {
  let n = 0;
  for (const [name, value] of record.headers) n += name.length + value.length;
  return n;
}
