// Owns measuring consumer lag: for every partition of the consumed topics, the log end (the last
// stable offset, as a read_committed consumer sees it) minus the group's committed position, polled
// with a client of its own that never joins the group. The source's consumer cannot tell: its
// getLag() knows only the streams' own commits, and the source is the pipeline's, not ours.
// The Kafka adapter of control/lag-source.ts.
import { Consumer } from '@platformatic/kafka';
import { lagKey, LagPoller, type LagPollerOptions } from '../control/lag-source.ts';
import { handleClientErrors } from './kafka-client-errors.ts';
import { kafkaClientOptions, type KafkaConnection } from './kafka-connection.ts';

export interface LagMonitorOptions extends LagPollerOptions {
  readonly brokers: readonly string[];
  /** TLS and SASL (source/kafka-connection.ts); none: plaintext. */
  readonly connection?: KafkaConnection;
  readonly clientId: string;
  readonly groupId: string;
  readonly topics: readonly string[];
}

export class KafkaLagMonitor extends LagPoller {
  protected readonly what = 'consumer lag';
  readonly #o: LagMonitorOptions;
  readonly #client: Consumer;

  constructor(options: LagMonitorOptions) {
    super(options);
    this.#o = options;
    this.#client = new Consumer({ clientId: `${options.clientId}-lag`, groupId: options.groupId, ...kafkaClientOptions(options), autocommit: false });
    handleClientErrors(this.#client);
  }

  protected async measure(): Promise<Map<string, number>> {
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
        if (position !== undefined && position >= 0n) next.set(lagKey(topic, partition), Math.max(0, Number(end - position)));
      });
    }
    return next;
  }

  protected override closeClient(): Promise<void> {
    return this.#client.close();
  }
}
