// A stalled owner is fenced. Process A reads everything into open batches and is frozen (SIGSTOP)
// past its session timeout; process B takes the partitions over and inserts every row. When A
// wakes (SIGCONT) its age timer flushes the old batches at once — but taking a partition over
// initialised its ledger producer, so A's intent write is fenced and A inserts nothing: every row
// is in ClickHouse exactly once. The negative control runs the same story without the ledger and
// finds A's duplicates, so the scenario is real.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadDdl } from '../../dev/posthog/ddl.ts';
import { generate } from '../../dev/posthog/generator.ts';
import { produce } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const TOTAL = 3_000;
let bootstrap: string;
let ch: ClickHouseInstance;
const started: InserterProcess[] = [];

before(async () => {
  bootstrap = await sharedKafka();
  ch = await startClickHouse({ users: [{ name: 'default', password: '', settings: { optimize_on_insert: '0' } }] });
  await ch.query('CREATE DATABASE posthog');
});

after(async () => {
  for (const p of started) {
    p.child.kill('SIGCONT');
    await p.kill();
  }
  await ch?.stop();
});

async function story(table: string, exactlyOnce: boolean): Promise<{ rows: number; distinct: number; logA: string }> {
  await ch.query((await loadDdl('events', 'posthog')).replace('posthog.events', `posthog.${table}`));
  await ch.query(`SYSTEM STOP MERGES posthog.${table}`);
  const topic = uniqueTopic(`fence-${table}`);
  await createTopic(bootstrap, topic, 2);
  await produce(
    bootstrap,
    topic,
    [...generate('clickhouse_events_json', { seed: 9, count: TOTAL, teams: 10 })].map((m) => ({ key: m.key, value: m.value })),
  );
  const config = (maxRows: number, maxAgeMs: number): unknown => ({
    kafka: { brokers: [bootstrap], groupId: `${topic}-group`, fetchMaxWaitMs: 100, sessionTimeoutMs: 6_000, rebalanceTimeoutMs: 10_000 },
    destinations: [{ id: 'a', url: ch.url, database: 'posthog' }],
    routes: [{ topic, table, destination: 'a' }],
    batch: { maxRows, maxAgeMs },
    commitIntervalMs: 200,
    exactlyOnce: { enabled: exactlyOnce },
  });
  // A holds every row in open batches (no size or age flush for 15 s), then freezes.
  const a = await startInserter(config(100_000, 15_000));
  started.push(a);
  await waitFor(async () => /partitions assigned/.test(await a.log()), 'A owns the partitions', 60_000);
  await sleep(3_000);
  a.child.kill('SIGSTOP');
  const b = await startInserter(config(400, 200));
  started.push(b);
  const counts = async (): Promise<{ rows: number; distinct: number }> => {
    const [rows, distinct] = (await ch.query(`SELECT count(), uniqExact(uuid) FROM posthog.${table}`)).trim().split('\t').map(Number);
    return { rows: rows ?? 0, distinct: distinct ?? 0 };
  };
  await waitFor(async () => (await counts()).distinct === TOTAL, 'B inserted every row', 90_000);
  a.child.kill('SIGCONT');
  await sleep(18_000); // past A's batch age: A flushes what it held
  const result = await counts();
  await Promise.all([a.stop(), b.stop()]);
  return { ...result, logA: await a.log() };
}

test('a stalled owner that wakes up after a takeover inserts nothing', async () => {
  const { rows, distinct, logA } = await story('events_fenced', true);
  assert.equal(distinct, TOTAL);
  assert.match(logA, /fenced by a newer owner/, 'A tried to record an intent and was fenced');
  assert.equal(rows, TOTAL, 'the stalled owner was fenced: no duplicates');
});

test('negative control: without the ledger the stalled owner duplicates rows', async () => {
  const { rows, distinct } = await story('events_unfenced', false);
  assert.equal(distinct, TOTAL);
  assert.ok(rows > TOTAL, `the scenario produces duplicates without fencing (rows ${rows})`);
});
