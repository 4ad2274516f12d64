// The destination's live schema is the truth: a missing table is created (the default shape keeps
// the Kafka metadata, the team and the whole message in a JSON column), metadata columns are
// filled exactly, and a column added to a live table is filled from then on — with no restart.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { produce, readTopic } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { REPO_ROOT, startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

let bootstrap: string;
let ch: ClickHouseInstance;
let inserter: InserterProcess | undefined;
const raw = uniqueTopic('raw');
const evolving = uniqueTopic('evolving');
const templated = uniqueTopic('templated');

before(async () => {
  bootstrap = await sharedKafka();
  ch = await startClickHouse();
  await ch.query('CREATE DATABASE app');
  await ch.query('CREATE TABLE app.evolving (a String, team_id Int64, _offset UInt64) ENGINE = MergeTree ORDER BY tuple() SETTINGS non_replicated_deduplication_window = 1000');
  await createTopic(bootstrap, raw, 2);
  await createTopic(bootstrap, evolving, 1);
  await createTopic(bootstrap, templated, 1);
  inserter = await startInserter({
    kafka: { brokers: [bootstrap], groupId: `${raw}-group`, fetchMaxWaitMs: 100 },
    destinations: [{ id: 'a', url: ch.url, database: 'app' }],
    routes: [
      { topic: raw, table: 'raw_events', destination: 'a' },
      { topic: evolving, table: 'evolving', destination: 'a' },
      { topic: templated, table: 'groups', destination: 'a', createTable: { ddlFile: `${REPO_ROOT}/dev/posthog/ddl/groups.sql` } },
    ],
    batch: { maxRows: 100, maxAgeMs: 150 },
    schemaRefreshMs: 300,
  });
});

after(async () => {
  await inserter?.stop();
  await ch?.stop();
});

const rows = async (sql: string): Promise<Array<Record<string, unknown>>> =>
  (await ch.query(`${sql} FORMAT JSONEachRow`))
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('a missing table is created with metadata columns, the team and the whole message', async () => {
  await produce(bootstrap, raw, [
    { key: Buffer.from('k-1'), value: Buffer.from('{"team_id":5,"event":"x","nested":{"a":[1,2]}}'), headers: { source: Buffer.from('web'), trace: Buffer.from('t1') }, partition: 1 },
    { key: null, value: Buffer.from('{"team_id":6,"event":"y"}'), partition: 0 },
  ]);
  await waitFor(async () => (await rows('SELECT count() AS n FROM app.raw_events'))[0]?.n === '2', 'two rows in the created table', 30_000);
  const [sent] = (await readTopic(bootstrap, raw, 2)).filter((r) => r.partition === 1);
  assert.ok(sent);
  const [row] = await rows(
    'SELECT team_id, _topic, _partition, _offset, _key, toUnixTimestamp(_timestamp) AS ts, toUnixTimestamp64Milli(_timestamp_ms) AS ts_ms, _headers.name AS hn, _headers.value AS hv, _message.event AS event, toJSONString(_message) AS message FROM app.raw_events WHERE team_id = 5',
  );
  // 64-bit integers come back quoted, as ClickHouse's JSON output does by default.
  assert.deepEqual(row, {
    team_id: '5',
    _topic: raw,
    _partition: '1',
    _offset: String(sent.offset),
    _key: 'k-1',
    ts: Number(sent.timestamp / 1000n),
    ts_ms: String(sent.timestamp),
    hn: ['source', 'trace'],
    hv: ['web', 't1'],
    event: 'x',
    message: '{"event":"x","nested":{"a":["1","2"]},"team_id":"5"}',
  });
});

test('a column added to a live table is filled from then on', async () => {
  await produce(bootstrap, evolving, [{ value: Buffer.from('{"a":"before","b":"lost","team_id":1}') }]);
  await waitFor(async () => (await rows('SELECT count() AS n FROM app.evolving'))[0]?.n === '1', 'first row', 30_000);
  await ch.query('ALTER TABLE app.evolving ADD COLUMN b String');
  await ch.query('ALTER TABLE app.evolving ADD COLUMN _partition UInt64 DEFAULT 99');
  await new Promise((r) => setTimeout(r, 700)); // past schemaRefreshMs
  await produce(bootstrap, evolving, [{ value: Buffer.from('{"a":"after","b":"kept","team_id":1}') }]);
  await waitFor(async () => (await rows('SELECT count() AS n FROM app.evolving'))[0]?.n === '2', 'second row', 30_000);
  assert.deepEqual(await rows('SELECT a, b, _offset, _partition FROM app.evolving ORDER BY _offset'), [
    { a: 'before', b: '', _offset: '0', _partition: '99' },
    { a: 'after', b: 'kept', _offset: '1', _partition: '0' },
  ]);
});

test('a missing table is created from the DDL template of its route', async () => {
  await produce(bootstrap, templated, [{ value: Buffer.from('{"group_type_index":0,"group_key":"acme","team_id":2,"group_properties":"{}","created_at":"2030-01-01 00:00:00","version":4}') }]);
  await waitFor(async () => (await rows('SELECT count() AS n FROM app.groups'))[0]?.n === '1', 'row in the templated table', 30_000);
  const [meta] = await rows("SELECT engine, sorting_key FROM system.tables WHERE database = 'app' AND name = 'groups'");
  assert.deepEqual(meta, { engine: 'ReplacingMergeTree', sorting_key: 'team_id, group_type_index, group_key' });
  assert.deepEqual(await rows('SELECT group_key, team_id, _offset FROM app.groups'), [{ group_key: 'acme', team_id: '2', _offset: '0' }]);
});
