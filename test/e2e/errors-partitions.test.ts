// A batch spanning more partitions than the insert user's max_partitions_per_insert_block (252,
// "Too many partitions for single INSERT block") is split — at once, without backing off — until
// each insert fits, and the batch lands whole: every row once, nothing dead-lettered.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { endOffsets } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { assertExactlyOnce, counts, produceRows, scenarioConfig, TABLE_DDL } from '../helpers/error-scenarios.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const topic = uniqueTopic('errors-partitions');
const dlq = `${topic}.dlq`;
const TOTAL = 6_000;
let bootstrap: string;
let ch: ClickHouseInstance;
let inserter: InserterProcess | undefined;

before(async () => {
  bootstrap = await sharedKafka();
  ch = await startClickHouse({
    users: [
      { name: 'default', password: '' },
      { name: 'ingest', password: 'pw', settings: { max_partitions_per_insert_block: '5' } },
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

test('a batch over max_partitions_per_insert_block is split and lands whole', async () => {
  // Runs of 100 rows per partition value, 12 values: a 3,000-row batch touches 12 partitions.
  await produceRows(bootstrap, topic, 0, TOTAL, { partitions: 12, run: 100 });
  inserter = await startInserter(
    scenarioConfig({ bootstrap, group: `${topic}-g`, topic, url: ch.url, user: 'ingest', password: 'pw', database: 'e', table: 't', deadLetterTopic: dlq, maxRows: 3_000 }),
  );
  await waitFor(async () => (await counts(ch, 'e', 't')).distinct >= TOTAL, `${TOTAL} rows`, 45_000).catch(async (error: unknown) => {
    throw new Error(`${String(error)}\n${(await inserter?.log())?.slice(-3000)}`);
  });
  await assertExactlyOnce(ch, 'e', 't', TOTAL);
  const log = await inserter.log();
  assert.match(log, /"class":"too_many_partitions".*splitting it/, 'split for too many partitions');
  assert.doesNotMatch(log, /"class":"too_many_partitions".*backing off/, 'no backoff for too many partitions');
  assert.deepEqual(await endOffsets(bootstrap, dlq).catch(() => []), [], 'nothing dead-lettered');
  assert.equal(await inserter.stop(), 0);
});
