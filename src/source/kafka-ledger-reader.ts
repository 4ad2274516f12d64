// Owns reading the newest *committed* value of one key from one partition of a transactionally
// written topic, without a consumer group. It reads the partition's tail (read_uncommitted, up to the
// high watermark) and applies a transaction's records only at its commit marker. read_committed would
// be wrong here: it stops at the last stable offset, i.e. before the first transaction still open by
// *any* producer of the partition — a process killed mid-write leaves one open for a minute — and so
// returns a value seconds old while newer ones are committed after it.
import { Consumer, IS_CONTROL, IS_TRANSACTIONAL, type RecordsBatch } from '@platformatic/kafka';
import { handleClientErrors } from './kafka-client-errors.ts';
import { kafkaClientOptions, type KafkaConnection } from './kafka-connection.ts';

const READ_UNCOMMITTED = 0;
/** Offsets read back from the end first (records and markers); doubled until the key is found. */
const FIRST_WINDOW = 256n;
const COMMIT_MARKER = 1;
const MAX_FETCH_BYTES = 16 * 1024 * 1024;
/** Empty answers below the high watermark tolerated before giving up (the caller retries). */
const MAX_IDLE_FETCHES = 20;

export interface TailRead {
  readonly brokers: readonly string[];
  readonly connection?: KafkaConnection | undefined;
  readonly clientId: string;
  readonly topic: string;
  readonly partition: number;
  readonly key: Buffer;
}

/** The key's newest committed value (null for a tombstone), or undefined if the partition has none. */
export async function readNewestCommitted(options: TailRead, signal: AbortSignal): Promise<Buffer | null | undefined> {
  // The group id is never joined: fetches and offset lookups need none.
  const consumer = new Consumer({ clientId: options.clientId, groupId: `${options.clientId}-unused`, ...kafkaClientOptions(options), autocommit: false });
  handleClientErrors(consumer);
  try {
    const { topic, partition } = options;
    const partitions = { [topic]: [partition] };
    const end = (await consumer.listOffsets({ topics: [topic], partitions, isolationLevel: READ_UNCOMMITTED })).get(topic)?.[partition] ?? 0n;
    const start = (await consumer.listOffsets({ topics: [topic], partitions, timestamp: -2n })).get(topic)?.[partition] ?? 0n;
    for (let window = FIRST_WINDOW; ; window *= 2n) {
      const from = end - window > start ? end - window : start;
      const found = await scan(consumer, options, from, end, signal);
      if (found.found || from === start) return found.found ? found.value : undefined;
    }
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
}

async function scan(consumer: Consumer, options: TailRead, from: bigint, end: bigint, signal: AbortSignal): Promise<{ found: boolean; value: Buffer | null }> {
  const { topic, partition, key } = options;
  // Records of the key per producer, waiting for their transaction's marker.
  const open = new Map<bigint, Array<Buffer | null>>();
  let found = false;
  let value: Buffer | null = null;
  let next = from;
  let idle = 0;
  while (next < end) {
    signal.throwIfAborted();
    const metadata = await consumer.metadata({ topics: [topic] });
    const described = metadata.topics.get(topic);
    const leader = described?.partitions[partition]?.leader;
    if (described === undefined || leader === undefined) throw new Error(`no leader for ${topic}/${partition}`);
    const response = await consumer.fetch({
      node: leader,
      topics: [{ topicId: described.id, partitions: [{ partition, fetchOffset: next, partitionMaxBytes: MAX_FETCH_BYTES, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }] }],
      maxBytes: MAX_FETCH_BYTES,
      maxWaitTime: 100,
      isolationLevel: READ_UNCOMMITTED,
    });
    const batches: RecordsBatch[] = response.responses[0]?.partitions[0]?.records ?? [];
    if (batches.length === 0 && ++idle > MAX_IDLE_FETCHES) throw new Error(`${topic}/${partition}: no records at offset ${next} below the end ${end}`);
    for (const batch of batches) {
      if (batch.firstOffset >= end) {
        next = end; // written after the read began: not needed
        break;
      }
      const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
      if (last < next) continue; // a batch the broker repeated from before the fetch offset
      next = last + 1n;
      if ((batch.attributes & IS_CONTROL) !== 0) {
        const values = open.get(batch.producerId);
        open.delete(batch.producerId);
        if (values !== undefined && values.length > 0 && batch.records[0]?.key?.readInt16BE(2) === COMMIT_MARKER) {
          found = true;
          value = values[values.length - 1] ?? null;
        }
        continue;
      }
      const transactional = (batch.attributes & IS_TRANSACTIONAL) !== 0;
      for (const record of batch.records) {
        if (batch.firstOffset + BigInt(record.offsetDelta) >= end || record.key === null || !record.key.equals(key)) continue;
        if (!transactional) {
          found = true;
          value = record.value;
          continue;
        }
        let values = open.get(batch.producerId);
        if (values === undefined) {
          values = [];
          open.set(batch.producerId, values);
        }
        values.push(record.value);
      }
    }
  }
  return { found, value };
}
