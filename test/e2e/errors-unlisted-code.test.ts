// One message ClickHouse rejects with a code no class lists — an unknown field nested deeper than
// the server parses (Code 306 TOO_DEEP_RECURSION, no "(at row N)") — among 8,000 good ones, in
// batches of 2,000: the insert is bisected (class unknown_server_error), exactly that message is in
// the dead-letter topic with the code and message, every other row is in ClickHouse once, and the
// group's committed offset reaches the log end (the partition never waits on it). A poison message
// alone in its batch (low traffic) is judged by an empty insert into the table, which the real
// server accepts, so it is dead-lettered too.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { committedOffsets, endOffsets, produce } from '../helpers/bus.ts';
import { deadLetters, produceRows, useScenarioStack } from '../helpers/error-scenarios.ts';

const stack = useScenarioStack('errors-unlisted', { extraTables: ['alone'] });
const { topic, group, dlq } = stack;
const deepValue = (id: number): Buffer => Buffer.from(`{"id":${id},"team_id":1,"n":1,"s":"deep","k":0,"extra":${'['.repeat(1_500)}${']'.repeat(1_500)}}`);

test('a message rejected with an unlisted server code is dead-lettered alone; the other 8,000 land once and commits reach the log end', async () => {
  const { bootstrap } = stack;
  await produceRows(bootstrap, topic, 0, 3_210);
  const depth = 1_500;
  const poison = Buffer.from(`{"id":999999,"team_id":1,"n":1,"s":"deep","k":0,"extra":${'['.repeat(depth)}${']'.repeat(depth)}}`);
  await produce(bootstrap, topic, [{ key: Buffer.from('deep'), value: poison }]);
  await produceRows(bootstrap, topic, 3_210, 8_000);
  const inserter = await stack.start({ maxRows: 2_000 });
  const [end] = await endOffsets(bootstrap, topic);
  await stack.waitFor(async () => (await stack.counts()).distinct >= 8_000 && (await committedOffsets(bootstrap, group, topic, 1))[0] === end, '8,000 rows and commits at the log end', 60_000);
  const letters = await deadLetters(bootstrap, dlq, 1);
  assert.equal(letters.length, 1, 'one dead letter');
  assert.deepEqual(letters[0]?.value, poison);
  assert.equal(letters[0]?.headers.get('x-inserter-error-class'), 'unknown_server_error');
  assert.equal(letters[0]?.headers.get('x-inserter-error-code'), 'INSERTER_SINK_UNKNOWN_SERVER_ERROR');
  assert.equal(letters[0]?.headers.get('x-inserter-clickhouse-code'), '306');
  assert.match(letters[0]?.headers.get('x-inserter-error-message') ?? '', /too deep/i);
  assert.equal(letters[0]?.headers.get('x-inserter-original-offset'), '3210');
  await stack.assertExactlyOnce(8_000);
  assert.equal(await inserter.stop(), 0);
});

test('a message rejected with an unlisted server code alone in its batch is dead-lettered after an empty probe insert lands', async () => {
  const { bootstrap } = stack;
  const lonely = await stack.addTopic('errors-unlisted-alone');
  await produceRows(bootstrap, lonely.topic, 0, 2);
  const poison = deepValue(777_777);
  await produce(bootstrap, lonely.topic, [{ key: Buffer.from('deep'), value: poison }]);
  await produceRows(bootstrap, lonely.topic, 2, 4);
  const second = await stack.start({ topic: lonely.topic, group: lonely.group, deadLetterTopic: lonely.dlq, table: 'alone', maxRows: 1 });
  const [end] = await endOffsets(bootstrap, lonely.topic);
  await stack.waitFor(
    async () => (await stack.counts('alone')).distinct >= 4 && (await committedOffsets(bootstrap, lonely.group, lonely.topic, 1))[0] === end,
    '4 rows and commits at the log end',
    60_000,
  );
  const letters = await deadLetters(bootstrap, lonely.dlq, 1);
  assert.equal(letters.length, 1, 'one dead letter');
  assert.deepEqual(letters[0]?.value, poison);
  assert.equal(letters[0]?.headers.get('x-inserter-clickhouse-code'), '306');
  await stack.assertExactlyOnce(4, 'alone');
  assert.equal(await second.stop(), 0);
});
