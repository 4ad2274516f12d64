// Owns measuring the subscription's lag on Pulsar: for every partition of the consumed topics, the
// subscription's backlog (messages not acknowledged) from the admin API's topic stats, polled every
// `intervalMs`. A partition the subscription has never read counts every message it holds (the
// source subscribes from the earliest). The source acknowledges on commit (pulsar-source.ts), so the
// backlog is what is not committed yet, as Kafka's lag is. The Pulsar adapter of control/lag-source.ts.
import type { Secret } from '../config/secret.ts';
import { lagKey, LagPoller, type LagPollerOptions } from '../control/lag-source.ts';
import { PulsarAdmin, PulsarRequestError, type TopicStats } from './pulsar-admin.ts';

export interface PulsarLagSourceOptions extends LagPollerOptions {
  /** The broker's web service, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  readonly tenant: string;
  readonly namespace: string;
  /** A JWT for the broker's token authentication; sent in a header, never logged. */
  readonly token?: Secret;
  readonly subscription: string;
  readonly topics: readonly string[];
}

export class PulsarLagSource extends LagPoller {
  protected readonly what = 'subscription backlog';
  readonly #o: PulsarLagSourceOptions;
  readonly #admin: PulsarAdmin;

  constructor(options: PulsarLagSourceOptions) {
    super(options);
    this.#o = options;
    this.#admin = new PulsarAdmin(options);
  }

  protected async measure(signal: AbortSignal): Promise<Map<string, number>> {
    const next = new Map<string, number>();
    for (const topic of this.#o.topics) {
      const partitions = await this.#admin.partitions(topic, signal);
      // A non-partitioned topic is partition 0; a partitioned topic's partition n is <topic>-partition-<n>.
      const names = partitions === 0 ? [topic] : Array.from({ length: partitions }, (_, n) => `${topic}-partition-${n}`);
      const backlogs = await Promise.all(names.map((name) => this.#backlog(name, signal)));
      backlogs.forEach((backlog, partition) => {
        if (backlog !== undefined) next.set(lagKey(topic, partition), backlog);
      });
    }
    return next;
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
}
