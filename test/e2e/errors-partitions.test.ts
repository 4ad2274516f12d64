// A batch spanning more partitions than the insert user's max_partitions_per_insert_block (252,
// "Too many partitions for single INSERT block") is split — at once, without backing off — until
// each insert fits, and the batch lands whole: every row once, nothing dead-lettered.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { produceRows, useScenarioStack } from '../helpers/error-scenarios.ts';

const TOTAL = 6_000;
const stack = useScenarioStack('errors-partitions', { insertUser: { name: 'ingest', password: 'pw', settings: { max_partitions_per_insert_block: '5' } } });

test('a batch over max_partitions_per_insert_block is split and lands whole', async () => {
  // Runs of 100 rows per partition value, 12 values: a 3,000-row batch touches 12 partitions.
  await produceRows(stack.bootstrap, stack.topic, 0, TOTAL, { partitions: 12, run: 100 });
  const inserter = await stack.start({ maxRows: 3_000 });
  await stack.waitForRows(TOTAL, 45_000);
  await stack.assertExactlyOnce(TOTAL);
  const log = await inserter.log();
  assert.match(log, /"class":"too_many_partitions".*splitting it/, 'split for too many partitions');
  assert.doesNotMatch(log, /"class":"too_many_partitions".*backing off/, 'no backoff for too many partitions');
  await stack.assertNothingDeadLettered();
  assert.equal(await inserter.stop(), 0);
});
