// A destination down for longer than its deadLetterAfterParkedMs: its rows are dead-lettered (class
// destination_down) instead of waiting in Kafka until retention could take them, the other
// destination is unaffected, and after recovery every row of the down destination is in it or in
// the dead-letter topic — never both, never neither — with the offsets committed to the log end.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { committedOffsets, endOffsets, produce, readTopic } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const PER_TEAM = 1_000;
let bootstrap: string;
let a: ClickHouseInstance;
let b: ClickHouseInstance;
let inserter: InserterProcess | undefined;
const topic = uniqueTopic('outage');
const ddl = 'CREATE TABLE app.events (uuid String, team_id Int64, pad String) ENGINE = MergeTree ORDER BY uuid SETTINGS non_replicated_deduplication_window = 1000';

before(async () => {
  bootstrap = await sharedKafka();
  [a, b] = await Promise.all([startClickHouse(), startClickHouse()]);
  for (const ch of [a, b]) {
    await ch.query('CREATE DATABASE app');
    await ch.query(ddl);
  }
  await createTopic(bootstrap, topic, 2);
});

after(async () => {
  await inserter?.kill();
  await Promise.all([a?.stop(), b?.stop()]);
});

const uuids = async (ch: ClickHouseInstance): Promise<string[]> => (await ch.query('SELECT uuid FROM app.events')).trim().split('\n').filter(Boolean);

test('rows of a destination down past its limit are dead-lettered, exactly one of the two', async () => {
  await b.down();
  inserter = await startInserter({
    kafka: { brokers: [bootstrap], groupId: `${topic}-group`, fetchMaxWaitMs: 100 },
    destinations: [
      { id: 'a', url: a.url, database: 'app' },
      { id: 'b', url: b.url, database: 'app', maxBufferedBytes: 32 * 1024, requestTimeoutMs: 1_000, deadLetterAfterParkedMs: 3_000 },
    ],
    teams: { map: { '1': 'a', '2': 'b' } },
    routes: [{ topic, table: 'events', deadLetterTopic: `${topic}.dlq` }],
    batch: { maxRows: 100, maxAgeMs: 200 },
    commitIntervalMs: 300,
    errorPolicy: { defaults: { transient_network: { baseMs: 100, capMs: 500, pauseMs: 500 } } },
  });
  const toB: string[] = [];
  for (let chunk = 0; chunk < 10; chunk++) {
    const rows = [];
    for (let i = 0; i < (2 * PER_TEAM) / 10; i++) {
      const team = (i % 2) + 1;
      const uuid = randomUUID();
      if (team === 2) toB.push(uuid);
      rows.push({ value: Buffer.from(JSON.stringify({ uuid, team_id: team, pad: 'x'.repeat(300) })) });
    }
    await produce(bootstrap, topic, rows);
    await sleep(500);
  }
  await waitFor(async () => (await uuids(a)).length === PER_TEAM, 'destination a unaffected', 60_000);
  await waitFor(async () => (await readTopic(bootstrap, `${topic}.dlq`, 1, 2_000).catch(() => [])).length > 0, 'dead letters for the down destination', 60_000);
  await b.up();
  const deadLettered = async (): Promise<Map<string, string>> => {
    const records = await readTopic(bootstrap, `${topic}.dlq`, toB.length * 2, 3_000).catch(() => []);
    const byUuid = new Map<string, string>();
    for (const r of records) byUuid.set((JSON.parse(r.value?.toString() ?? '{}') as { uuid: string }).uuid, r.headers.get('x-inserter-error-class') ?? '');
    return byUuid;
  };
  await waitFor(
    async () => {
      const [inB, dead] = [new Set(await uuids(b)), await deadLettered()];
      return toB.every((u) => inB.has(u) !== dead.has(u));
    },
    'every row of b in b or dead-lettered',
    90_000,
  ).catch(async (error: unknown) => {
    const [inB, dead] = [new Set(await uuids(b)), await deadLettered()];
    const both = toB.filter((u) => inB.has(u) && dead.has(u)).length;
    const neither = toB.filter((u) => !inB.has(u) && !dead.has(u)).length;
    throw new Error(`${String(error)}: in b ${inB.size}, dead-lettered ${dead.size}, both ${both}, neither ${neither}`);
  });
  const [inB, dead] = [await uuids(b), await deadLettered()];
  assert.equal(new Set(inB).size, inB.length, 'no duplicates in b');
  assert.ok(dead.size > 0, 'some rows were dead-lettered while b was down');
  assert.ok(
    [...dead.values()].every((cls) => cls === 'destination_down'),
    'dead-lettered as destination_down',
  );
  assert.equal(inB.filter((u) => dead.has(u)).length, 0, 'never both in b and dead-lettered');
  assert.equal(inB.length + dead.size, PER_TEAM, 'nothing lost');
  await waitFor(
    async () => {
      const [committed, end] = await Promise.all([committedOffsets(bootstrap, `${topic}-group`, topic, 2), endOffsets(bootstrap, topic)]);
      return committed.every((c, p) => c === end[p]);
    },
    'committed offsets at the log end',
    30_000,
  );
  assert.equal(await inserter.stop(), 0);
});
