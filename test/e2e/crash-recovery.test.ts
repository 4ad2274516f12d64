// kill -9 of inserter mid-stream, repeatedly, while a producer is writing: after the last restart
// every produced event is in ClickHouse (uniqExact(uuid) equals the number produced) and the
// group's committed offsets reach the log end. At-least-once is the floor this test proves.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { generate } from '../../dev/posthog/generator.ts';
import { committedOffsets, endOffsets, produce } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { REPO_ROOT, startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const PARTITIONS = 4;
const TOTAL = 12_000;
let bootstrap: string;
let ch: ClickHouseInstance;
const topic = uniqueTopic('crash');
const group = `${topic}-group`;
let current: InserterProcess | undefined;

before(async () => {
  bootstrap = await sharedKafka();
  ch = await startClickHouse();
  await ch.query('CREATE DATABASE posthog');
  await createTopic(bootstrap, topic, PARTITIONS);
});

after(async () => {
  await current?.kill();
  await ch?.stop();
});

const config = (): unknown => ({
  kafka: { brokers: [bootstrap], groupId: group, fetchMaxWaitMs: 100, sessionTimeoutMs: 6_000 },
  destinations: [{ id: 'a', url: ch.url, database: 'posthog' }],
  routes: [{ topic, table: 'events', destination: 'a', createTable: { ddlFile: `${REPO_ROOT}/dev/posthog/ddl/events.sql` } }],
  batch: { maxRows: 700, maxAgeMs: 200 },
  commitIntervalMs: 100,
});

test('kill -9 at arbitrary points loses nothing', async () => {
  const messages = [...generate('clickhouse_events_json', { seed: 11, count: TOTAL, teams: 50 })];
  const producing = (async () => {
    for (let i = 0; i < messages.length; i += 1000) {
      await produce(bootstrap, topic, messages.slice(i, i + 1000).map((m) => ({ key: m.key, value: m.value })));
      await sleep(450);
    }
  })();
  const kills = [1500, 2500, 900, 3000];
  for (const delay of kills) {
    current = await startInserter(config());
    await sleep(delay);
    await current.kill();
  }
  // The producer is still writing (about 5 s of 12 chunks): the last process must take over mid-stream.
  current = await startInserter(config());
  await producing;
  const distinct = async (): Promise<number> => Number((await ch.query('SELECT uniqExact(uuid) FROM posthog.events')).trim());
  await waitFor(async () => (await distinct()) === TOTAL, `${TOTAL} distinct events`, 120_000);
  await waitFor(async () => {
    const [committed, end] = await Promise.all([committedOffsets(bootstrap, group, topic, PARTITIONS), endOffsets(bootstrap, topic)]);
    return committed.every((c, p) => c === end[p]);
  }, 'committed offsets at the log end', 30_000);
  assert.equal(await distinct(), TOTAL);
  const rows = Number((await ch.query('SELECT count() FROM posthog.events')).trim());
  assert.ok(rows >= TOTAL, 'nothing lost');
  assert.match(await current.log(), /partitions assigned/, 'the last process did consume');
  const code = await current.stop();
  assert.equal(code, 0, `graceful exit; log tail:\n${(await current.log()).slice(-3000)}`);
});
