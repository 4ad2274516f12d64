// kill -9 of inserter mid-stream, repeatedly, while a producer is writing: after the last restart
// every produced event is in ClickHouse exactly once (count() = uniqExact(uuid) = produced, with
// merges stopped so a duplicate could not hide) and the group's committed offsets reach the log end.
// It runs with the classic group protocol and pass-through JSON, and with KIP-848's consumer protocol
// and typed rows (RowBinaryWithDefaults from the live schema; the query log shows no insert fell back).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Admin } from '@platformatic/kafka';
import { loadDdl } from '../../dev/posthog/ddl.ts';
import { generate } from '../../dev/posthog/generator.ts';
import { committedOffsets, endOffsets, produce } from '../helpers/bus.ts';
import { insertFormats, startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const PARTITIONS = 4;
const TOTAL = 12_000;
let bootstrap: string;
let ch: ClickHouseInstance;
let current: InserterProcess | undefined;

before(async () => {
  bootstrap = await sharedKafka();
  // No merges and no collapsing inside an insert: a duplicate row must stay visible.
  ch = await startClickHouse({ users: [{ name: 'default', password: '', settings: { optimize_on_insert: '0' } }] });
  await ch.query('CREATE DATABASE posthog');
});

after(async () => {
  await current?.kill();
  await ch?.stop();
});

// Commits are slow and every restart uses another batch size, so a restart re-reads rows that were
// inserted but not committed and would cut them into different batches: only recorded intents keep
// that from duplicating them (with INSERTER_TEST_AT_LEAST_ONCE=1 this test finds duplicates).
for (const [protocol, encoding] of [
  ['classic', 'passthrough'],
  ['consumer', 'typed'],
] as const) {
  test(`kill -9 at arbitrary points loses nothing and duplicates nothing (${protocol} group protocol, ${encoding} rows)`, async () => {
    const table = `events_${protocol}`;
    const topic = uniqueTopic(`crash-${protocol}`);
    const group = `${topic}-group`;
    await ch.query((await loadDdl('events', 'posthog')).replace('posthog.events', `posthog.${table}`));
    await ch.query(`SYSTEM STOP MERGES posthog.${table}`);
    await createTopic(bootstrap, topic, PARTITIONS);
    const exactlyOnce = process.env.INSERTER_TEST_AT_LEAST_ONCE !== '1';
    const config = (maxRows: number): unknown => ({
      kafka: { brokers: [bootstrap], groupId: group, fetchMaxWaitMs: 100, sessionTimeoutMs: 6_000, groupProtocol: protocol },
      destinations: [{ id: 'a', url: ch.url, database: 'posthog' }],
      routes: [{ topic, table, destination: 'a', encoding }],
      batch: { maxRows, maxAgeMs: 200 },
      commitIntervalMs: 2_500,
      exactlyOnce: { enabled: exactlyOnce },
    });
    const messages = [...generate('clickhouse_events_json', { seed: 11, count: TOTAL, teams: 50 })];
    const producing = (async () => {
      for (let i = 0; i < messages.length; i += 1000) {
        await produce(
          bootstrap,
          topic,
          messages.slice(i, i + 1000).map((m) => ({ key: m.key, value: m.value })),
        );
        await sleep(450);
      }
    })();
    const kills: Array<[number, number]> = [
      [1500, 700],
      [2500, 450],
      [900, 1000],
      [3000, 300],
    ];
    for (const [delay, maxRows] of kills) {
      current = await startInserter(config(maxRows));
      await sleep(delay);
      await current.kill();
    }
    // The producer is still writing (about 5 s of 12 chunks): the last process must take over mid-stream.
    current = await startInserter(config(800));
    await producing;
    const distinct = async (): Promise<number> => Number((await ch.query(`SELECT uniqExact(uuid) FROM posthog.${table}`)).trim());
    await waitFor(async () => (await distinct()) === TOTAL, `${TOTAL} distinct events`, 120_000);
    await waitFor(
      async () => {
        const [committed, end] = await Promise.all([committedOffsets(bootstrap, group, topic, PARTITIONS), endOffsets(bootstrap, topic)]);
        return committed.every((c, p) => c === end[p]);
      },
      'committed offsets at the log end',
      30_000,
    );
    assert.equal(await distinct(), TOTAL);
    const rows = Number((await ch.query(`SELECT count() FROM posthog.${table}`)).trim());
    assert.equal(rows, TOTAL, 'exactly once: no duplicates after four kill -9');
    const formats = await insertFormats(ch, `posthog.${table}`);
    assert.deepEqual([...formats.keys()], [encoding === 'typed' ? 'RowBinaryWithDefaults' : 'JSONEachRow'], "every insert in the route's encoding");
    assert.match(await current.log(), /partitions assigned/, 'the last process did consume');
    const code = await current.stop();
    assert.equal(code, 0, `graceful exit; log tail:\n${(await current.log()).slice(-3000)}`);
  });
}

// A late commit from a previous owner (sent before a rebalance, landing after the new owner's) can
// move the group's position back below rows whose intents were already pruned from the ledger. The
// ledger remembers how far it was resolved, so the re-read rows are skipped, not inserted again
// under new tokens. Here the position is moved back by hand, as far as it goes: to 0.
test('a group position that goes back never re-inserts what was resolved', async () => {
  const table = 'events_back';
  const topic = uniqueTopic('crash-back');
  const group = `${topic}-group`;
  const total = 3_000;
  await ch.query((await loadDdl('events', 'posthog')).replace('posthog.events', `posthog.${table}`));
  await ch.query(`SYSTEM STOP MERGES posthog.${table}`);
  await createTopic(bootstrap, topic, 2);
  const config = (maxRows: number): unknown => ({
    kafka: { brokers: [bootstrap], groupId: group, fetchMaxWaitMs: 100, sessionTimeoutMs: 6_000 },
    destinations: [{ id: 'a', url: ch.url, database: 'posthog' }],
    routes: [{ topic, table, destination: 'a' }],
    batch: { maxRows, maxAgeMs: 200 },
    commitIntervalMs: 300,
  });
  const messages = [...generate('clickhouse_events_json', { seed: 12, count: total, teams: 20 })];
  await produce(
    bootstrap,
    topic,
    messages.map((m) => ({ key: m.key, value: m.value })),
  );
  const atEnd = async (): Promise<boolean> => {
    const [committed, end] = await Promise.all([committedOffsets(bootstrap, group, topic, 2), endOffsets(bootstrap, topic)]);
    return committed.every((c, p) => c === end[p]);
  };
  const rows = async (): Promise<number> => Number((await ch.query(`SELECT count() FROM posthog.${table}`)).trim());

  current = await startInserter(config(100));
  await waitFor(async () => (await rows()) === total && (await atEnd()), `${total} rows and positions at the end`, 60_000);
  // A few more commit intervals: the ledger is pruned (and saved) at the committed positions.
  await sleep(1_500);
  assert.equal(await current.stop(), 0);

  const admin = new Admin({ clientId: 'crash-back', bootstrapBrokers: [bootstrap] });
  try {
    await admin.alterConsumerGroupOffsets({
      groupId: group,
      topics: [
        {
          name: topic,
          partitionOffsets: [
            { partition: 0, offset: 0n },
            { partition: 1, offset: 0n },
          ],
        },
      ],
    });
  } finally {
    await admin.close();
  }
  assert.deepEqual(await committedOffsets(bootstrap, group, topic, 2), [0n, 0n]);

  // Another batch size: batches cut anew would carry new tokens, so ClickHouse would not drop them.
  current = await startInserter(config(77));
  await waitFor(atEnd, 'positions back at the log end', 60_000);
  assert.equal(await rows(), total, 'nothing inserted twice after the position went back');
  assert.equal(await current.stop(), 0);
});
