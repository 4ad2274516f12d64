// One poison row among 10,000 good ones: the error policy isolates it (bisecting, guided by
// ClickHouse's "at row N"), so exactly that row is in the dead-letter topic with its reason, and
// every other row is in ClickHouse exactly once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { produce } from '../helpers/bus.ts';
import { deadLetters, produceRows, useScenarioStack } from '../helpers/error-scenarios.ts';

const stack = useScenarioStack('errors-poison');
const { topic, dlq } = stack;

test('exactly the poison row is dead-lettered; the other 10,000 land once', async () => {
  await produceRows(stack.bootstrap, topic, 0, 6_123);
  const poison = Buffer.from(JSON.stringify({ id: 999_999, team_id: 1, n: 'not a number', s: 'poison', k: 0 }));
  await produce(stack.bootstrap, topic, [{ key: Buffer.from('poison'), value: poison }]);
  await produceRows(stack.bootstrap, topic, 6_123, 10_000);
  const inserter = await stack.start({ maxRows: 10_001 });
  await stack.waitForRows(10_000, 45_000);
  const letters = await deadLetters(stack.bootstrap, dlq, 1);
  assert.equal(letters.length, 1, 'one dead letter');
  assert.deepEqual(letters[0]?.value, poison);
  assert.equal(letters[0]?.headers.get('x-inserter-error-class'), 'row_data');
  assert.equal(letters[0]?.headers.get('x-inserter-original-offset'), '6123');
  await stack.assertExactlyOnce(10_000);
  assert.equal(await inserter.stop(), 0);
});
