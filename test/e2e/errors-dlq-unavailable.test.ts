// The dead-letter topic cannot be written (it does not exist and topic creation is disabled; an
// illegal topic name is refused by the config before anything starts): the
// poison row's dead letter is retried forever and no offset is committed past it, while the
// records before it are committed normally. A record leaves Kafka only for the warehouse or the DLQ.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { committedOffsets, produce } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { counts, produceRows, scenarioConfig, TABLE_DDL } from '../helpers/error-scenarios.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const topic = uniqueTopic('errors-dlq-down');
const group = `${topic}-g`;
const STUCK = 1_024;
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

test('with the dead-letter topic unavailable, no offset is committed past the stuck record', async () => {
  // The commit watermark moves in chunks of 512 records: 1,024 good ones fill two chunks.
  await produceRows(bootstrap, topic, 0, STUCK); // offsets 0-1023
  await produce(bootstrap, topic, [{ value: Buffer.from(JSON.stringify({ id: STUCK, team_id: 1, n: 'bad', s: '', k: 0 })) }]); // offset 1024
  await produceRows(bootstrap, topic, STUCK + 1, STUCK + 200);
  inserter = await startInserter(
    scenarioConfig({
      bootstrap,
      group,
      topic,
      url: ch.url,
      database: 'e',
      table: 't',
      deadLetterTopic: `${topic}.missing-dlq`,
      maxRows: 256,
      extra: { kafka: { brokers: [bootstrap], groupId: group, fetchMaxWaitMs: 100, createDeadLetterTopics: 0 } },
    }),
  );
  // Batches before the poison row land; its batch isolates it, and its dead letter hangs.
  await waitFor(async () => (await counts(ch, 'e', 't')).distinct >= STUCK, 'the rows before the poison row', 30_000);
  await waitFor(async () => (await committedOffsets(bootstrap, group, topic, 1))[0] === BigInt(STUCK), 'offsets committed up to the stuck record', 15_000).catch(async (error: unknown) => {
    throw new Error(`${String(error)}: committed ${String((await committedOffsets(bootstrap, group, topic, 1))[0])}\n${(await inserter?.log())?.slice(-2500)}`);
  });
  await sleep(3_000); // many commit intervals later
  assert.equal((await committedOffsets(bootstrap, group, topic, 1))[0], BigInt(STUCK), 'never past the stuck record');
  // The write is under way (to a missing topic the producer waits for it to appear; it logs no failure).
  assert.match(await inserter.log(), /row rejected by the warehouse; dead-lettering it/);
  assert.ok((await counts(ch, 'e', 't')).distinct < STUCK + 199, 'the lane waits behind the stuck record');
  await inserter.kill();
  inserter = undefined;
});
