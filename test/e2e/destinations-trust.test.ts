// A destination served by the destinations API outside the allowlist, in a real run (real broker,
// real ClickHouse, the local API fake): a destination on a host nobody allowed is rejected and its
// team's rows are held, never guessed and never dead-lettered; an allowed destination the API later
// moves to another host keeps its last good settings, so its rows still land where they always did
// and its password goes nowhere new. The log names each rejected destination; no secret is logged.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { produce, readTopic } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { FakeDestinationsApi, type ApiDocument } from '../helpers/destinations-api.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const API_TOKEN = 'canary-trust-token-71c2';
const EVIL_PASSWORD = 'canary-trust-evil-5e0d';
const PER_TEAM = 100;
let bootstrap: string;
let ch: ClickHouseInstance;
let api: FakeDestinationsApi | undefined;
let inserter: InserterProcess | undefined;
const topic = uniqueTopic('trust');

before(async () => {
  bootstrap = await sharedKafka();
  ch = await startClickHouse();
  await ch.query('CREATE DATABASE app');
  await ch.query('CREATE TABLE app.events (uuid UUID, team_id Int64) ENGINE = MergeTree ORDER BY uuid SETTINGS non_replicated_deduplication_window = 1000');
  await createTopic(bootstrap, topic, 2);
});

after(async () => {
  await inserter?.stop();
  await api?.stop();
  await ch?.stop();
});

const count = async (where: string): Promise<number> => Number((await ch.query(`SELECT count() FROM app.events WHERE ${where}`)).trim());

test('a destination outside the allowlist is rejected: its team held; a moved one keeps its last good settings', async () => {
  const v1: ApiDocument = {
    version: 'v1',
    destinations: [
      { id: 'local', url: ch.url, password: '', database: 'app' },
      { id: 'evil', url: 'https://rows.attacker.example:8443', password: EVIL_PASSWORD, database: 'app' },
    ],
    teams: [
      { team_id: 1, destination: 'local' },
      { team_id: 2, destination: 'evil' },
    ],
  };
  api = new FakeDestinationsApi(v1, API_TOKEN);
  const url = await api.start();
  const rows = [];
  for (let i = 0; i < PER_TEAM * 2; i++) rows.push({ value: Buffer.from(JSON.stringify({ uuid: randomUUID(), team_id: (i % 2) + 1 })) });
  await produce(bootstrap, topic, rows);
  inserter = await startInserter({
    kafka: { brokers: [bootstrap], groupId: `${topic}-group`, fetchMaxWaitMs: 100 },
    destinationsApi: { url, token: API_TOKEN, pollIntervalMs: 300, negativeCacheTtlMs: 500 },
    teams: { unknown: { action: 'deadLetter' } },
    routes: [{ topic, table: 'events', deadLetterTopic: `${topic}.dlq` }],
    batch: { maxRows: 50, maxAgeMs: 200 },
    commitIntervalMs: 200,
  });
  await waitFor(async () => (await count('team_id = 1')) === PER_TEAM, 'team 1 in the allowed destination', 60_000);
  await sleep(1_500);
  assert.equal(await count('team_id = 2'), 0, 'team 2 is held: its destination was rejected, and it is not sent to teams.unknown');

  // The API now points the allowed destination elsewhere and maps team 2 to it: the last good
  // settings of "local" stay in force, so team 2's rows land where "local" always was.
  api.document = {
    version: 'v2',
    destinations: [{ id: 'local', url: 'https://ch.attacker.example:8443', password: EVIL_PASSWORD, database: 'app' }],
    teams: [
      { team_id: 1, destination: 'local' },
      { team_id: 2, destination: 'local' },
    ],
  };
  await waitFor(async () => (await count('team_id = 2')) === PER_TEAM, 'team 2 through the last good destination', 60_000);
  assert.equal(Number((await ch.query('SELECT count() - uniqExact(uuid) FROM app.events')).trim()), 0, 'no duplicates');
  assert.equal(await inserter.stop(), 0);

  const dead = await readTopic(bootstrap, `${topic}.dlq`, 1, 2_000).catch(() => []);
  assert.equal(dead.length, 0, 'nothing dead-lettered');
  const log = await inserter.log();
  assert.match(log, /destination evil rejected \(host\): host rows\.attacker\.example is not allowed/);
  assert.match(log, /"kept":"last good destination","msg":"destination local rejected \(host\): host ch\.attacker\.example is not allowed/);
  for (const canary of [EVIL_PASSWORD, API_TOKEN]) assert.ok(!log.includes(canary), `${canary} must never be logged`);
});
