// A dead letter the dead-letter topic cannot take never blocks a partition: at start, an existing
// dead-letter topic that accepts less than maxMessageBytes + 256 KiB makes `run` refuse, naming the
// topic and the setting, before anything is consumed; a dead letter the broker still refuses as too
// large (MESSAGE_TOO_LARGE) is written without its value, with `x-inserter-value-omitted`, and the
// partition's commits move on.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { committedOffsets, produce } from '../helpers/bus.ts';
import { deadLetters, produceRows, useScenarioStack } from '../helpers/error-scenarios.ts';
import { createTopic } from '../helpers/kafka.ts';

const stack = useScenarioStack('dead-letter-too-large', { partitions: 0 });

test('an existing dead-letter topic with a small max.message.bytes: run refuses to start, naming it; nothing consumed', async () => {
  const { bootstrap } = stack;
  const { topic, group } = await stack.addTopic('dlq-small');
  await createTopic(bootstrap, `${topic}.dlq`, 1, { 'max.message.bytes': '100000' }); // the default dead-letter topic name
  await produceRows(bootstrap, topic, 0, 10);
  const inserter = await stack.start({ topic, group, deadLetterTopic: undefined, extra: { maxMessageBytes: 1024 * 1024 } });
  const code = await Promise.race([inserter.exited, sleep(60_000).then(() => 'timeout' as const)]);
  const log = await inserter.log();
  await inserter.kill(); // only if it did not exit
  assert.notEqual(code, 'timeout', `run did not exit:\n${log.slice(-2000)}`);
  assert.notEqual(code, 0);
  assert.match(log, new RegExp(`dead-letter topic ${topic.replace(/[.-]/g, '\\$&')}\\.dlq accepts less`));
  assert.match(log, /its max\.message\.bytes is 100000/);
  assert.match(log, new RegExp(`at least ${1024 * 1024 + 256 * 1024}`));
  assert.deepEqual(await committedOffsets(bootstrap, group, topic, 1), [-1n], 'nothing committed');
  assert.equal((await stack.counts()).rows, 0, 'nothing inserted');
});

test('a dead letter the broker refuses as too large is written without its value; commits move on', async () => {
  const { bootstrap } = stack;
  const { topic, group, dlq } = await stack.addTopic('dlq-too-large');
  const maxMessageBytes = 64 * 1024;
  // Exactly what the start-up check asks for: it starts.
  await createTopic(bootstrap, dlq, 1, { 'max.message.bytes': String(maxMessageBytes + 256 * 1024) });
  const BAD = 1_024;
  await produceRows(bootstrap, topic, 0, BAD); // offsets 0-1023
  // 1 MiB (incompressible): over maxMessageBytes, so dead-lettered as oversized, with a value the
  // dead-letter topic refuses (MESSAGE_TOO_LARGE).
  const value = randomBytes(1024 * 1024);
  await produce(bootstrap, topic, [{ key: Buffer.from('big'), value, headers: { origin: Buffer.from('test') } }]); // offset 1024
  await produceRows(bootstrap, topic, BAD + 1, BAD + 201);
  // No deadLetterTopic in the route: its default name, `${topic}.dlq`.
  const inserter = await stack.start({ topic, group, deadLetterTopic: undefined, maxRows: 256, extra: { maxMessageBytes } });
  const committed = async (): Promise<string> => `committed ${String((await committedOffsets(bootstrap, group, topic, 1))[0])}`;
  await stack.waitFor(async () => ((await committedOffsets(bootstrap, group, topic, 1))[0] ?? -1n) > BigInt(BAD), 'commits past the oversized record', 60_000, committed);
  await stack.waitFor(async () => (await stack.counts()).distinct === BAD + 200, 'every good row', 30_000);
  const [letter] = await deadLetters(bootstrap, dlq, 0);
  assert.ok(letter !== undefined, 'the dead letter was written');
  assert.equal(letter.headers.get('x-inserter-value-omitted'), String(value.length));
  assert.equal(letter.headers.get('x-inserter-original-offset'), String(BAD));
  assert.equal(letter.headers.get('x-inserter-original-topic'), topic);
  assert.equal(letter.headers.get('x-inserter-error-code'), 'INSERTER_DECODE_OVERSIZED');
  assert.equal(letter.headers.get('origin'), 'test', 'the original headers are kept');
  assert.equal(letter.key?.toString(), 'big');
  assert.ok(letter.value === undefined || letter.value.length === 0, 'no value');
  assert.match(await inserter.log(), /dead letter refused as too large by the broker: written without its value/);
  await inserter.kill();
});
