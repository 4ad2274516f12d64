// TOO_MANY_PARTS (252) induced with a low parts_to_throw_insert and merges stopped: inserter backs
// off (never dead-letters, never splits: smaller inserts would make it worse), and once the table
// can take parts again everything lands, nothing is lost, nothing is dead-lettered, no duplicates.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { endOffsets } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { assertExactlyOnce, counts, produceRows, scenarioConfig, TABLE_DDL } from '../helpers/error-scenarios.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const topic = uniqueTopic('errors-parts');
const dlq = `${topic}.dlq`;
const TOTAL = 4_000;
let bootstrap: string;
let ch: ClickHouseInstance;
let inserter: InserterProcess | undefined;

before(async () => {
  bootstrap = await sharedKafka();
  ch = await startClickHouse();
  await ch.query('CREATE DATABASE e');
  await ch.query(TABLE_DDL('e', 't', 'parts_to_throw_insert = 3, parts_to_delay_insert = 2'));
  await ch.query('SYSTEM STOP MERGES e.t');
  await createTopic(bootstrap, topic, 1);
});

after(async () => {
  await inserter?.kill();
  await ch?.stop();
});

test('TOO_MANY_PARTS backs off, recovers when the table takes parts again, loses and duplicates nothing', async () => {
  await produceRows(bootstrap, topic, 0, TOTAL);
  const config = scenarioConfig({
    bootstrap,
    group: `${topic}-g`,
    topic,
    url: ch.url,
    database: 'e',
    table: 't',
    deadLetterTopic: dlq,
    maxRows: 500,
    extra: { errorPolicy: { defaults: { too_many_parts: { baseMs: 200, capMs: 1_500 } } } },
  });
  inserter = await startInserter(config);
  const backoffs = async (): Promise<number> => (await inserter!.log()).split('\n').filter((l) => l.includes('"class":"too_many_parts"') && l.includes('backing off')).length;
  await waitFor(async () => (await backoffs()) >= 3, 'three TOO_MANY_PARTS backoffs', 30_000);
  const stuck = (await counts(ch, 'e', 't')).rows;
  assert.ok(stuck < TOTAL, `stuck at ${stuck} rows while the table refuses parts`);
  assert.doesNotMatch(await inserter.log(), /splitting it|dead-lettering/, 'no split, no dead letter for TOO_MANY_PARTS');
  await ch.query('ALTER TABLE e.t MODIFY SETTING parts_to_throw_insert = 3000, parts_to_delay_insert = 1000');
  await waitFor(async () => (await counts(ch, 'e', 't')).distinct >= TOTAL, `${TOTAL} rows`, 40_000);
  await assertExactlyOnce(ch, 'e', 't', TOTAL);
  assert.deepEqual(await endOffsets(bootstrap, dlq).catch(() => []), [], 'no dead-letter topic was ever written');
  assert.equal(await inserter.stop(), 0);
});
