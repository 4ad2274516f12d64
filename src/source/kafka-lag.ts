// Owns measuring consumer lag: for every partition of the consumed topics, the log end (the last
// stable offset, as a read_committed consumer sees it) minus the group's committed position, polled
// with a client of its own that never joins the group. The source's consumer cannot tell: its
// getLag() knows only the streams' own commits, and the source is the pipeline's, not ours.
// The Kafka adapter of control/lag-source.ts.
import { Consumer } from '@platformatic/kafka';
import type { LagSource } from '../control/lag-source.ts';
import type { Logger } from '../telemetry/logger.ts';
import { handleClientErrors } from './kafka-client-errors.ts';
import { kafkaClientOptions, type KafkaConnection } from './kafka-connection.ts';

export interface LagMonitorOptions {
  readonly brokers: readonly string[];
  /** TLS and SASL (source/kafka-connection.ts); none: plaintext. */
  readonly connection?: KafkaConnection;
  readonly clientId: string;
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly intervalMs: number;
  readonly logger: Logger;
  /** Called after each successful poll (e.g. to export the owned partitions' lag). */
  readonly onPoll?: () => void;
}

export class KafkaLagMonitor implements LagSource {
  readonly #o: LagMonitorOptions;
  readonly #client: Consumer;
  #lag = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #lastPollAt = 0;

  constructor(options: LagMonitorOptions) {
    this.#o = options;
    this.#client = new Consumer({ clientId: `${options.clientId}-lag`, groupId: options.groupId, ...kafkaClientOptions(options), autocommit: false });
    handleClientErrors(this.#client);
  }

  start(): void {
    if (this.#timer !== undefined || this.#closing !== undefined) return;
    void this.poll();
    this.#timer = setInterval(() => void this.poll(), this.#o.intervalMs);
    this.#timer.unref();
  }

  /** Records behind the log end (from the log start where the group never committed); undefined before the first poll. */
  lag(topic: string, partition: number): number | undefined {
    return this.#lag.get(`${topic}:${partition}`);
  }

  get lastPollAt(): number {
    return this.#lastPollAt;
  }

  poll(): Promise<void> {
    this.#polling ??= (async () => {
      try {
        const topics = [...this.#o.topics];
        const ends = await this.#client.listOffsets({ topics });
        const committed = await this.#client.listCommittedOffsets({ topics: topics.map((topic) => ({ topic, partitions: (ends.get(topic) ?? []).map((_, i) => i) })) });
        // A partition the group never committed is read from the log start (the consumer's fallback):
        // its lag counts from there. Asked only when some partition has no committed position.
        const uncommitted = [...ends].some(([topic, partitions]) => partitions.some((_, partition) => !((committed.get(topic)?.[partition] ?? -1n) >= 0n)));
        const starts = uncommitted ? await this.#client.listOffsets({ topics, timestamp: -2n }) : undefined;
        const next = new Map<string, number>();
        for (const [topic, partitions] of ends) {
          partitions.forEach((end, partition) => {
            const committedAt = committed.get(topic)?.[partition];
            const position = committedAt !== undefined && committedAt >= 0n ? committedAt : starts?.get(topic)?.[partition];
            if (position !== undefined && position >= 0n) next.set(`${topic}:${partition}`, Math.max(0, Number(end - position)));
          });
        }
        this.#lag = next;
        this.#lastPollAt = Date.now();
        this.#o.onPoll?.();
      } catch (error) {
        if (this.#closing === undefined) this.#o.logger.warn({ err: error }, 'consumer lag not measured');
      } finally {
        this.#polling = undefined;
      }
    })();
    return this.#polling;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      await this.#polling;
      await this.#client.close();
    })();
    return this.#closing;
  }
}
