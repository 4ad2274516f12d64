// Owns reading a topic for the `dlq` commands: every record (read_committed) from a start offset to
// the end taken when the read begins, under a throwaway consumer group that never commits, so the
// dead-letter topics, the replay ledger and any group's positions are left as they were.
import { randomBytes } from 'node:crypto';
import { Admin, Consumer, FetchIsolationLevels } from '@platformatic/kafka';
import type { RawDeadLetter } from '../deadletter/record.ts';
import { kafkaClientOptions, type KafkaConnection } from './kafka-connection.ts';

export interface KafkaAccess {
  readonly brokers: readonly string[];
  /** TLS and SASL (source/kafka-connection.ts); none: plaintext. */
  readonly connection?: KafkaConnection;
  readonly clientId: string;
}

export interface ReadRange {
  /** Only this partition (the others are not read). */
  readonly partition?: number;
  /** Start here (default: the earliest offset still in the log). */
  readonly from?: bigint;
  /** Stop after this many records (e.g. 1 for `inspect`). */
  readonly max?: number;
  readonly timeoutMs: number;
}

interface StreamMessage {
  topic: string;
  partition: number;
  offset: bigint;
  timestamp: bigint;
  key: Buffer | undefined;
  value: Buffer | undefined;
  headerEntries: Array<[Buffer, Buffer]>;
}

export async function topicExists(kafka: KafkaAccess, topic: string): Promise<boolean> {
  const admin = new Admin({ clientId: `${kafka.clientId}-dlq`, ...kafkaClientOptions(kafka) });
  try {
    return (await admin.listTopics()).includes(topic);
  } finally {
    await admin.close();
  }
}

/** Calls `onRecord` per record in offset order per partition; returns the end offsets it read to. */
export async function readTopic(kafka: KafkaAccess, topic: string, range: ReadRange, onRecord: (record: RawDeadLetter) => void): Promise<bigint[]> {
  const groupId = `inserter-dlq-read-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const consumer = new Consumer({ clientId: `${kafka.clientId}-dlq`, groupId, ...kafkaClientOptions(kafka), autocommit: false, maxWaitTime: 200, isolationLevel: FetchIsolationLevels.READ_COMMITTED });
  try {
    const ends = (await consumer.listOffsets({ topics: [topic] })).get(topic) ?? [];
    const earliest = (await consumer.listOffsets({ topics: [topic], timestamp: -2n })).get(topic) ?? [];
    const next = ends.map((end, p) => {
      if (range.partition !== undefined && p !== range.partition) return end;
      const first = earliest[p] ?? 0n;
      return range.from !== undefined && range.from > first ? range.from : first;
    });
    let seen = 0;
    const done = (fetched: (p: number) => bigint): boolean => (range.max !== undefined && seen >= range.max) || ends.every((end, p) => (next[p] ?? end) >= end || fetched(p) >= end);
    if (done(() => -1n)) return ends;
    const offsets = next.map((offset, partition) => ({ topic, partition, offset }));
    const stream = await consumer.consume({ topics: [topic], mode: 'manual', offsets, autocommit: false, maxWaitTime: 200, isolationLevel: FetchIsolationLevels.READ_COMMITTED });
    try {
      await new Promise<void>((resolve, reject) => {
        const finish = (error?: Error): void => {
          clearInterval(poll);
          clearTimeout(timer);
          stream.off('data', onData);
          stream.off('error', finish);
          if (error) reject(error);
          else resolve();
        };
        // Transaction markers at a partition's tail are never delivered: the fetch position tells.
        const drained = (p: number): bigint => (stream.readableLength === 0 ? (stream.offsetsToFetch.get(`${topic}:${p}`) ?? -1n) : -1n);
        const onData = (m: StreamMessage): void => {
          const end = ends[m.partition];
          const start = next[m.partition];
          if (end === undefined || start === undefined || m.offset >= end || m.offset < start || done(() => -1n)) return;
          next[m.partition] = m.offset + 1n;
          seen++;
          onRecord({ topic, partition: m.partition, offset: m.offset, timestamp: m.timestamp, key: m.key ?? undefined, value: m.value ?? undefined, headers: m.headerEntries });
          if (done(() => -1n)) finish();
        };
        const poll = setInterval(() => {
          if (done(drained)) finish();
        }, 100);
        const timer = setTimeout(() => finish(new Error(`reading ${topic} to its end took longer than ${range.timeoutMs} ms (at ${next.join(',')} of ${ends.join(',')})`)), range.timeoutMs);
        stream.on('data', onData);
        stream.on('error', finish);
      });
    } finally {
      await stream.close().catch(() => undefined);
    }
    return ends;
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
}
