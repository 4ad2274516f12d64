// TOO_MANY_PARTS (252) induced with a low parts_to_throw_insert and merges stopped: inserter backs
// off (never dead-letters, never splits: smaller inserts would make it worse), and once the table
// can take parts again everything lands, nothing is lost, nothing is dead-lettered, no duplicates.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { produceRows, useScenarioStack } from '../helpers/error-scenarios.ts';

const TOTAL = 4_000;
const stack = useScenarioStack('errors-parts', { tableSettings: 'parts_to_throw_insert = 3, parts_to_delay_insert = 2', sql: ['SYSTEM STOP MERGES e.t'] });

test('TOO_MANY_PARTS backs off, recovers when the table takes parts again, loses and duplicates nothing', async () => {
  await produceRows(stack.bootstrap, stack.topic, 0, TOTAL);
  const inserter = await stack.start({ maxRows: 500, extra: { errorPolicy: { defaults: { too_many_parts: { baseMs: 200, capMs: 1_500 } } } } });
  const backoffs = async (): Promise<number> => (await inserter.log()).split('\n').filter((l) => l.includes('"class":"too_many_parts"') && l.includes('backing off')).length;
  await stack.waitFor(async () => (await backoffs()) >= 3, 'three TOO_MANY_PARTS backoffs', 30_000);
  const stuck = (await stack.counts()).rows;
  assert.ok(stuck < TOTAL, `stuck at ${stuck} rows while the table refuses parts`);
  assert.doesNotMatch(await inserter.log(), /splitting it|dead-lettering/, 'no split, no dead letter for TOO_MANY_PARTS');
  await stack.ch.query('ALTER TABLE e.t MODIFY SETTING parts_to_throw_insert = 3000, parts_to_delay_insert = 1000');
  await stack.waitForRows(TOTAL, 40_000);
  await stack.assertExactlyOnce(TOTAL);
  await stack.assertNothingDeadLettered('no dead-letter topic was ever written');
  assert.equal(await inserter.stop(), 0);
});
