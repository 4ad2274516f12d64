// One poison row among 10,000 good ones: the error policy isolates it (bisecting, guided by
// ClickHouse's "at row N"), so exactly that row is in the dead-letter topic with its reason, and
// every other row is in ClickHouse exactly once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { produce } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { assertExactlyOnce, counts, deadLetters, produceRows, scenarioConfig, TABLE_DDL } from '../helpers/error-scenarios.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const topic = uniqueTopic('errors-poison');
const dlq = `${topic}.dlq`;
let bootstrap: string;
let ch: ClickHouseInstance;
let inserter: InserterProcess | undefined;

before(async () => {
  bootstrap = await sharedKafka();
  ch = await startClickHouse();
  await ch.query('CREATE DATABASE e');
  await ch.query(TABLE_DDL('e', 't'));
  await createTopic(bootstrap, topic, 1);
});

after(async () => {
  await inserter?.kill();
  await ch?.stop();
});

test('exactly the poison row is dead-lettered; the other 10,000 land once', async () => {
  await produceRows(bootstrap, topic, 0, 6_123);
  const poison = Buffer.from(JSON.stringify({ id: 999_999, team_id: 1, n: 'not a number', s: 'poison', k: 0 }));
  await produce(bootstrap, topic, [{ key: Buffer.from('poison'), value: poison }]);
  await produceRows(bootstrap, topic, 6_123, 10_000);
  inserter = await startInserter(scenarioConfig({ bootstrap, group: `${topic}-g`, topic, url: ch.url, database: 'e', table: 't', deadLetterTopic: dlq, maxRows: 10_001 }));
  await waitFor(async () => (await counts(ch, 'e', 't')).distinct >= 10_000, '10,000 rows', 45_000).catch(async (error: unknown) => {
    throw new Error(`${String(error)}\n${(await inserter?.log())?.slice(-3000)}`);
  });
  const letters = await deadLetters(bootstrap, dlq, 1);
  assert.equal(letters.length, 1, 'one dead letter');
  assert.deepEqual(letters[0]?.value, poison);
  assert.equal(letters[0]?.headers.get('x-inserter-error-class'), 'row_data');
  assert.equal(letters[0]?.headers.get('x-inserter-original-offset'), '6123');
  await assertExactlyOnce(ch, 'e', 't', 10_000);
  assert.equal(await inserter.stop(), 0);
});
