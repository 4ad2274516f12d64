// `bin/inserter run` with `pulsar:` as its bus (no Kafka anywhere): PostHog events from a partitioned
// Pulsar topic into ClickHouse, killed with SIGKILL at arbitrary points while a producer writes, each
// restart with another batch size. After the last restart every event is in ClickHouse exactly once
// (count() = uniqExact(uuid) = produced, merges stopped so a duplicate stays visible), a message that
// is not JSON is in the Pulsar dead-letter topic with its reason, and the subscription's backlog is 0
// (every message acknowledged): the ledger's intents and positions on Pulsar do what they do on Kafka.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { loadDdl } from '../../dev/posthog/ddl.ts';
import { generate } from '../../dev/posthog/generator.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createPartitionedTopic, produce, startPulsar, subscriptionStats, uniqueTopic, type PulsarBroker } from '../helpers/pulsar.ts';

const TENANT = 'public';
const NAMESPACE = 'default';
const PARTITIONS = 2;
const TOTAL = 6_000;
let broker: PulsarBroker;
let ch: ClickHouseInstance;
let current: InserterProcess | undefined;

before(async () => {
  [broker, ch] = await Promise.all([startPulsar(), startClickHouse({ users: [{ name: 'default', password: '', settings: { optimize_on_insert: '0' } }] })]);
  await ch.query('CREATE DATABASE posthog');
});

after(async () => {
  await current?.kill();
  await Promise.all([broker?.stop(), ch?.stop()]);
});

async function counts(table: string): Promise<{ rows: number; distinct: number }> {
  const [rows, distinct] = (await ch.query(`SELECT count(), uniqExact(uuid) FROM posthog.${table} FORMAT TSV`)).trim().split('\t').map(Number);
  return { rows: rows ?? 0, distinct: distinct ?? 0 };
}

/** Messages of the dead-letter topic, read through a WebSocket reader from its beginning. */
async function deadLetters(topic: string, expected: number): Promise<Array<{ payload: string; properties: Record<string, string> }>> {
  const socket = new WebSocket(`${broker.url.replace(/^http/, 'ws')}/ws/v2/reader/persistent/${TENANT}/${NAMESPACE}/${topic}?messageId=earliest`);
  const letters: Array<{ payload: string; properties: Record<string, string> }> = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${letters.length} of ${expected} dead letters in ${topic}`)), 20_000);
      socket.addEventListener('message', (event) => {
        const frame = JSON.parse(String(event.data)) as { payload?: string; properties?: Record<string, string>; messageId?: string };
        if (frame.payload === undefined) return;
        letters.push({ payload: Buffer.from(frame.payload, 'base64').toString(), properties: frame.properties ?? {} });
        socket.send(JSON.stringify({ messageId: frame.messageId }));
        if (letters.length >= expected) {
          clearTimeout(timer);
          resolve();
        }
      });
      socket.addEventListener('error', () => reject(new Error(`reader of ${topic} failed`)), { once: true });
    });
  } finally {
    socket.close();
  }
  return letters;
}

test('kill -9 at arbitrary points on a Pulsar bus: every event once in ClickHouse, the bad one dead-lettered, the backlog at 0', async () => {
  const topic = uniqueTopic('run');
  const table = 'events_pulsar';
  const subscription = `${topic}-inserter`;
  await ch.query((await loadDdl('events', 'posthog')).replace('posthog.events', `posthog.${table}`));
  await ch.query(`SYSTEM STOP MERGES posthog.${table}`);
  await createPartitionedTopic(broker.url, TENANT, NAMESPACE, topic, PARTITIONS);
  const config = (maxRows: number): unknown => ({
    pulsar: { url: broker.url, tenant: TENANT, namespace: NAMESPACE, subscription },
    destinations: [{ id: 'a', url: ch.url, database: 'posthog' }],
    routes: [{ topic, table, destination: 'a' }],
    batch: { maxRows, maxAgeMs: 200 },
    commitIntervalMs: 2_000,
  });
  const events = [...generate('clickhouse_events_json', { seed: 5, count: TOTAL, teams: 20 })];
  const producing = (async () => {
    for (let i = 0; i < events.length; i += 1000) {
      const chunk = events.slice(i, i + 1000);
      for (let p = 0; p < PARTITIONS; p++) {
        const mine = chunk.filter((_, j) => (i + j) % PARTITIONS === p).map((m) => ({ payload: m.value, ...(m.key === null ? {} : { key: m.key.toString() }) }));
        await produce(broker.url, TENANT, NAMESPACE, `${topic}-partition-${p}`, mine);
      }
      if (i === 2000) await produce(broker.url, TENANT, NAMESPACE, `${topic}-partition-0`, [{ payload: 'not json {', key: 'bad' }]);
      await sleep(400);
    }
  })();
  for (const maxRows of [150, 500, 80]) {
    current = await startInserter(config(maxRows));
    const before = await counts(table);
    await waitFor(async () => (await counts(table)).rows > before.rows, 'rows inserted by this life', 60_000).catch(async (error: unknown) => {
      throw new Error(`${String(error)}\n${(await current?.log())?.slice(-3000)}`);
    });
    await current.kill();
  }
  await producing;
  current = await startInserter(config(300));
  await waitFor(async () => (await counts(table)).rows >= TOTAL, `${TOTAL} rows in ClickHouse`, 90_000).catch(async (error: unknown) => {
    throw new Error(`${String(error)}: ${JSON.stringify(await counts(table))}\n${(await current?.log())?.slice(-3000)}`);
  });
  const backlog = async (): Promise<number[]> =>
    Promise.all(Array.from({ length: PARTITIONS }, async (_, p) => (await subscriptionStats(broker.url, TENANT, NAMESPACE, `${topic}-partition-${p}`, subscription))?.msgBacklog ?? -1));
  await waitFor(async () => (await backlog()).every((b) => b === 0), 'the subscription backlog at 0', 60_000);
  await sleep(1_000); // a late duplicate would show now
  assert.deepEqual(await counts(table), { rows: TOTAL, distinct: TOTAL });
  const [letter] = await deadLetters(`${topic}.dlq`, 1);
  assert.equal(letter?.payload, 'not json {');
  assert.equal(letter?.properties['x-inserter-error-class'], 'decode');
  assert.equal(await current.stop(), 0);
  current = undefined;
});
