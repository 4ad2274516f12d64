// A schema change *and its revert* inside one insert attempt, against ClickHouse's own server
// (docs/design/delivery.md §11, review 2026-12-06b finding 2). The table has a `z Date` column; one
// row's `z` is not a date, so the server refuses it ("(at row N)"). The inserter reads the schema,
// sends the batch; a fault proxy holds the INSERT while the column is dropped (the row is valid
// then: its `z` is an unknown field, skipped), lets it land, loses its reply, and the column comes
// back. The retry is refused for that row under columns equal to the first read's: only the table's
// definition version (here the metadata's modification time) tells that the first attempt ran under
// another schema. So the range must not be split: every row once, the row dead-lettered marked
// may-have-landed (it is in the table: the first attempt landed). A fingerprint of columns alone
// splits it and inserts the other 99 rows twice. (The frame: test/helpers/in-doubt-scenario.ts.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectEveryRowOnceOddMarked, produceWithOddRow, startThroughProxy, useInDoubtStack } from '../helpers/in-doubt-scenario.ts';

const scenario = useInDoubtStack('schema-revert', ['ALTER TABLE e.t ADD COLUMN z Date']);
const { stack } = scenario;

test('an ALTER and its revert inside one attempt (insert landed, reply lost): the retry refused for a row is not split; every row once, that row dead-lettered marked', async () => {
  const { ch } = stack;
  const version = async (): Promise<string> => (await ch.query("SELECT metadata_version, metadata_modification_time FROM system.tables WHERE database = 'e' AND name = 't'")).trim();
  const base = await version();
  // The metadata's time has a resolution of seconds: the change and its revert must come in a later
  // second than the table's last change, or they would not move it (what a later second gives).
  await stack.waitFor(
    async () => Number((await ch.query("SELECT now() > (SELECT metadata_modification_time FROM system.tables WHERE database = 'e' AND name = 't')")).trim()) === 1,
    'a later second',
    10_000,
  );
  await produceWithOddRow(stack);
  let reverted = false;
  scenario.proxy().loseNextInsertReply(
    () => {
      ch.query('ALTER TABLE e.t ADD COLUMN z Date').then(
        () => (reverted = true),
        (error: unknown) => assert.fail(`the revert failed: ${String(error)}`),
      );
    },
    { before: async () => void (await ch.query('ALTER TABLE e.t DROP COLUMN z')) },
  );
  const inserter = await startThroughProxy(scenario);
  await stack.waitFor(async () => reverted, 'the insert landed without z, its reply lost, z back', 30_000);
  const columns = (await ch.query("SELECT groupArray(name) FROM (SELECT name FROM system.columns WHERE database = 'e' AND table = 't' ORDER BY position)")).trim();
  assert.match(columns, /'z'\]$/, 'the same columns as the first read');
  assert.notEqual(await version(), base, 'the definition version moved');
  await expectEveryRowOnceOddMarked(stack, inserter);
});
