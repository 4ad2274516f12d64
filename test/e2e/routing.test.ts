// Per-team routing to clusters loaded from a real HTTP destinations API: rows land in the cluster
// mapped for their team and no other; a team the API does not know yet is held (nothing
// dead-lettered, never guessed) and lands once the API maps it; a destination with a wrong password
// is paused, not dead-lettered, and everything lands exactly once after the API rotates the
// password — without a restart. The passwords and the API token never appear in logs or dead letters.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { committedOffsets, endOffsets, produce, readTopic } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { FakeDestinationsApi, type ApiDocument } from '../helpers/destinations-api.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const OLD_PASSWORD = 'canary-old-5b1d9e';
const NEW_PASSWORD = 'canary-new-c04a7f';
const API_TOKEN = 'canary-token-e93b21';
const PER_TEAM = 150;
let bootstrap: string;
let a: ClickHouseInstance;
let b: ClickHouseInstance;
let api: FakeDestinationsApi;
let inserter: InserterProcess | undefined;
const topic = uniqueTopic('routing');
const ddl = 'CREATE TABLE app.events (uuid UUID, team_id Int64, _offset UInt64) ENGINE = MergeTree ORDER BY uuid SETTINGS non_replicated_deduplication_window = 1000';

before(async () => {
  bootstrap = await sharedKafka();
  [a, b] = await Promise.all([startClickHouse(), startClickHouse({ users: [{ name: 'ingest', password: NEW_PASSWORD }] })]);
  for (const ch of [a, b]) {
    await ch.query('CREATE DATABASE app');
    await ch.query(ddl);
  }
  await createTopic(bootstrap, topic, 3);
});

after(async () => {
  await inserter?.stop();
  await api?.stop();
  await Promise.all([a?.stop(), b?.stop()]);
});

const doc = (version: string, password: string, teams: Array<[number, string]>): ApiDocument => ({
  version,
  destinations: [
    { id: 'a', url: a.url, user: 'default', password: '', database: 'app' },
    { id: 'b', url: b.url, user: 'ingest', password, database: 'app' },
  ],
  teams: teams.map(([team_id, destination]) => ({ team_id, destination })),
});

const count = async (ch: ClickHouseInstance, where = '1'): Promise<number> => Number((await ch.query(`SELECT count() FROM app.events WHERE ${where}`)).trim());

test('rows follow the API: held while unknown, paused on a wrong password, exactly once after the fix', async () => {
  api = new FakeDestinationsApi(
    doc('v1', OLD_PASSWORD, [
      [1, 'a'],
      [2, 'b'],
    ]),
    API_TOKEN,
  );
  const url = await api.start();
  const rows = [];
  for (let i = 0; i < PER_TEAM * 3; i++) rows.push({ value: Buffer.from(JSON.stringify({ uuid: randomUUID(), team_id: (i % 3) + 1 })) });
  await produce(bootstrap, topic, rows);
  inserter = await startInserter({
    kafka: { brokers: [bootstrap], groupId: `${topic}-group`, fetchMaxWaitMs: 100 },
    destinationsApi: { url, token: API_TOKEN, pollIntervalMs: 300, negativeCacheTtlMs: 500 },
    teams: { unknown: { action: 'hold' } },
    routes: [{ topic, table: 'events', deadLetterTopic: `${topic}.dlq` }],
    batch: { maxRows: 50, maxAgeMs: 200 },
    commitIntervalMs: 200,
    errorPolicy: { defaults: { authentication: { baseMs: 100, capMs: 300, maxAttempts: 2, pauseMs: 500 } } },
  });
  await waitFor(async () => (await count(a)) === PER_TEAM, 'team 1 in cluster a', 60_000);
  await sleep(1_500);
  assert.equal(await count(a), PER_TEAM, 'team 3 is held, not guessed into a');
  assert.equal(await count(b), 0, 'wrong password: nothing lands in b');

  api.document = doc('v2', NEW_PASSWORD, [
    [1, 'a'],
    [2, 'b'],
    [3, 'a'],
  ]);
  await waitFor(async () => (await count(a)) === 2 * PER_TEAM && (await count(b)) === PER_TEAM, 'every row after the API changed', 60_000).catch(async (error: unknown) => {
    throw new Error(`${String(error)}: a=${await count(a)} b=${await count(b)}`);
  });
  await sleep(500);
  assert.equal(await count(a, 'team_id = 1'), PER_TEAM);
  assert.equal(await count(a, 'team_id = 3'), PER_TEAM);
  assert.equal(await count(a, 'team_id = 2'), 0, 'never in a cluster not mapped for the team');
  assert.equal(await count(b, 'team_id = 2'), PER_TEAM);
  assert.equal(await count(b, 'team_id != 2'), 0);
  for (const ch of [a, b]) assert.equal(Number((await ch.query('SELECT count() - uniqExact(uuid) FROM app.events')).trim()), 0, 'no duplicates');
  await waitFor(
    async () => {
      const [committed, end] = await Promise.all([committedOffsets(bootstrap, `${topic}-group`, topic, 3), endOffsets(bootstrap, topic)]);
      return committed.every((c, p) => c === end[p]);
    },
    'committed offsets at the log end',
    30_000,
  );
  assert.equal(await inserter.stop(), 0);

  const dead = await readTopic(bootstrap, `${topic}.dlq`, 1, 2_000).catch(() => []);
  assert.equal(dead.length, 0, 'nothing dead-lettered: not the unknown team, not the auth failures');
  const log = await inserter.log();
  assert.match(log, /destinations changed/);
  for (const canary of [OLD_PASSWORD, NEW_PASSWORD, API_TOKEN]) assert.ok(!log.includes(canary), `${canary} must never be logged`);
});
