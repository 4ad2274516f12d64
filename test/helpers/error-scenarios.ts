// Test helper for the error-policy e2e tests (test/e2e/errors-*.test.ts): a plain table, numbered
// JSON rows, an inserter config for one topic → one table on one destination, and the checks every
// scenario ends with (exactly once: count() = uniqExact(id) = expected; dead letters read back).
import assert from 'node:assert/strict';
import { produce, readTopic, type ReadRecord } from './bus.ts';
import type { ClickHouseInstance } from './clickhouse.ts';

/** A table that deduplicates by token (exactly-once refuses one that cannot), plus `settings`. */
export const TABLE_DDL = (db: string, table: string, settings = ''): string =>
  `CREATE TABLE ${db}.${table} (id UInt64, team_id Int64, n UInt32, s String, k UInt16) ENGINE = MergeTree PARTITION BY k ORDER BY id SETTINGS non_replicated_deduplication_window = 1000${settings === '' ? '' : `, ${settings}`}`;

export interface RowOptions {
  /** Distinct partition values (column k) cycled through; default 1. */
  partitions?: number;
  /** Consecutive ids sharing a partition value; default 1. */
  run?: number;
  /** Bytes of padding in `s`. */
  pad?: number;
}

export function row(id: number, options: RowOptions = {}): Buffer {
  return Buffer.from(JSON.stringify({ id, team_id: 1 + (id % 7), n: id % 100_000, s: 'x'.repeat(options.pad ?? 16), k: Math.floor(id / (options.run ?? 1)) % (options.partitions ?? 1) }));
}

export async function produceRows(bootstrap: string, topic: string, from: number, to: number, options: RowOptions = {}, partitions = 1): Promise<void> {
  const records = [];
  for (let id = from; id < to; id++) records.push({ key: Buffer.from(String(id)), value: row(id, options), partition: id % partitions });
  await produce(bootstrap, topic, records, 1000);
}

export interface ScenarioConfig {
  bootstrap: string;
  group: string;
  topic: string;
  url: string;
  user?: string;
  password?: string;
  database: string;
  table: string;
  deadLetterTopic?: string;
  maxRows?: number;
  extra?: Record<string, unknown>;
  destination?: Record<string, unknown>;
}

export function scenarioConfig(c: ScenarioConfig): Record<string, unknown> {
  return {
    kafka: { brokers: [c.bootstrap], groupId: c.group, fetchMaxWaitMs: 100, sessionTimeoutMs: 6_000 },
    destinations: [{ id: 'a', url: c.url, database: c.database, user: c.user ?? 'default', password: c.password ?? '', ...c.destination }],
    routes: [{ topic: c.topic, table: c.table, destination: 'a', createTable: { enabled: false }, ...(c.deadLetterTopic ? { deadLetterTopic: c.deadLetterTopic } : {}) }],
    batch: { maxRows: c.maxRows ?? 2_000, maxAgeMs: 300 },
    commitIntervalMs: 300,
    retry: { baseMs: 100, factor: 2, capMs: 1_000 },
    ...c.extra,
  };
}

export async function counts(ch: ClickHouseInstance, db: string, table: string): Promise<{ rows: number; distinct: number }> {
  const [rows, distinct] = (await ch.query(`SELECT count(), uniqExact(id) FROM ${db}.${table} FORMAT TSV`)).trim().split('\t').map(Number);
  return { rows: rows ?? -1, distinct: distinct ?? -1 };
}

export async function assertExactlyOnce(ch: ClickHouseInstance, db: string, table: string, expected: number): Promise<void> {
  const { rows, distinct } = await counts(ch, db, table);
  assert.equal(distinct, expected, 'every row landed');
  assert.equal(rows, expected, 'no row landed twice');
}

/** Every dead letter in `topic` (waits at most `timeoutMs` for more than `atLeast`). */
export async function deadLetters(bootstrap: string, topic: string, atLeast: number, timeoutMs = 5_000): Promise<ReadRecord[]> {
  return readTopic(bootstrap, topic, atLeast + 1, timeoutMs).catch(() => []);
}
