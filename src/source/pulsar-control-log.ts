// Owns the control topic on Pulsar: one non-partitioned topic (`<subscription>.inserter-control` by
// default) that every replica reads from its beginning and then follows, and writes its heartbeats
// and pauses to (the pauses are shared by all replicas through it: control/pause-registry.ts). Each
// replica reads with a WebSocket reader from the earliest message: a reader's subscription is
// non-durable and gone when it closes, so nothing is left behind. Where "now" is comes from the admin
// API's last message id. Records are keyed messages; a tombstone is an empty payload with the
// property `tombstone=1` (a WebSocket producer cannot publish a null value). The topic keeps its
// records (retention: unlimited time, a size cap); it is not compacted — the WebSocket reader cannot
// read a compacted view — so a replica reads the whole history (docs/design/pulsar.md, "Bus adapters").
import { setTimeout as sleep } from 'node:timers/promises';
import type { Secret } from '../config/secret.ts';
import type { ControlLog, ControlRecord } from '../control/control-log.ts';
import { AbortedError, InserterError, errorMessage } from '../errors/inserter-error.ts';
import { backoffDelay, retry, type BackoffPolicy } from '../sink/retry.ts';
import type { Logger } from '../telemetry/logger.ts';
import { PulsarAdmin } from './pulsar-admin.ts';
import { decodeMessageId, offsetOf, PulsarMessageIdError } from './pulsar-message-id.ts';
import { PulsarProducer, PulsarPublishError } from './pulsar-producer.ts';
import { PulsarSocket } from './pulsar-socket.ts';

export interface PulsarControlLogOptions {
  /** The broker's web service, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  readonly tenant: string;
  readonly namespace: string;
  /** A JWT for the broker's token authentication; sent in a header, never logged. */
  readonly token?: Secret;
  /** The control topic (non-partitioned), e.g. `<subscription>.inserter-control`. */
  readonly topic: string;
  /** This replica, in the reader's name (the broker's stats). */
  readonly replicaId: string;
  readonly retry: BackoffPolicy;
  readonly logger: Logger;
  /** Retention of the control topic: unlimited time and this size. Default 1,024 MB. */
  readonly retentionSizeInMB?: number;
  /** A keepalive on the reader while the topic is quiet, answered by the broker: silenceMs stays below it. Default 5 s. */
  readonly keepaliveMs?: number;
  /** How long an append waits for the broker's receipt (then the producer's connection is taken as broken and closed). Default 15 s. */
  readonly writeTimeoutMs?: number;
}

export const TOMBSTONE_PROPERTY = 'tombstone';
/** The least silence after which a reader's connection is taken as closed. */
const MIN_SILENT_MS = 2_000;

interface ReaderFrame {
  readonly messageId: string;
  readonly payload?: string;
  readonly properties?: Readonly<Record<string, string>>;
  readonly publishTime?: string;
  readonly eventTime?: string;
  readonly key?: string;
}

export class PulsarControlLog implements ControlLog {
  readonly #options: PulsarControlLogOptions;
  readonly #admin: PulsarAdmin;
  readonly #stop = new AbortController();
  #open: PulsarProducer | undefined;
  #opening: Promise<PulsarProducer> | undefined;
  #reader: PulsarSocket | undefined;
  /** The last message delivered: its id (where a new reader starts, exclusively) and its offset. */
  #last: { id: string; offset: bigint } | undefined;
  #lastHeard = Date.now();
  #ready: Promise<void> | undefined;
  #followed = false;
  #following: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  /** Closes of readers given up as silent, still waiting out the close bound. */
  readonly #abandoned = new Set<Promise<void>>();

  constructor(options: PulsarControlLogOptions) {
    this.#options = options;
    this.#admin = new PulsarAdmin(options);
  }

  async follow(onRecord: (record: ControlRecord) => void, signal: AbortSignal): Promise<void> {
    if (this.#followed) throw new Error('PulsarControlLog.follow called twice');
    this.#followed = true;
    const both = AbortSignal.any([signal, this.#stop.signal]);
    const aborted = (cause?: unknown): InserterError => new InserterError('INSERTER_CONTROL_ABORTED', 'stopped before the control topic was read', { cause });
    if (both.aborted) throw aborted();
    let end: bigint | undefined;
    try {
      end = await retry(
        async () => {
          await this.#ensureTopic(both);
          return this.#end(both);
        },
        this.#options.retry,
        both,
        {
          // An id that does not fit an offset is refused loudly (pulsar-message-id.ts), not retried.
          isRetryable: (error) => !(error instanceof AbortedError || error instanceof PulsarMessageIdError),
          onRetry: (error, attempt) => this.#options.logger.warn({ err: error, attempt, topic: this.#options.topic }, 'control topic not readable yet; retrying'),
        },
      );
    } catch (error) {
      throw both.aborted ? aborted(error) : error;
    }
    const caughtUp = Promise.withResolvers<void>();
    const onAbort = (): void => caughtUp.reject(aborted());
    both.addEventListener('abort', onAbort, { once: true });
    if (end === undefined) caughtUp.resolve();
    this.#following = this.#read(onRecord, (offset) => {
      if (end !== undefined && offset >= end) caughtUp.resolve();
    });
    try {
      await caughtUp.promise;
    } finally {
      both.removeEventListener('abort', onAbort);
    }
  }

  /** The offset of the topic's last message when asked (undefined: the topic is empty). */
  async #end(signal: AbortSignal): Promise<bigint | undefined> {
    const { ledgerId, entryId } = await this.#admin.lastMessageId(this.#options.topic, signal);
    if (entryId < 0n) return undefined;
    return offsetOf({ ledgerId, entryId, partition: -1, batchIndex: -1 });
  }

  /**
   * Keeps a reader open until close(), opening it again after the last delivered message when its
   * connection ends — or goes silent: a connection that answers no keepalive for 3 × `keepaliveMs` (2 s at least) is
   * taken as closed (half-open: the broker would never close it), given up and closed in the
   * background, and a new reader opened after the last delivered message (nothing skipped: the
   * reader's start id is exclusive; nothing repeated: a given-up reader delivers nothing more, and
   * records at or before the last one are skipped by offset).
   */
  async #read(onRecord: (record: ControlRecord) => void, onOffset: (offset: bigint) => void): Promise<void> {
    const stop = this.#stop.signal;
    const stopped = new Promise<undefined>((resolve) => {
      if (stop.aborted) resolve(undefined);
      stop.addEventListener('abort', () => resolve(undefined), { once: true });
    });
    const keepaliveMs = this.#options.keepaliveMs ?? 5_000;
    for (let attempt = 1; !stop.aborted; attempt++) {
      const query = new URLSearchParams({ messageId: this.#last?.id ?? 'earliest', receiverQueueSize: '1000', readerName: `inserter-control-${this.#options.replicaId}` });
      const closed = Promise.withResolvers<Error>();
      /** This reader still delivers: false once it is given up. */
      let live = true;
      let watchdog: NodeJS.Timeout | undefined;
      let silent = false;
      try {
        this.#reader = await PulsarSocket.open(
          {
            url: `${this.#options.url.replace(/^http/, 'ws').replace(/\/$/, '')}/ws/v2/reader/${this.#admin.topicPath(this.#options.topic)}?${query.toString()}`,
            headers: this.#admin.authHeaders(),
            what: `control topic reader of ${this.#options.topic}`,
            // Answered with {"endOfTopic": false} without counting as an acknowledgement.
            keepalive: { frame: { type: 'isEndOfTopic' }, everyMs: keepaliveMs },
            onFrame: (frame) => {
              if (live) this.#onFrame(frame, onRecord, onOffset);
            },
            onClose: (error) => closed.resolve(error),
          },
          stop,
        );
        this.#lastHeard = Date.now();
        attempt = 0;
        // Half-open: keepalives unanswered, and no close coming. Taken as closed after 3 keepalives
        // (2 s at least: a short stall of this process does not replace a live reader).
        watchdog = setInterval(() => {
          const silence = Date.now() - this.#lastHeard;
          if (silence <= Math.max(3 * keepaliveMs, MIN_SILENT_MS)) return;
          silent = true;
          closed.resolve(new Error(`control topic reader of ${this.#options.topic}: nothing heard for ${silence} ms (keepalives unanswered): the connection is taken as closed`));
        }, keepaliveMs);
        watchdog.unref();
        const error = await Promise.race([closed.promise, stopped]);
        if (error === undefined) return;
        throw error;
      } catch (error) {
        if (stop.aborted) return;
        this.#options.logger.warn({ err: error, attempt, topic: this.#options.topic }, 'control topic reader failed; reading again after the last record');
        // A silent reader is closed in the background (its close waits out a bound), but delivers nothing more first.
        live = false;
        if (silent && this.#reader !== undefined) {
          this.#abandon(this.#reader);
          this.#reader = undefined;
        }
        await sleep(backoffDelay(this.#options.retry, Math.max(1, attempt)), undefined, { signal: stop }).catch(() => undefined);
      } finally {
        live = false;
        clearInterval(watchdog);
        await this.#reader?.close();
        this.#reader = undefined;
      }
    }
  }

  /** Closes a given-up socket in the background; close() waits for it. */
  #abandon(socket: PulsarSocket): void {
    const closing = socket.close(4000, 'silent').catch(() => undefined);
    this.#abandoned.add(closing);
    void closing.finally(() => this.#abandoned.delete(closing));
  }

  #onFrame(frame: unknown, onRecord: (record: ControlRecord) => void, onOffset: (offset: bigint) => void): void {
    this.#lastHeard = Date.now();
    const f = frame as Partial<ReaderFrame>;
    if (typeof f.messageId !== 'string') return; // the keepalive's answer
    // The reader sends no more than its queue until messages are acknowledged (ReaderHandler's pendingMessages).
    if (this.#reader?.isOpen === true) this.#reader.send({ messageId: f.messageId });
    let offset: bigint;
    try {
      offset = offsetOf(decodeMessageId(f.messageId));
    } catch (error) {
      this.#options.logger.error({ err: error, topic: this.#options.topic }, 'control record skipped: its message id does not fit an offset');
      return;
    }
    if (this.#last !== undefined && offset <= this.#last.offset) return; // delivered before a reconnect
    this.#last = { id: f.messageId, offset };
    if (f.key !== undefined) {
      const tombstone = f.properties?.[TOMBSTONE_PROPERTY] === '1';
      const time = Date.parse(f.eventTime ?? f.publishTime ?? '');
      onRecord({ key: f.key, value: tombstone ? undefined : Buffer.from(f.payload ?? '', 'base64').toString('utf8'), offset, timestamp: Number.isFinite(time) ? time : Date.now() });
    }
    onOffset(offset);
  }

  /**
   * Writes a keyed record and resolves with its offset once the broker acknowledged it. Opening the
   * producer is retried; a record sent without a receipt is not sent again (it may have landed, and a
   * late duplicate could undo a newer record of its key): INSERTER_CONTROL_WRITE, retryable.
   */
  async append(key: string, value: string | undefined, signal: AbortSignal): Promise<bigint> {
    const both = AbortSignal.any([signal, this.#stop.signal]);
    const message = {
      payload: value === undefined ? Buffer.alloc(0) : Buffer.from(value),
      key,
      ...(value === undefined ? { properties: { [TOMBSTONE_PROPERTY]: '1' } } : {}),
      eventTime: Date.now(),
    };
    const id = await retry(
      async () => {
        await this.#ensureTopic(both);
        const producer = await this.#producer(both);
        // No receipt within writeTimeoutMs: the producer closes the connection (pulsar-producer.ts: a
        // TimeoutError abort), so the next append opens a new one. A timer of its own rather than
        // AbortSignal.timeout, which is held only weakly once combined.
        const ms = this.#options.writeTimeoutMs ?? 15_000;
        const receipt = new AbortController();
        const timer = setTimeout(() => receipt.abort(new DOMException(`no receipt within ${ms} ms`, 'TimeoutError')), ms);
        try {
          return await producer.send(message, AbortSignal.any([both, receipt.signal]));
        } catch (error) {
          if (both.aborted) throw new AbortedError('control record not written: aborted', { cause: error });
          if (error instanceof PulsarPublishError && !error.sent) throw error; // not sent: try again
          throw new InserterError('INSERTER_CONTROL_WRITE', `control record ${key} not acknowledged: ${errorMessage(error)}`, { cause: error, retryable: true });
        } finally {
          clearTimeout(timer);
        }
      },
      this.#options.retry,
      both,
      { isRetryable: (error) => !(error instanceof InserterError) },
    );
    return offsetOf(id);
  }

  /** The producer, opened on first use and again after its connection ended. */
  #producer(signal: AbortSignal): Promise<PulsarProducer> {
    if (this.#open?.isOpen === true) return Promise.resolve(this.#open);
    this.#opening ??= (async () => {
      const producer = await PulsarProducer.open({ admin: this.#admin, url: this.#options.url, topic: this.#options.topic, what: `control topic producer of ${this.#options.topic}` }, signal);
      if (this.#stop.signal.aborted) {
        await producer.close();
        throw new AbortedError('control log closed');
      }
      this.#open = producer;
      return producer;
    })().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  silenceMs(): number {
    return Date.now() - this.#lastHeard;
  }

  /** The topic exists with unlimited retention time (never deleted as inactive) and a size cap. */
  #ensureTopic(signal: AbortSignal): Promise<void> {
    this.#ready ??= (async () => {
      const topic = this.#options.topic;
      const policy = { retentionTimeInMinutes: -1, retentionSizeInMB: this.#options.retentionSizeInMB ?? 1024 };
      await this.#admin.createTopic(topic, signal);
      const current = await this.#admin.retention(topic, signal);
      if (current?.retentionTimeInMinutes !== policy.retentionTimeInMinutes || current.retentionSizeInMB !== policy.retentionSizeInMB) await this.#admin.setRetention(topic, policy, signal);
    })().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  /**
   * Stops reading and writing, closing the reader and the producer in parallel. A half-open one
   * takes pulsar-socket.ts's close bound (5 s) to be reported closed, and its TCP socket outlives
   * close(): Node's WebSocket has no forced close (docs/design/pulsar.md, "Bus adapters").
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stop.abort();
      await Promise.all([
        // #read's finally closes its reader.
        this.#following?.catch(() => undefined),
        this.#reader?.close(),
        (async () => {
          await this.#opening?.catch(() => undefined);
          await this.#open?.close();
        })(),
        ...this.#abandoned,
      ]);
    })();
    return this.#closing;
  }
}
