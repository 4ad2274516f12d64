// MEMORY_LIMIT_EXCEEDED (241) from a tiny max_memory_usage of the insert user (chDB produces it
// reliably for a 10,000-row JSONEachRow insert at 3 MB): the batch is split until the parts fit,
// and all rows land exactly once, nothing dead-lettered.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { produceRows, useScenarioStack } from '../helpers/error-scenarios.ts';

const TOTAL = 20_000;
const stack = useScenarioStack('errors-memory', { insertUser: { name: 'tiny', password: 'pw', settings: { max_memory_usage: '3000000' } } });

test('MEMORY_LIMIT_EXCEEDED splits the batch and every row lands once', async () => {
  await produceRows(stack.bootstrap, stack.topic, 0, TOTAL, { pad: 200 });
  const inserter = await stack.start({ maxRows: 10_000 });
  await stack.waitForRows(TOTAL, 45_000);
  await stack.assertExactlyOnce(TOTAL);
  assert.match(await inserter.log(), /"class":"memory_limit".*splitting it/, 'split for the memory limit');
  await stack.assertNothingDeadLettered();
  assert.equal(await inserter.stop(), 0);
});
