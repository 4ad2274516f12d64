// The PostHog DDL (dev/posthog/ddl/*.sql) on the real ClickHouse engine (chlocal): all eight tables
// create, take generated messages as JSONEachRow with unknown fields skipped (as the Kafka engine
// does), fill their MATERIALIZED columns, and deduplicate a repeated insert_deduplication_token.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { loadDdl, posthogTables, tableForTopic, topicForTable } from '../../dev/posthog/ddl.ts';
import { ALL_TOPICS, TOPICS, corrupt, generate } from '../../dev/posthog/generator.ts';
import type { ClickHouseInstance } from '../helpers/clickhouse.ts';
import { startClickHouse } from '../helpers/clickhouse.ts';

const DB = 'posthog_ddl';
const ROWS = 100;

let ch: ClickHouseInstance;

function rowsOf(topic: string, options: { seed?: number; count?: number; plugins?: number; baseTime?: number } = {}): string {
  const messages = generate(topic, {
    seed: options.seed ?? 3,
    count: options.count ?? ROWS,
    teams: 50,
    bigRecordingFraction: 0.01,
    plugins: options.plugins ?? 30,
    ...(options.baseTime === undefined ? {} : { baseTime: options.baseTime }),
  });
  // Add the Kafka metadata columns as the inserter does (a missing _timestamp is 1970, which the
  // dead letter queue's TTL on _timestamp would delete at the next merge).
  const now = Math.floor(Date.now() / 1000);
  return [...messages].map((m, i) => `{"_timestamp":${now},"_offset":${i},${m.value.toString('utf8').slice(1)}`).join('\n');
}

async function insert(table: string, rows: string, settings: Record<string, string> = {}): Promise<void> {
  // optimize_on_insert=0: count raw rows. (By default ClickHouse collapses rows with equal sorting keys
  // within one inserted block for Replacing/Aggregating engines — the Kafka engine's inserts too.)
  const all = { input_format_skip_unknown_fields: '1', async_insert: '0', optimize_on_insert: '0', ...settings };
  const list = Object.entries(all)
    .map(([k, v]) => `${k} = '${v}'`)
    .join(', ');
  await ch.query(`INSERT INTO ${DB}.${table} SETTINGS ${list} FORMAT JSONEachRow\n${rows}\n`);
}

async function scalar(sql: string): Promise<string> {
  return (await ch.query(sql)).trim();
}

void describe('PostHog DDL on ClickHouse', () => {
  before(async () => {
    ch = await startClickHouse();
    await ch.query(`CREATE DATABASE ${DB}`);
    for (const table of posthogTables) await ch.query(await loadDdl(table, DB));
    // CREATE TABLE IF NOT EXISTS: running the DDL again is harmless.
    for (const table of posthogTables) await ch.query(await loadDdl(table, DB));
  });

  after(async () => {
    await ch.stop();
  });

  void it('creates all eight tables with the deduplication window', async () => {
    const tables = (await ch.query(`SELECT name FROM system.tables WHERE database = '${DB}' ORDER BY name`)).trim().split('\n');
    assert.deepEqual(tables, [...posthogTables].sort());
    for (const table of posthogTables) {
      const ddl = await scalar(`SELECT create_table_query FROM system.tables WHERE database = '${DB}' AND name = '${table}'`);
      assert.match(ddl, /non_replicated_deduplication_window = 1000/, table);
    }
  });

  for (const table of posthogTables) {
    void it(`${table}: ${ROWS} generated rows insert as JSONEachRow`, async () => {
      const topic = topicForTable[table];
      assert.ok(topic !== undefined);
      await insert(table, rowsOf(topic));
      assert.equal(await scalar(`SELECT count() FROM ${DB}.${table}`), String(ROWS));
      assert.equal(await scalar(`SELECT countIf(team_id <= 0) FROM ${DB}.${table}`), '0');
    });
  }

  void it('fills the materialized columns', async () => {
    assert.equal(await scalar(`SELECT countIf(length(\`$session_id\`) = 36) FROM ${DB}.events`), String(ROWS));
    const grouped = Number(await scalar(`SELECT countIf(\`$group_0\` != '') FROM ${DB}.events`));
    const withGroup0 = Number(await scalar(`SELECT countIf(group0_properties != '') FROM ${DB}.events`));
    assert.equal(grouped, withGroup0);
    assert.ok(grouped > 0);
    const fulls = Number(await scalar(`SELECT sum(has_full_snapshot) FROM ${DB}.session_recording_events`));
    assert.ok(fulls > 0 && fulls < ROWS, `has_full_snapshot ${fulls}`);
    // app_metrics: job_id null → '', and the error fields PostHog omits take their defaults.
    assert.equal(await scalar(`SELECT countIf(job_id != '') FROM ${DB}.app_metrics`), '0');
    assert.equal(await scalar(`SELECT countIf(failures = 0 AND error_uuid != toUUID('00000000-0000-0000-0000-000000000000')) FROM ${DB}.app_metrics`), '0');
  });

  void it('corrupt.badColumnValue / badTimestamp are rejected by ClickHouse; a JSON array is not', async () => {
    for (const topic of ALL_TOPICS) {
      const table = tableForTopic[topic];
      assert.ok(table !== undefined);
      for (const bad of [corrupt.badColumnValue(topic), corrupt.badTimestamp(topic)]) {
        await assert.rejects(insert(table, bad.value.toString('utf8')), /Code: \d+/, `${topic}: ${bad.value.toString('utf8').slice(0, 80)}`);
      }
    }
    // JSONEachRow also accepts `[{...}]` (an array of rows): ClickHouse alone would not flag it.
    await ch.query(`CREATE TABLE ${DB}.groups_array AS ${DB}.groups`);
    await insert('groups_array', corrupt.jsonArray(TOPICS.groups).value.toString('utf8'));
    assert.equal(await scalar(`SELECT count() FROM ${DB}.groups_array`), '1');
  });

  void it('drops a repeated insert_deduplication_token', async () => {
    const rows = rowsOf(TOPICS.groups, { seed: 99, count: 10 });
    await insert('groups', rows, { insert_deduplication_token: 'tok-1' });
    await insert('groups', rows, { insert_deduplication_token: 'tok-1' });
    assert.equal(await scalar(`SELECT count() FROM ${DB}.groups`), String(ROWS + 10));
  });

  void it('plugin_log_entries: one block spanning more than 100 plugin_ids is rejected', async () => {
    const rows = rowsOf(TOPICS.pluginLogEntries, { seed: 5, count: 2000, plugins: 150 });
    await assert.rejects(insert('plugin_log_entries', rows), /TOO_MANY_PARTS|max_partitions_per_insert_block/);
  });

  void it('TTL: recordings timestamped beyond 3 weeks ago vanish on merge (why the default timeline is in the future)', async () => {
    await ch.query(`CREATE TABLE ${DB}.rec_ttl AS ${DB}.session_recording_events`);
    const rows = rowsOf(TOPICS.sessionRecordingEvents, { seed: 8, count: 20, baseTime: Date.UTC(2023, 0, 1) });
    await insert('rec_ttl', rows);
    await ch.query(`OPTIMIZE TABLE ${DB}.rec_ttl FINAL`);
    assert.equal(await scalar(`SELECT count() FROM ${DB}.rec_ttl`), '0');
  });
});
