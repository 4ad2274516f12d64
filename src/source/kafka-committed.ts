// Owns reading a group's committed positions as they stand once every transaction that commits one
// has ended: positions committed in a ledger transaction (docs/design/delivery.md §4) are applied
// when the transaction's markers are written, a moment after the commit returns, so a plain offset
// fetch can still show the position before it. `requireStable` makes the broker answer
// UNSTABLE_OFFSET_COMMIT until then; the read is retried until the deadline.
import { Admin } from '@platformatic/kafka';
import { kafkaClientOptions, type KafkaConnection } from './kafka-connection.ts';

export interface CommittedAccess {
  readonly brokers: readonly string[];
  readonly connection?: KafkaConnection;
  readonly clientId: string;
}

/** The group's committed offset of each partition of `topic` (-1 when none), waiting for open transactions. */
export async function stableCommittedOffsets(kafka: CommittedAccess, groupId: string, topic: string, partitions: number, signal: AbortSignal): Promise<bigint[]> {
  const admin = new Admin({ clientId: kafka.clientId, ...kafkaClientOptions(kafka), retries: 20, retryDelay: 100 });
  try {
    for (;;) {
      try {
        const [group] = await admin.listConsumerGroupOffsets({ groups: [{ groupId, topics: [{ name: topic, partitionIndexes: [...Array(partitions).keys()] }] }], requireStable: true });
        const out = Array.from({ length: partitions }, () => -1n);
        for (const t of group?.topics ?? []) if (t.name === topic) for (const p of t.partitions) out[p.partitionIndex] = p.committedOffset;
        return out;
      } catch (error) {
        if (signal.aborted || !isUnstable(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  } finally {
    await admin.close().catch(() => undefined);
  }
}

function isUnstable(error: unknown, depth = 0): boolean {
  if (error === null || typeof error !== 'object' || depth > 5) return false;
  const e = error as { message?: unknown; errors?: unknown; cause?: unknown; apiCode?: unknown };
  if (e.apiCode === 88 || (typeof e.message === 'string' && e.message.includes('UNSTABLE_OFFSET_COMMIT'))) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => isUnstable(inner, depth + 1))) return true;
  return isUnstable(e.cause, depth + 1);
}
