// Owns consuming Apache Pulsar topics through the broker's WebSocket API: one Exclusive consumer per
// partition named by the inserter's subscription, so only one process owns a partition; the others'
// subscribes are refused and retried until the owner's connection ends. Subscribing is onAssigned,
// a closed connection is onRevoked (then the partition is subscribed again with backoff). A new
// subscription starts at the earliest message. Records of all owned partitions are handed to the
// core one at a time, as Kafka's are; a position commits by acknowledging every message handed on
// below it. A rewind closes the owned partitions' consumers and subscribes again: the broker
// redelivers every message not acknowledged, so pauses and parked destinations re-read instead of
// holding rows in memory. docs/design/pulsar.md.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Secret } from '../config/secret.ts';
import { ConfigError, InserterError } from '../errors/inserter-error.ts';
import { backoffDelay, type BackoffPolicy } from '../sink/retry.ts';
import { PulsarAdmin, pulsarUrlIssue } from './pulsar-admin.ts';
import { ConsumerSession } from './pulsar-consumer.ts';
import { untilAborted } from './until-aborted.ts';
import type { CommitPosition, PartitionRef, Source, SourceHandler } from './types.ts';
import { partitionKey } from './types.ts';

export interface PulsarSourceOptions {
  /** The broker's web service (admin and WebSocket APIs), e.g. http://127.0.0.1:8080. */
  readonly url: string;
  readonly tenant: string;
  readonly namespace: string;
  /** The subscription (the inserter's group id): one per inserter deployment. */
  readonly subscription: string;
  readonly topics: readonly string[];
  /** A JWT for the broker's token authentication; sent in a header, never logged. */
  readonly token?: Secret;
  /** Frames the broker may send ahead per partition (1–1000, the WebSocket API's bound). Default 1000. */
  readonly receiverQueueSize?: number;
  /** Backoff between subscribe attempts (a busy subscription, a broker away). */
  readonly retry?: BackoffPolicy;
  /** How often the subscription's consumers are checked for this process (a silently lost partition). Default 10 s. */
  readonly ownershipCheckMs?: number;
  /** How often partition counts are read again (partitions added to a topic). Default 60 s. */
  readonly partitionRefreshMs?: number;
  /** Keepalive frames on idle connections. Default 60 s (the broker's idle timeout is 5 minutes by default). */
  readonly keepaliveMs?: number;
  /** Told about each failed subscribe attempt of a partition (busy: owned by another process). */
  readonly onError?: (error: unknown, attempt: number, partition: PartitionRef) => void;
}

const DEFAULT_RETRY: BackoffPolicy = { baseMs: 200, factor: 2, capMs: 5_000 };
const NAME = /^[A-Za-z0-9_.=:%-]+$/;
/** The close code of a consumer closed by a rewind (a client may send only 1000 or 3000–4999). */
const REWIND_CODE = 4002;
/** Failed subscribes in a row after a rewind before the partition is taken as lost although no other consumer is seen. */
const RESUBSCRIBE_ATTEMPTS = 5;

/** The partition's Exclusive subscription is held by another consumer (another inserter process). */
export class PulsarSubscriptionBusyError extends Error {
  readonly code = 'PULSAR_SUBSCRIPTION_BUSY';
  constructor(ref: PartitionRef, holders: readonly string[], cause: unknown) {
    super(`${ref.topic}/${ref.partition}: the subscription is held by ${holders.join(', ')}`, { cause });
    this.name = 'PulsarSubscriptionBusyError';
  }
}

export function validatePulsarSourceOptions(options: PulsarSourceOptions): void {
  const issues: string[] = [];
  const urlIssue = pulsarUrlIssue(options.url);
  if (urlIssue !== undefined) issues.push(urlIssue);
  for (const field of ['tenant', 'namespace', 'subscription'] as const) if (!NAME.test(options[field])) issues.push(`pulsar ${field} must be a Pulsar name, got ${JSON.stringify(options[field])}`);
  if (options.topics.length === 0) issues.push('pulsar topics must name at least one topic');
  for (const topic of options.topics) if (!NAME.test(topic) || /-partition-\d+$/.test(topic)) issues.push(`pulsar topic ${JSON.stringify(topic)} must be a topic name (not one partition of it)`);
  const queue = options.receiverQueueSize;
  if (queue !== undefined && (!Number.isInteger(queue) || queue < 1 || queue > 1000)) issues.push(`pulsar receiverQueueSize must be an integer in 1..1000, got ${queue}`);
  for (const field of ['ownershipCheckMs', 'partitionRefreshMs', 'keepaliveMs'] as const) {
    const value = options[field];
    if (value !== undefined && (!Number.isFinite(value) || value < 10)) issues.push(`pulsar ${field} must be at least 10, got ${value}`);
  }
  if (issues.length > 0) throw new ConfigError(issues);
}

export class PulsarSource implements Source {
  readonly #options: PulsarSourceOptions;
  readonly #admin: PulsarAdmin;
  readonly #consumerName: string;
  readonly #sessions = new Map<string, ConsumerSession>();
  /** The broker's name of each partition's topic (`<topic>-partition-<n>`, or the topic itself). */
  readonly #names = new Map<string, string>();
  /** Partitions that have an ownership loop (owned or being subscribed). */
  readonly #loops = new Map<string, Promise<void>>();
  readonly #closer = new AbortController();
  #wake: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: PulsarSourceOptions) {
    validatePulsarSourceOptions(options);
    this.#options = options;
    this.#admin = new PulsarAdmin(options);
    this.#consumerName = `inserter-${randomUUID().slice(0, 8)}`;
  }

  /** This process's consumer name in the subscription's stats. */
  get consumerName(): string {
    return this.#consumerName;
  }

  async run(handler: SourceHandler, signal: AbortSignal): Promise<void> {
    const stop = AbortSignal.any([signal, this.#closer.signal]);
    const wake = (): void => this.#wake?.();
    stop.addEventListener('abort', wake, { once: true });
    const refresh = setInterval(() => void this.#discover(handler, stop).catch(() => undefined), this.#options.partitionRefreshMs ?? 60_000);
    const check = setInterval(() => void this.#checkOwnership(stop).catch(() => undefined), this.#options.ownershipCheckMs ?? 10_000);
    try {
      await this.#discover(handler, stop);
      await this.#deliver(handler, stop);
    } finally {
      clearInterval(refresh);
      clearInterval(check);
      stop.removeEventListener('abort', wake);
    }
  }

  /** Hands records to the core one at a time, round robin over owned partitions, until stopped. */
  async #deliver(handler: SourceHandler, stop: AbortSignal): Promise<void> {
    let turn = 0;
    while (!stop.aborted) {
      const sessions = [...this.#sessions.values()];
      let session: ConsumerSession | undefined;
      for (let i = 0; i < sessions.length && session === undefined; i++) {
        const candidate = sessions[(turn + i) % sessions.length] as ConsumerSession;
        if (candidate.hasFrames && candidate.isOpen) session = candidate;
      }
      turn++;
      if (session === undefined) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          if (stop.aborted || [...this.#sessions.values()].some((s) => s.hasFrames)) resolve();
        });
        this.#wake = undefined;
        continue;
      }
      // A run of records of one partition while it has them (records come in runs, as Kafka's do).
      for (let record = session.take(); record !== undefined; record = session.take()) {
        const pending = handler.onRecord(record);
        if (pending !== undefined) await pending;
        session.accepted();
        if (stop.aborted || this.#sessions.get(partitionKey(record.topic, record.partition)) !== session) break;
      }
    }
  }

  /** Starts an ownership loop for every partition of every topic that has none. */
  async #discover(handler: SourceHandler, stop: AbortSignal): Promise<void> {
    for (const topic of this.#options.topics) {
      let partitions: number;
      for (let attempt = 1; ; attempt++) {
        try {
          partitions = await this.#admin.partitions(topic, stop);
          break;
        } catch (error) {
          if (stop.aborted) return;
          this.#options.onError?.(error, attempt, { topic, partition: 0 });
          await sleep(backoffDelay(this.#options.retry ?? DEFAULT_RETRY, attempt), undefined, { signal: stop }).catch(() => undefined);
        }
      }
      // A non-partitioned topic is partition 0; a partitioned topic's partition n is <topic>-partition-<n>.
      const refs = partitions === 0 ? [{ topic, partition: 0, name: topic }] : Array.from({ length: partitions }, (_, n) => ({ topic, partition: n, name: `${topic}-partition-${n}` }));
      for (const { name, ...ref } of refs) {
        const key = partitionKey(ref.topic, ref.partition);
        if (this.#loops.has(key) || stop.aborted) continue;
        this.#names.set(key, name);
        this.#loops.set(key, this.#own(ref, name, handler, stop));
      }
    }
  }

  /**
   * Subscribes to one partition, owns it until its connection ends, and subscribes again. A
   * connection a rewind closed is subscribed again at once within the same ownership; only if
   * another consumer holds the subscription by then (or subscribing keeps failing) is it revoked.
   */
  async #own(ref: PartitionRef, name: string, handler: SourceHandler, stop: AbortSignal): Promise<void> {
    const key = partitionKey(ref.topic, ref.partition);
    const policy = this.#options.retry ?? DEFAULT_RETRY;
    const query = new URLSearchParams({
      subscriptionType: 'Exclusive',
      subscriptionInitialPosition: 'Earliest',
      pullMode: 'true',
      receiverQueueSize: String(this.#options.receiverQueueSize ?? 1000),
      consumerName: this.#consumerName,
    });
    const url = `${this.#options.url.replace(/^http/, 'ws').replace(/\/$/, '')}/ws/v2/consumer/${this.#admin.topicPath(name)}/${encodeURIComponent(this.#options.subscription)}?${query.toString()}`;
    /** The core was told onAssigned and not onRevoked since. */
    let owned = false;
    for (let attempt = 1; !stop.aborted; attempt++) {
      const session = new ConsumerSession({
        url,
        headers: this.#admin.authHeaders(),
        ref,
        receiverQueueSize: this.#options.receiverQueueSize ?? 1000,
        keepaliveMs: this.#options.keepaliveMs ?? 60_000,
        onFrame: () => this.#wake?.(),
      });
      try {
        await session.open(stop);
      } catch (error) {
        if (stop.aborted) break;
        // (Explained only when someone listens, or a rewind's subscribe must know who holds it.)
        const explained = owned || this.#options.onError !== undefined ? await this.#explain(ref, name, error, stop) : error;
        this.#options.onError?.(explained, attempt, ref);
        if (owned && (explained instanceof PulsarSubscriptionBusyError || attempt >= RESUBSCRIBE_ATTEMPTS)) {
          owned = false;
          if (!this.#closer.signal.aborted) handler.onRevoked([ref]);
        }
        await sleep(backoffDelay(policy, attempt), undefined, { signal: stop }).catch(() => undefined);
        continue;
      }
      attempt = 0;
      this.#sessions.set(key, session);
      if (!owned) handler.onAssigned([ref]);
      owned = true;
      await session.closed;
      if (this.#sessions.get(key) === session) this.#sessions.delete(key);
      if (session.rewound) continue;
      owned = false;
      // After close() the pipeline is done with the source: nothing more to tell it.
      if (!this.#closer.signal.aborted) handler.onRevoked([ref]);
    }
    this.#loops.delete(key);
  }

  /** Why a subscribe failed, as far as the admin API can tell (the WebSocket API does not say). */
  async #explain(ref: PartitionRef, name: string, error: unknown, stop: AbortSignal): Promise<unknown> {
    try {
      const stats = await this.#admin.stats(name, AbortSignal.any([stop, AbortSignal.timeout(5_000)]));
      const holders = (stats.subscriptions?.[this.#options.subscription]?.consumers ?? []).map((c) => c.consumerName ?? '?').filter((n) => n !== this.#consumerName);
      return holders.length > 0 ? new PulsarSubscriptionBusyError(ref, holders, error) : error;
    } catch {
      return error;
    }
  }

  /**
   * A subscription this process no longer holds although its socket is open: the broker moved the
   * topic, the consumer inside the WebSocket service is reconnecting, and another process took the
   * partition meanwhile. Two checks in a row without this consumer end the session (revoked), so
   * the partition's ledger is released and the new owner can take it over.
   */
  async #checkOwnership(stop: AbortSignal): Promise<void> {
    for (const session of [...this.#sessions.values()]) {
      if (stop.aborted || !session.isOpen) continue;
      const name = this.#names.get(partitionKey(session.ref.topic, session.ref.partition));
      if (name === undefined) continue;
      const consumers = (await this.#admin.stats(name, stop)).subscriptions?.[this.#options.subscription]?.consumers ?? [];
      session.missing = consumers.some((c) => c.consumerName === this.#consumerName) ? 0 : session.missing + 1;
      if (session.missing >= 2) await session.close(4000, 'subscription no longer held');
    }
  }

  async commit(positions: readonly CommitPosition[], signal?: AbortSignal): Promise<void> {
    for (const position of positions) {
      const session = this.#sessions.get(partitionKey(position.topic, position.partition));
      // Not owned (revoked meanwhile): nothing to acknowledge; the next owner reads it again.
      if (session === undefined) continue;
      try {
        await session.acknowledgeBelow(position.offset, signal);
      } catch (cause) {
        if (signal?.aborted === true) throw cause;
        throw new InserterError('INSERTER_SOURCE_COMMIT_FAILED', `acknowledging ${position.topic}/${position.partition} below ${position.offset} failed: ${(cause as Error).message}`, {
          cause,
          retryable: true,
        });
      }
    }
  }

  /**
   * Re-reads every owned partition from its acknowledged position: its consumer is closed (not
   * revoked: the ledger stays held) and subscribed again, and the broker redelivers every message
   * not acknowledged to the new consumer of the Exclusive subscription. A consumer that handed
   * nothing on since it subscribed already starts there and is kept. The closed consumers' frames
   * are dropped before `onSwitch`, so nothing they received is handed on after it.
   */
  async rewind(onSwitch: () => void, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const closing: Array<Promise<void>> = [];
    for (const [key, session] of this.#sessions) {
      if (!session.handedOn) continue;
      // One the broker is closing already is revoked as usual once closed; it hands nothing more on either.
      session.rewound = session.isOpen;
      this.#sessions.delete(key);
      closing.push(session.close(REWIND_CODE, 'rewind'));
    }
    onSwitch();
    await untilAborted(Promise.all(closing), signal, 'closing the consumers for a rewind');
  }

  /** Closes every consumer gracefully: what is not acknowledged is delivered again to the next owner. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closer.abort();
      this.#wake?.();
      await Promise.allSettled([...this.#sessions.values()].map((s) => s.close()));
      await Promise.allSettled([...this.#loops.values()]);
    })();
    return this.#closing;
  }
}
