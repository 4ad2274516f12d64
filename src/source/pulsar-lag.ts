// Owns measuring the subscription's lag on Pulsar: for every partition of the consumed topics, the
// subscription's backlog (messages not acknowledged) from the admin API's topic stats, polled every
// `intervalMs`. A partition the subscription has never read counts every message it holds (the
// source subscribes from the earliest). The source acknowledges on commit (pulsar-source.ts), so the
// backlog is what is not committed yet, as Kafka's lag is. The Pulsar adapter of control/lag-source.ts.
import type { Secret } from '../config/secret.ts';
import type { LagSource } from '../control/lag-source.ts';
import type { Logger } from '../telemetry/logger.ts';
import { PulsarAdmin, PulsarRequestError, type TopicStats } from './pulsar-admin.ts';

export interface PulsarLagSourceOptions {
  /** The broker's web service, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  readonly tenant: string;
  readonly namespace: string;
  /** A JWT for the broker's token authentication; sent in a header, never logged. */
  readonly token?: Secret;
  readonly subscription: string;
  readonly topics: readonly string[];
  readonly intervalMs: number;
  readonly logger: Logger;
  /** Called after each successful poll (e.g. to export the owned partitions' lag). */
  readonly onPoll?: () => void;
}

export class PulsarLagSource implements LagSource {
  readonly #o: PulsarLagSourceOptions;
  readonly #admin: PulsarAdmin;
  /** Ends the requests of a poll still running at close(). */
  readonly #closer = new AbortController();
  #lag = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #lastPollAt = 0;

  constructor(options: PulsarLagSourceOptions) {
    this.#o = options;
    this.#admin = new PulsarAdmin(options);
  }

  start(): void {
    if (this.#timer !== undefined || this.#closing !== undefined) return;
    void this.poll();
    this.#timer = setInterval(() => void this.poll(), this.#o.intervalMs);
    this.#timer.unref();
  }

  /** Messages the subscription has not acknowledged; undefined before the first poll (or for a partition that does not exist). */
  lag(topic: string, partition: number): number | undefined {
    return this.#lag.get(`${topic}:${partition}`);
  }

  get lastPollAt(): number {
    return this.#lastPollAt;
  }

  /** One measurement of every partition (a poll already running is joined). */
  poll(): Promise<void> {
    this.#polling ??= (async () => {
      const signal = this.#closer.signal;
      try {
        const next = new Map<string, number>();
        for (const topic of this.#o.topics) {
          const partitions = await this.#admin.partitions(topic, signal);
          // A non-partitioned topic is partition 0; a partitioned topic's partition n is <topic>-partition-<n>.
          const names = partitions === 0 ? [topic] : Array.from({ length: partitions }, (_, n) => `${topic}-partition-${n}`);
          const backlogs = await Promise.all(names.map((name) => this.#backlog(name, signal)));
          backlogs.forEach((backlog, partition) => {
            if (backlog !== undefined) next.set(`${topic}:${partition}`, backlog);
          });
        }
        if (this.#closing !== undefined) return;
        this.#lag = next;
        this.#lastPollAt = Date.now();
        this.#o.onPoll?.();
      } catch (error) {
        if (this.#closing === undefined) this.#o.logger.warn({ err: error }, 'subscription backlog not measured');
      } finally {
        this.#polling = undefined;
      }
    })();
    return this.#polling;
  }

  /** The subscription's backlog on one partition topic; every stored entry when it has no such subscription; undefined when the topic does not exist. */
  async #backlog(name: string, signal: AbortSignal): Promise<number | undefined> {
    let stats: TopicStats;
    try {
      stats = await this.#admin.stats(name, signal);
    } catch (error) {
      if (error instanceof PulsarRequestError && error.status === 404) return undefined;
      throw error;
    }
    const backlog = stats.subscriptions?.[this.#o.subscription]?.msgBacklog;
    if (typeof backlog === 'number') return Math.max(0, backlog);
    // Never subscribed: the source starts at the earliest message, so all of it is behind.
    return this.#admin.storedEntries(name, signal);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#closer.abort();
      await this.#polling;
    })();
    return this.#closing;
  }
}
