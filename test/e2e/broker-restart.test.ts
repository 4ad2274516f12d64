// The broker restarts twice while inserter consumes and a producer writes: inserter reconnects,
// and every event lands exactly once (merges stopped, so a duplicate could not hide), with the
// group's committed offsets at the log end.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadDdl } from '../../dev/posthog/ddl.ts';
import { generate } from '../../dev/posthog/generator.ts';
import { committedOffsets, endOffsets, produce } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, startKafka, uniqueTopic, type KafkaBroker } from '../helpers/kafka.ts';

const TOTAL = 6_000;
let broker: KafkaBroker;
let ch: ClickHouseInstance;
let inserter: InserterProcess | undefined;
const topic = uniqueTopic('restart');

before(async () => {
  [broker, ch] = await Promise.all([startKafka(), startClickHouse({ users: [{ name: 'default', password: '', settings: { optimize_on_insert: '0' } }] })]);
  await ch.query('CREATE DATABASE posthog');
  await ch.query(await loadDdl('events', 'posthog'));
  await ch.query('SYSTEM STOP MERGES posthog.events');
  await createTopic(broker.bootstrap, topic, 3);
});

after(async () => {
  await inserter?.kill();
  await Promise.all([broker?.stop(), ch?.stop()]);
});

/** Produces, retrying a chunk while the broker is away (the idempotent producer keeps it once). */
async function produceThrough(messages: Array<{ key: Buffer | null; value: Buffer }>): Promise<void> {
  for (let i = 0; i < messages.length; i += 500) {
    const chunk = messages.slice(i, i + 500);
    await waitFor(
      async () => {
        await produce(broker.bootstrap, topic, chunk);
        return true;
      },
      'a produce to go through',
      60_000,
      500,
    );
    await sleep(200);
  }
}

const counts = async (): Promise<[number, number]> => {
  const [n, u] = (await ch.query('SELECT count(), uniqExact(uuid) FROM posthog.events')).trim().split('\t').map(Number);
  return [n ?? 0, u ?? 0];
};
const offsets = (): Promise<[bigint[], bigint[]]> => Promise.all([committedOffsets(broker.bootstrap, `${topic}-group`, topic, 3), endOffsets(broker.bootstrap, topic)]);

/** What was seen when a step failed: rows, offsets and the end of inserter's log (each best effort). */
async function seen(): Promise<string> {
  const [rows, positions, log] = await Promise.all([counts().catch(String), offsets().catch(String), inserter?.log().catch(String)]);
  const shown = Array.isArray(positions) ? `committed ${positions[0].join(',')}; end ${positions[1].join(',')}` : positions;
  return `rows [count, unique]: ${JSON.stringify(rows)}; ${shown}\n${log?.slice(-3000)}`;
}

// Two JVM restarts of the broker: on a saturated machine they alone took minutes (a local run under
// other suites' load: 650 s in all), past the run's default 10-minute test timeout.
test('broker restarts mid-stream: exactly once', { timeout: 20 * 60_000 }, async (t) => {
  // How long each step took: reported always (a slow machine shows where the time goes).
  const t0 = Date.now();
  const steps: string[] = [];
  const step = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    const start = Date.now();
    try {
      return await run();
    } finally {
      steps.push(`${what} ${((Date.now() - start) / 1000).toFixed(1)} s (at ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }
  };
  const messages = [...generate('clickhouse_events_json', { seed: 5, count: TOTAL, teams: 20 })].map((m) => ({ key: m.key, value: m.value }));
  inserter = await step('start inserter', () =>
    startInserter({
      kafka: { brokers: [broker.bootstrap], groupId: `${topic}-group`, fetchMaxWaitMs: 100, sessionTimeoutMs: 10_000 },
      destinations: [{ id: 'a', url: ch.url, database: 'posthog' }],
      routes: [{ topic, table: 'events', destination: 'a' }],
      batch: { maxRows: 400, maxAgeMs: 200 },
      commitIntervalMs: 300,
    }),
  );
  try {
    await step('produce 1', () => produceThrough(messages.slice(0, 2_000)));
    await step('first rows', () => waitFor(async () => (await counts())[0] > 0, 'first rows', 60_000));
    await step('restart 1', () => broker.restart());
    await step('produce 2', () => produceThrough(messages.slice(2_000, 4_000)));
    await step('restart 2', () => broker.restart());
    await step('produce 3', () => produceThrough(messages.slice(4_000)));
    await step('all rows', () => waitFor(async () => (await counts())[1] === TOTAL, `${TOTAL} events`, 180_000));
    await step('commits', () =>
      waitFor(
        async () => {
          const [committed, end] = await offsets();
          return committed.every((c, p) => c === end[p]);
        },
        'committed offsets at the log end',
        60_000,
      ),
    );
    assert.deepEqual(await counts(), [TOTAL, TOTAL], 'exactly once across two broker restarts');
  } catch (error) {
    // A CI log keeps little: the failure carries what was seen.
    throw new Error(`${String(error)}\nsteps: ${steps.join('; ')}\n${await seen()}`, { cause: error });
  }
  t.diagnostic(`steps: ${steps.join('; ')}`);
  assert.equal(await inserter.stop(), 0);
});
