// Owns `dlq purge`: deletes a dead-letter partition's records below an offset with Kafka's
// DeleteRecords (Admin.deleteRecords), after checking the topic is a dead-letter topic of the config
// and that no replay to a destination is left pending there (it could not be finished afterwards).
import { Admin } from '@platformatic/kafka';
import { DlqKafkaError, DlqUsageError } from '../deadletter/dlq-errors.ts';
import { kafkaClientOptions } from './kafka-connection.ts';
import type { KafkaAccess } from './kafka-dlq-reader.ts';
import type { ReplayLedger } from './kafka-dlq-replay-ledger.ts';

export interface PurgeRequest {
  readonly topic: string;
  readonly partition: number;
  readonly beforeOffset: bigint;
}

/** Returns the partition's new low watermark (its first remaining offset). */
export async function purge(kafka: KafkaAccess, request: PurgeRequest, ledger: ReplayLedger): Promise<bigint> {
  const { topic, partition, beforeOffset } = request;
  const prefix = `${topic}/${partition}/`;
  for (const [id, entry] of ledger.entries) {
    if (entry.state === 'pending' && id.startsWith(prefix) && BigInt(id.slice(prefix.length)) < beforeOffset) {
      throw new DlqUsageError(`${id} has a replay to ${entry.destination ?? '?'} left pending (token ${entry.token ?? '?'}): run \`inserter dlq replay --to destination\` first`);
    }
  }
  const admin = new Admin({ clientId: `${kafka.clientId}-dlq-admin`, ...kafkaClientOptions(kafka) });
  try {
    const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
    const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
    if (partition >= count) throw new DlqUsageError(`${topic} has ${count} partition(s); there is no partition ${partition}`);
    const result = await admin.deleteRecords({ topics: [{ name: topic, partitions: [{ partition, offset: beforeOffset }] }] });
    const low = result.find((t) => t.name === topic)?.partitions.find((p) => p.partition === partition)?.lowWatermark;
    if (low === undefined) throw new DlqKafkaError(`DeleteRecords on ${topic}/${partition} returned no low watermark`);
    return low;
  } catch (error) {
    if (error instanceof DlqUsageError || error instanceof DlqKafkaError) throw error;
    throw new DlqKafkaError(`deleting ${topic}/${partition} below ${beforeOffset} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  } finally {
    await admin.close();
  }
}
