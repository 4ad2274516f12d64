// Owns creating the single-partition topics inserter keeps its own state in (the ledger, the
// control topic): created on first use with their configs, an "already exists" race is success.
import { Admin } from '@platformatic/kafka';
import { retry, type BackoffPolicy } from '../sink/retry.ts';

export interface StateTopic {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly topic: string;
  readonly configs: ReadonlyArray<{ name: string; value: string }>;
  readonly retry: BackoffPolicy;
}

export function ensureStateTopic(options: StateTopic, signal: AbortSignal): Promise<void> {
  return retry(
    async () => {
      const admin = new Admin({ clientId: `${options.clientId}-admin`, bootstrapBrokers: [...options.brokers] });
      try {
        if ((await admin.listTopics()).includes(options.topic)) return;
        await admin.createTopics({ topics: [options.topic], partitions: 1, replicas: -1, configs: [...options.configs] }).catch((error: unknown) => {
          if (!/already exists/i.test(String(error) + JSON.stringify((error as { errors?: unknown }).errors ?? ''))) throw error;
        });
      } finally {
        await admin.close();
      }
    },
    options.retry,
    signal,
    { isRetryable: () => true },
  );
}
