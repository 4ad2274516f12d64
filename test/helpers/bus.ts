// Test helper: produce records to Kafka and read a topic back whole (with partition, offset,
// timestamp and headers), with @platformatic/kafka — the same client the inserter uses. The producer
// is idempotent (acks=all, one request in flight, sequence numbers the broker deduplicates): a retry
// after a lost acknowledgement cannot write a record twice, so a duplicate found in a topic a test
// produced is never the producer's retry.
import { Consumer, Producer } from '@platformatic/kafka';
import { stableCommittedOffsets } from '../../src/source/kafka-committed.ts';

export interface OutRecord {
  key?: Buffer | null;
  value: Buffer;
  headers?: Record<string, Buffer>;
  partition?: number;
}

export interface ReadRecord {
  topic: string;
  partition: number;
  offset: bigint;
  timestamp: bigint;
  key: Buffer | undefined;
  value: Buffer | undefined;
  headers: Map<string, string>;
}

export async function produce(bootstrap: string, topic: string, records: Iterable<OutRecord>, batchSize = 500): Promise<number> {
  // idempotent: the client then retries without bound (until the test's timeout) instead of giving up
  // and leaving the caller to re-send under a new producer id, which could duplicate.
  const producer = new Producer({ clientId: 'inserter-test-producer', bootstrapBrokers: [bootstrap], idempotent: true, acks: -1 });
  let count = 0;
  try {
    let batch: Array<Parameters<typeof producer.send>[0]['messages'][number]> = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      await producer.send({ messages: batch });
      batch = [];
    };
    for (const r of records) {
      const headers = new Map<Buffer, Buffer>();
      for (const [name, value] of Object.entries(r.headers ?? {})) headers.set(Buffer.from(name), value);
      batch.push({ topic, value: r.value, headers, ...(r.key ? { key: r.key } : {}), ...(r.partition === undefined ? {} : { partition: r.partition }) });
      count++;
      if (batch.length >= batchSize) await flush();
    }
    await flush();
  } finally {
    await producer.close();
  }
  return count;
}

/** Reads `topic` from the earliest offset until `expected` records arrived (or the timeout passes). */
export async function readTopic(bootstrap: string, topic: string, expected: number, timeoutMs = 30_000): Promise<ReadRecord[]> {
  const consumer = new Consumer({
    clientId: 'inserter-test-reader',
    groupId: `reader-${topic}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    bootstrapBrokers: [bootstrap],
    autocommit: false,
    maxWaitTime: 200,
  });
  const out: ReadRecord[] = [];
  try {
    if (expected === 0) return out;
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 200 });
    const timer = setTimeout(() => void stream.close().catch(() => undefined), timeoutMs);
    try {
      for await (const m of stream) {
        const headers = new Map<string, string>();
        for (const [k, v] of m.headerEntries) headers.set(k.toString(), v.toString());
        out.push({ topic: m.topic, partition: m.partition, offset: m.offset, timestamp: m.timestamp, key: m.key ?? undefined, value: m.value ?? undefined, headers });
        if (out.length >= expected) break;
      }
    } finally {
      clearTimeout(timer);
      await stream.close().catch(() => undefined);
    }
  } finally {
    await consumer.close(true);
  }
  return out;
}

/**
 * Reads a topic whole: every record from the earliest offset up to the log end taken at the start,
 * however many there are (duplicates included). For topics written without transactions (every
 * offset is a record); throws after `timeoutMs` naming the partitions it could not read to the end.
 */
export async function readTopicToEnd(bootstrap: string, topic: string, timeoutMs = 60_000): Promise<ReadRecord[]> {
  const ends = await endOffsets(bootstrap, topic);
  const position = ends.map(() => 0n);
  const done = (): boolean => ends.every((end, p) => (position[p] ?? 0n) >= end);
  const out: ReadRecord[] = [];
  if (done()) return out;
  const consumer = new Consumer({
    clientId: 'inserter-test-reader',
    groupId: `reader-${topic}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    bootstrapBrokers: [bootstrap],
    autocommit: false,
    maxWaitTime: 200,
  });
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 200 });
    const timer = setTimeout(() => void stream.close().catch(() => undefined), timeoutMs);
    try {
      for await (const m of stream) {
        const end = ends[m.partition] ?? 0n;
        if (m.offset < end) {
          const headers = new Map<string, string>();
          for (const [k, v] of m.headerEntries) headers.set(k.toString(), v.toString());
          out.push({ topic: m.topic, partition: m.partition, offset: m.offset, timestamp: m.timestamp, key: m.key ?? undefined, value: m.value ?? undefined, headers });
        }
        if (m.offset + 1n > (position[m.partition] ?? 0n)) position[m.partition] = m.offset + 1n;
        if (done()) break;
      }
    } finally {
      clearTimeout(timer);
      await stream.close().catch(() => undefined);
    }
  } finally {
    await consumer.close(true);
  }
  if (!done()) {
    const short = ends.flatMap((end, p) => ((position[p] ?? 0n) < end ? [`partition ${p} at ${position[p] ?? 0n} of ${end}`] : []));
    throw new Error(`readTopicToEnd ${topic}: not read to the end within ${timeoutMs} ms (${short.join(', ')})`);
  }
  return out;
}

/** The group's committed position per partition (-1 when none), once no transaction committing one is open. */
export function committedOffsets(bootstrap: string, groupId: string, topic: string, partitions: number): Promise<bigint[]> {
  return stableCommittedOffsets({ brokers: [bootstrap], clientId: 'inserter-test-offsets' }, groupId, topic, partitions, AbortSignal.timeout(60_000));
}

/** The log end offset per partition. */
export async function endOffsets(bootstrap: string, topic: string): Promise<bigint[]> {
  const consumer = new Consumer({ clientId: 'inserter-test-offsets', groupId: `end-${Date.now()}`, bootstrapBrokers: [bootstrap] });
  try {
    const result = await consumer.listOffsets({ topics: [topic] });
    return result.get(topic) ?? [];
  } finally {
    await consumer.close(true);
  }
}
