// Owns the reads `inserter verify` makes: a whole Kafka topic from its earliest offset to the log end
// (throwaway group, raw Buffers, nothing committed), a group's committed offsets, and a table's
// (id, team) rows streamed from ClickHouse with the destination's own credentials.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createClient } from '@clickhouse/client';
import { Admin, Consumer } from '@platformatic/kafka';
import type { DestinationConfig } from '../config/load.ts';
import type { RowTally } from './verify-check.ts';

export interface KafkaAccess {
  readonly brokers: readonly string[];
  readonly clientId: string;
}

export interface TopicRecord {
  readonly partition: number;
  readonly offset: bigint;
  readonly key: Buffer | undefined;
  readonly value: Buffer | undefined;
  readonly headers: ReadonlyArray<readonly [Buffer, Buffer]>;
}

export interface TopicEnds {
  /** Log end offset per partition, as read before consuming. */
  readonly logEnd: readonly bigint[];
  readonly earliest: readonly bigint[];
}

const throwaway = (what: string): string => `inserter-verify-${what}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;

export async function topicExists(kafka: KafkaAccess, topic: string): Promise<boolean> {
  const admin = new Admin({ clientId: `${kafka.clientId}-verify`, bootstrapBrokers: [...kafka.brokers] });
  try {
    return (await admin.listTopics()).includes(topic);
  } finally {
    await admin.close();
  }
}

/**
 * Calls `onRecord` for every record of `topic` from the earliest offset up to the log end taken at
 * the start (records produced meanwhile may or may not be seen). Throws after `timeoutMs`.
 */
export async function readWholeTopic(kafka: KafkaAccess, topic: string, onRecord: (record: TopicRecord) => void, timeoutMs: number): Promise<TopicEnds> {
  const consumer = new Consumer({ clientId: `${kafka.clientId}-verify`, groupId: throwaway('read'), bootstrapBrokers: [...kafka.brokers], autocommit: false, maxWaitTime: 200 });
  try {
    const logEnd = (await consumer.listOffsets({ topics: [topic] })).get(topic) ?? [];
    const earliest = (await consumer.listOffsets({ topics: [topic], timestamp: -2n })).get(topic) ?? [];
    const next = earliest.map((o) => o);
    const done = (fetched: (p: number) => bigint): boolean => logEnd.every((end, p) => (next[p] ?? 0n) >= end || fetched(p) >= end);
    if (done(() => -1n)) return { logEnd, earliest };
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxWaitTime: 200 });
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
        // A tail of control records is never delivered: then the fetch position tells, once drained.
        const drained = (p: number): bigint => (stream.readableLength === 0 ? (stream.offsetsToFetch.get(`${topic}:${p}`) ?? -1n) : -1n);
        const onData = (m: { partition: number; offset: bigint; key: Buffer | undefined; value: Buffer | undefined; headerEntries: Array<[Buffer, Buffer]> }): void => {
          const end = logEnd[m.partition];
          if (end === undefined || m.offset >= end) return;
          onRecord({ partition: m.partition, offset: m.offset, key: m.key ?? undefined, value: m.value ?? undefined, headers: m.headerEntries });
          if (m.offset + 1n > (next[m.partition] ?? 0n)) next[m.partition] = m.offset + 1n;
          if (done(() => -1n)) finish();
        };
        const poll = setInterval(() => {
          if (done(drained)) finish();
        }, 250);
        const timer = setTimeout(() => finish(new Error(`reading ${topic} to its log end took longer than ${timeoutMs} ms (at ${next.join(',')} of ${logEnd.join(',')})`)), timeoutMs);
        stream.on('data', onData);
        stream.on('error', finish);
      });
    } finally {
      await stream.close().catch(() => undefined);
    }
    return { logEnd, earliest };
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
}

/** The group's committed offset per partition (-1 when none). */
export async function committedOffsets(kafka: KafkaAccess, groupId: string, topic: string, partitions: number): Promise<bigint[]> {
  const consumer = new Consumer({ clientId: `${kafka.clientId}-verify`, groupId, bootstrapBrokers: [...kafka.brokers], autocommit: false });
  try {
    const result = await consumer.listCommittedOffsets({ topics: [{ topic, partitions: [...Array(partitions).keys()] }] });
    return result.get(topic) ?? [];
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
}

export interface RowsQuery {
  readonly database: string;
  readonly table: string;
  readonly idColumn: string;
  /** Column holding the team id; undefined for a fixed-destination route. */
  readonly teamColumn: string | undefined;
}

const quote = (name: string): string => `\`${name.replace(/\\/g, '\\\\').replace(/`/g, '\\`')}\``;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids compare as text; a UUID in any case compares as ClickHouse prints it (lower case). */
export function normalizeId(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const text = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean' ? String(value) : JSON.stringify(value);
  return UUID.test(text) ? text.toLowerCase() : text;
}

/**
 * Streams `SELECT id, team FROM db.table` into `tally`. Returns a note when the table (or database)
 * does not exist — then no rows are there — and throws on any other error (messages never carry the
 * password: it is only in the client's Authorization header).
 */
export async function readRows(destination: DestinationConfig, q: RowsQuery, tally: RowTally, timeoutMs: number): Promise<string | undefined> {
  const tls = destination.tls?.caFile
    ? destination.tls.certFile && destination.tls.keyFile
      ? { ca_cert: readFileSync(destination.tls.caFile), cert: readFileSync(destination.tls.certFile), key: readFileSync(destination.tls.keyFile) }
      : { ca_cert: readFileSync(destination.tls.caFile) }
    : undefined;
  const client = createClient({
    url: destination.url,
    username: destination.user,
    password: destination.password.reveal(),
    database: destination.database,
    request_timeout: timeoutMs,
    application: 'inserter-verify',
    ...(tls ? { tls } : {}),
  });
  try {
    const team = q.teamColumn === undefined ? 'NULL' : `toString(${quote(q.teamColumn)})`;
    const result = await client.query({
      query: `SELECT toString(${quote(q.idColumn)}), ${team} FROM ${quote(q.database)}.${quote(q.table)}`,
      format: 'JSONCompactEachRow',
    });
    for await (const rows of result.stream<[string, string | null]>()) {
      for (const row of rows) {
        const [id, teamText] = row.json();
        tally.add(normalizeId(id) ?? '', teamText === null || teamText === '' ? undefined : Number(teamText));
      }
    }
    return undefined;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === '60' || code === '81') return `${q.database}.${q.table} does not exist`;
    throw new Error(`reading ${q.database}.${q.table} on destination ${destination.id} failed: ${(error as Error).message}`, { cause: error });
  } finally {
    await client.close();
  }
}
