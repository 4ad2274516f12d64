// Owns the reads `inserter verify` makes: a whole Kafka topic from its earliest offset to the log end
// (throwaway group, raw Buffers, nothing committed), a group's committed offsets, and a table's
// (id, team) rows streamed from ClickHouse with the destination's own credentials.
import { readFileSync } from 'node:fs';
import { createClient } from '@clickhouse/client';
import type { DestinationConfig } from '../config/load.ts';
import type { RowTally } from './verify-check.ts';
import { readTopic, type KafkaAccess } from '../source/kafka-dlq-reader.ts';
import { stableCommittedOffsets } from '../source/kafka-committed.ts';

export type { KafkaAccess } from '../source/kafka-dlq-reader.ts';
export { topicExists } from '../source/kafka-dlq-reader.ts';

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
}

/**
 * Calls `onRecord` for every record of `topic` from the earliest offset up to the log end taken at
 * the start (records produced meanwhile may or may not be seen). Throws after `timeoutMs`. The same
 * reader as the `dlq` commands (read_committed; a tail of transaction markers ends by fetch position).
 */
export async function readWholeTopic(kafka: KafkaAccess, topic: string, onRecord: (record: TopicRecord) => void, timeoutMs: number): Promise<TopicEnds> {
  return { logEnd: await readTopic(kafka, topic, { timeoutMs }, onRecord) };
}

/** The group's committed offset per partition (-1 when none), once no transaction committing one is open. */
export function committedOffsets(kafka: KafkaAccess, groupId: string, topic: string, partitions: number): Promise<bigint[]> {
  return stableCommittedOffsets({ ...kafka, clientId: `${kafka.clientId}-verify` }, groupId, topic, partitions, AbortSignal.timeout(60_000));
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
  if (destination.kind !== 'clickhouse') throw new Error(`destination ${destination.id} is a ${destination.kind} destination: verify reads ClickHouse destinations only`);
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
