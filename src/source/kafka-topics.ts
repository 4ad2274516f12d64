// Owns creating the topics inserter keeps its own state in (the ledger, the control topic): created
// on first use with their configs and at least the partitions asked for, grown when asked for more;
// an "already exists" race with another process is success.
import { Admin } from '@platformatic/kafka';
import { kafkaClientOptions, type KafkaConnection } from './kafka-connection.ts';
import { retry, type BackoffPolicy } from '../sink/retry.ts';

export interface StateTopic {
  readonly brokers: readonly string[];
  readonly connection?: KafkaConnection | undefined;
  readonly clientId: string;
  readonly topic: string;
  readonly configs: ReadonlyArray<{ name: string; value: string }>;
  readonly retry: BackoffPolicy;
  /** At least this many partitions (default 1); an existing topic with fewer is grown. */
  readonly partitions?: number;
}

/** Ensures the topic exists with at least `options.partitions`; resolves to its partition count. */
export function ensureStateTopic(options: StateTopic, signal: AbortSignal): Promise<number> {
  const wanted = options.partitions ?? 1;
  return retry(
    async () => {
      const admin = new Admin({ clientId: `${options.clientId}-admin`, ...kafkaClientOptions(options) });
      try {
        const count = await partitionCount(admin, options.topic);
        if (count >= wanted) return count;
        if (count === 0) {
          await admin.createTopics({ topics: [options.topic], partitions: wanted, replicas: -1, configs: [...options.configs] }).catch((error: unknown) => {
            if (!/already exists/i.test(describe(error))) throw error;
          });
        } else {
          await admin.createPartitions({ topics: [{ name: options.topic, count: wanted }] }).catch((error: unknown) => {
            // Another process grew it first: checked below.
            if (!/INVALID_PARTITIONS|already has/i.test(describe(error))) throw error;
          });
        }
        const after = await partitionCount(admin, options.topic);
        if (after < wanted) throw new Error(`${options.topic} has ${after} partitions, ${wanted} wanted`);
        return after;
      } finally {
        await admin.close();
      }
    },
    options.retry,
    signal,
    { isRetryable: () => true },
  );
}

async function partitionCount(admin: Admin, topic: string): Promise<number> {
  if (!(await admin.listTopics()).includes(topic)) return 0;
  const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
  return metadata.topics.get(topic)?.partitionsCount ?? 0;
}

function describe(error: unknown): string {
  return String(error) + JSON.stringify((error as { errors?: unknown }).errors ?? '');
}
