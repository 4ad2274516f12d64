// Dedup safety against real ClickHouse and Kafka: a MergeTree table with
// non_replicated_deduplication_window = 0 cannot deduplicate by token, so exactly-once refuses it
// (no_deduplication: nothing inserted, nothing committed, the destination paused with an error that
// names the table and the setting); after `ALTER TABLE … MODIFY SETTING` the same process inserts
// every row exactly once without a restart. A route with `exactlyOnce: false` inserts into such a
// table, at-least-once, and says so in a warning and its metrics. The sink reads the engine and the
// effective window of each kind of table from the real server, and a table's definition version
// with the materialized views reading from it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig } from '../../src/config/load.ts';
import { ClickHouseSink } from '../../src/sink/clickhouse/sink.ts';
import { committedOffsets, produce } from '../helpers/bus.ts';
import { freePort, metricSample as sample, useScenarioStack } from '../helpers/error-scenarios.ts';
import { waitFor, type InserterProcess } from '../helpers/inserter.ts';

const ROWS = 300;
const stack = useScenarioStack('dedup-safety', { database: 'app', table: false, partitions: 0 });
// The local server sets non_replicated_deduplication_window = 1000 for every table (like Cloud), so
// the table's own 0 must win over it.
const ddl = (table: string): string => `CREATE TABLE app.${table} (id UInt64, team_id Int64, _offset UInt64) ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 0`;

const counts = async (table: string): Promise<string> => (await stack.ch.query(`SELECT count(), uniqExact(id) FROM app.${table} FORMAT TSV`)).trim();
const rows = (n: number): Array<{ key: Buffer; value: Buffer; partition: number }> =>
  Array.from({ length: n }, (_, id) => ({ key: Buffer.from(String(id)), value: Buffer.from(JSON.stringify({ id, team_id: 1 })), partition: id % 2 }));

async function start(topic: string, table: string, route: Record<string, unknown>, metricsPort: number): Promise<InserterProcess> {
  return stack.startWith({
    kafka: { brokers: [stack.bootstrap], groupId: `${topic}-group`, fetchMaxWaitMs: 100 },
    destinations: [{ id: 'a', url: stack.ch.url, database: 'app' }],
    routes: [{ name: table, topic, table, destination: 'a', deadLetterTopic: `${topic}.dlq`, createTable: { enabled: false }, ...route }],
    batch: { maxRows: 100, maxAgeMs: 200 },
    commitIntervalMs: 200,
    errorPolicy: { defaults: { no_deduplication: { baseMs: 100, capMs: 300, maxAttempts: 2, pauseMs: 500 } } },
    telemetry: { metricsListen: `127.0.0.1:${metricsPort}` },
  });
}

test('a table that cannot deduplicate is refused until its window is raised, then every row lands once without a restart', async () => {
  const { bootstrap, ch } = stack;
  const { topic } = await stack.addTopic('dedup-refused', 2);
  await ch.query(ddl('refused'));
  const port = await freePort();
  const p = await start(topic, 'refused', {}, port);
  await produce(bootstrap, topic, rows(ROWS));

  await waitFor(async () => (await sample(port, 'inserter_destination_paused{destination="a",class="no_deduplication"}')) === 1, 'the destination paused for no_deduplication', 60_000);
  const log = await p.log();
  assert.match(log, /"class":"no_deduplication"/);
  assert.match(log, /table app\.refused on a cannot deduplicate inserts by token/);
  assert.match(log, /ALTER TABLE app\.refused MODIFY SETTING non_replicated_deduplication_window = 1000/);
  assert.equal(await sample(port, 'inserter_table_deduplicates{destination="a",table="app.refused"}'), 0);
  assert.equal(await sample(port, 'inserter_route_exactly_once{route="refused"}'), 1);
  assert.equal(await counts('refused'), '0\t0', 'nothing inserted into the refused table');
  for (const offset of await committedOffsets(bootstrap, `${topic}-group`, topic, 2)) assert.ok(offset <= 0n, `nothing committed past the refused rows (${offset})`);

  await ch.query('ALTER TABLE app.refused MODIFY SETTING non_replicated_deduplication_window = 1000');
  await waitFor(async () => (await counts('refused')) === `${ROWS}\t${ROWS}`, 'every row after the fix', 60_000).catch(async (error: unknown) => {
    throw new Error(`${String(error)}: ${await counts('refused')}`);
  });
  await waitFor(async () => (await committedOffsets(bootstrap, `${topic}-group`, topic, 2)).reduce((a, b) => a + b, 0n) === BigInt(ROWS), 'offsets committed to the end', 30_000);
  await waitFor(async () => (await sample(port, 'inserter_destination_paused{destination="a",class="no_deduplication"}')) === 0, 'the destination resumed', 10_000);
  assert.equal(await sample(port, 'inserter_table_deduplicates{destination="a",table="app.refused"}'), 1);
  assert.equal(await counts('refused'), `${ROWS}\t${ROWS}`, 'exactly once');
  assert.equal(p.child.exitCode, null, 'the same process, never restarted');
});

test('a route with exactlyOnce: false inserts into such a table, at-least-once, and says so', async () => {
  const { bootstrap, ch } = stack;
  const { topic } = await stack.addTopic('dedup-loose', 2);
  await ch.query(ddl('loose'));
  const port = await freePort();
  const p = await start(topic, 'loose', { exactlyOnce: false }, port);
  await produce(bootstrap, topic, rows(ROWS));

  await waitFor(async () => (await counts('loose')) === `${ROWS}\t${ROWS}`, 'every row in the at-least-once table', 60_000).catch(async (error: unknown) => {
    throw new Error(`${String(error)}: ${await counts('loose')}`);
  });
  assert.equal(await sample(port, 'inserter_route_exactly_once{route="loose"}'), 0);
  assert.equal(await sample(port, 'inserter_table_deduplicates{destination="a",table="app.loose"}'), 0);
  const warnings = (await p.log()).split('\n').filter((l) => l.includes('at-least-once') && l.includes('"table":"app.loose"'));
  assert.equal(warnings.length, 1, 'one warning for the table');
  assert.doesNotMatch(await p.log(), /no_deduplication/);
});

test("the sink reads each table's engine and effective window from the real server", async () => {
  const { ch } = stack;
  await ch.query('CREATE DATABASE kinds');
  const statements = [
    'CREATE TABLE kinds.server_default (id UInt64) ENGINE = MergeTree ORDER BY id',
    'CREATE TABLE kinds.own_zero (id UInt64) ENGINE = ReplacingMergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 0',
    'CREATE TABLE kinds.buffer AS kinds.server_default ENGINE = Buffer(kinds, server_default, 1, 10, 100, 10000, 1000000, 10000000, 100000000)',
    'CREATE TABLE kinds.null (id UInt64) ENGINE = Null',
    'CREATE TABLE kinds.memory (id UInt64) ENGINE = Memory',
    'CREATE VIEW kinds.view AS SELECT id FROM kinds.server_default',
  ];
  for (const sql of statements) await ch.query(sql);
  const config = buildConfig(
    {
      kafka: { brokers: ['127.0.0.1:9092'] },
      destinations: [{ id: 'a', url: ch.url, user: ch.admin.name, password: ch.admin.password, database: 'kinds' }],
      routes: [{ topic: 't', table: 'x', destination: 'a' }],
    },
    '/tmp',
  );
  const sink = new ClickHouseSink(config.destinations[0] as (typeof config.destinations)[number]);
  try {
    const read = async (table: string): Promise<[string | undefined, boolean | undefined, number | undefined]> => {
      const d = (await sink.describe({ database: 'kinds', table }))?.deduplication;
      return [d?.engine, d?.byToken, d?.windowBlocks];
    };
    const serverDefault = Number((await ch.query("SELECT value FROM system.merge_tree_settings WHERE name = 'non_replicated_deduplication_window'")).trim());
    assert.deepEqual(await read('server_default'), ['MergeTree', serverDefault > 0, serverDefault]);
    assert.deepEqual(await read('own_zero'), ['ReplacingMergeTree', false, 0]);
    for (const [table, engine] of [
      ['buffer', 'Buffer'],
      ['null', 'Null'],
      ['memory', 'Memory'],
      ['view', 'View'],
    ])
      assert.deepEqual(await read(table as string), [engine, false, undefined], table);
    await ch.query('ALTER TABLE kinds.own_zero MODIFY SETTING non_replicated_deduplication_window = 7');
    assert.deepEqual(await read('own_zero'), ['ReplacingMergeTree', true, 7]);

    // A materialized view reading from a table is part of its definition's version: one created
    // or dropped between an insert and its retry can change the verdict on a row.
    const version = async (): Promise<string | undefined> => (await sink.describe({ database: 'kinds', table: 'server_default' }))?.version;
    // A plain MergeTree's version is its metadata file's time in seconds: until that file is 2 s
    // old a read's version equals no other (a change and its revert could repeat the second), then
    // it settles on that time.
    const settledVersion = async (): Promise<string> => {
      let settled: string | undefined;
      const differing: string[] = [];
      await waitFor(async () => {
        const [a, b] = [await version(), await version()];
        // Both unsettled, or the 2 s passing between the two reads (unsettled, then that time settled).
        const settling = a?.includes('~') === true && (b?.includes('~') === true || b === a.slice(0, a.indexOf('~')));
        if (a !== b && !settling) differing.push(`${a} / ${b}`);
        settled = a === b ? a : undefined;
        return settled !== undefined;
      }, 'the version settles');
      assert.deepEqual(differing, [], 'two reads that differ are both unsettled');
      return settled ?? '';
    };
    const before = await settledVersion();
    assert.ok(!before.includes('+') && !before.includes('~'), `no view yet, settled: ${before}`);
    await ch.query('CREATE TABLE kinds.copy (id UInt64) ENGINE = MergeTree ORDER BY id');
    await ch.query('CREATE MATERIALIZED VIEW kinds.copy_mv TO kinds.copy AS SELECT id FROM kinds.server_default');
    const withView = await version();
    assert.match(withView ?? '', /\+kinds\.copy_mv@[0-9a-f-]{36}$/, 'the view named with its uuid');
    assert.equal(withView?.slice(0, before.length), before, 'the table itself did not change');
    await ch.query('DROP VIEW kinds.copy_mv');
    assert.equal(await version(), before, 'dropped: the version is the table alone again');
    await ch.query('ALTER TABLE kinds.server_default ADD COLUMN extra UInt8');
    const altered = await settledVersion();
    assert.ok(altered !== before && !altered.includes('~'), `settled on the new time: ${altered} (was ${before})`);
  } finally {
    await sink.close();
  }
});
