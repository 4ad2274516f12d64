// MEMORY_LIMIT_EXCEEDED (241) from a tiny max_memory_usage of the insert user (chDB produces it
// reliably for a 10,000-row JSONEachRow insert at 3 MB): the batch is split until the parts fit,
// and all rows land exactly once, nothing dead-lettered.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { endOffsets } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { assertExactlyOnce, counts, produceRows, scenarioConfig, TABLE_DDL } from '../helpers/error-scenarios.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const topic = uniqueTopic('errors-memory');
const dlq = `${topic}.dlq`;
const TOTAL = 20_000;
let bootstrap: string;
let ch: ClickHouseInstance;
let inserter: InserterProcess | undefined;

before(async () => {
  bootstrap = await sharedKafka();
  ch = await startClickHouse({
    users: [
      { name: 'default', password: '' },
      { name: 'tiny', password: 'pw', settings: { max_memory_usage: '3000000' } },
    ],
  });
  await ch.query('CREATE DATABASE e');
  await ch.query(TABLE_DDL('e', 't'));
  await createTopic(bootstrap, topic, 1);
});

after(async () => {
  await inserter?.kill();
  await ch?.stop();
});

test('MEMORY_LIMIT_EXCEEDED splits the batch and every row lands once', async () => {
  await produceRows(bootstrap, topic, 0, TOTAL, { pad: 200 });
  inserter = await startInserter(
    scenarioConfig({ bootstrap, group: `${topic}-g`, topic, url: ch.url, user: 'tiny', password: 'pw', database: 'e', table: 't', deadLetterTopic: dlq, maxRows: 10_000 }),
  );
  await waitFor(async () => (await counts(ch, 'e', 't')).distinct >= TOTAL, `${TOTAL} rows`, 45_000).catch(async (error: unknown) => {
    throw new Error(`${String(error)}\n${(await inserter?.log())?.slice(-3000)}`);
  });
  await assertExactlyOnce(ch, 'e', 't', TOTAL);
  assert.match(await inserter.log(), /"class":"memory_limit".*splitting it/, 'split for the memory limit');
  assert.deepEqual(await endOffsets(bootstrap, dlq).catch(() => []), [], 'nothing dead-lettered');
  assert.equal(await inserter.stop(), 0);
});
