// The dead-letter topic cannot be written (it does not exist and topic creation is disabled; an
// illegal topic name is refused by the config before anything starts): the poison row's dead letter
// is retried and no offset is committed past it, while the records before it are committed
// normally. A record leaves Kafka only for the warehouse or the DLQ. The wait is not silent: each
// attempt fails at once as INSERTER_DLQ_TOPIC_MISSING naming the topic, logged and counted
// (inserter_dead_letter_write_failures_total, inserter_dead_letters_waiting); once the topic is
// created the dead letter is written and commits move past it. (On 4942df1 the write waited inside
// the Kafka client without a word: no log line, no metric.)
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { committedOffsets, produce } from '../helpers/bus.ts';
import { deadLetters, freePort, metricSample as sample, produceRows, useScenarioStack } from '../helpers/error-scenarios.ts';
import { createTopic } from '../helpers/kafka.ts';

const STUCK = 1_024;
const stack = useScenarioStack('errors-dlq-down');
const { topic, group } = stack;

test('with the dead-letter topic missing, no offset is committed past the stuck record; the failure is named, logged and counted; created, the dead letter lands', async () => {
  const { bootstrap } = stack;
  const dlq = `${topic}.missing-dlq`;
  const metricsPort = await freePort();
  // The commit watermark moves in chunks of 512 records: 1,024 good ones fill two chunks.
  await produceRows(bootstrap, topic, 0, STUCK); // offsets 0-1023
  await produce(bootstrap, topic, [{ value: Buffer.from(JSON.stringify({ id: STUCK, team_id: 1, n: 'bad', s: '', k: 0 })) }]); // offset 1024
  await produceRows(bootstrap, topic, STUCK + 1, STUCK + 200);
  const inserter = await stack.start({
    deadLetterTopic: dlq,
    maxRows: 256,
    extra: { kafka: { brokers: [bootstrap], groupId: group, fetchMaxWaitMs: 100, createDeadLetterTopics: 0 }, telemetry: { metricsListen: `127.0.0.1:${metricsPort}` } },
  });
  // Batches before the poison row land; its batch isolates it, and its dead letter cannot be written.
  await stack.waitFor(async () => (await stack.counts()).distinct >= STUCK, 'the rows before the poison row', 30_000);
  const committed = async (): Promise<string> => `committed ${String((await committedOffsets(bootstrap, group, topic, 1))[0])}`;
  await stack.waitFor(async () => (await committedOffsets(bootstrap, group, topic, 1))[0] === BigInt(STUCK), 'offsets committed up to the stuck record', 15_000, committed);
  // Named and counted within a bounded time (the first attempt fails at once; retries back off to 1 s here).
  const failures = `inserter_dead_letter_write_failures_total{topic="${dlq}",code="INSERTER_DLQ_TOPIC_MISSING"}`;
  await stack.waitFor(async () => ((await sample(metricsPort, failures)) ?? 0) >= 3, 'three failed attempts counted', 15_000);
  assert.equal(await sample(metricsPort, `inserter_dead_letters_waiting{topic="${dlq}"}`), 1, 'one dead letter waiting');
  const log = await inserter.log();
  assert.match(log, /row rejected by the warehouse; dead-lettering it/);
  assert.ok(log.includes(`the dead-letter topic ${dlq} does not exist and is not created`), 'the log names the missing topic');
  assert.match(log, /"code":"INSERTER_DLQ_TOPIC_MISSING"/);
  await sleep(2_000); // many commit intervals later
  assert.equal((await committedOffsets(bootstrap, group, topic, 1))[0], BigInt(STUCK), 'never past the stuck record');
  assert.ok((await stack.counts()).distinct < STUCK + 199, 'the lane waits behind the stuck record');
  // The operator creates the topic: the next attempt writes the dead letter and commits move on.
  await createTopic(bootstrap, dlq, 1);
  await stack.waitFor(async () => (await committedOffsets(bootstrap, group, topic, 1))[0] === BigInt(STUCK + 200), 'commits at the log end', 30_000, committed);
  const letters = await deadLetters(bootstrap, dlq, 0);
  assert.equal(letters.length, 1, 'one dead letter');
  assert.equal(letters[0]?.headers.get('x-inserter-original-offset'), String(STUCK));
  assert.equal(await sample(metricsPort, `inserter_dead_letters_waiting{topic="${dlq}"}`), 0);
  assert.equal((await stack.counts()).distinct, STUCK + 199, 'every good row');
  await inserter.kill();
});
