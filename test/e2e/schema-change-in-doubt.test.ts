// A schema change between an insert that landed (its reply lost) and its retry, against ClickHouse's
// own server (docs/design/delivery.md §11). The table gains a `Date` column while the reply of the
// first insert is lost; one row carries a field of that name that is not a date (skipped before the
// ALTER, refused after it, "(at row N)"). The retry must not split the batch into new tokens: the
// refused row is left out, the rest re-sent under the same token (ClickHouse deduplicates it: the
// first attempt landed), and the row is dead-lettered marked may-have-landed. Every row is in the
// table exactly once; commits reach the end. This also checks two facts of the server the design
// rests on: a retry is parsed (and refused) before its token is looked at, and a deduplicated insert
// of fewer rows under the same token stores nothing. (The frame: test/helpers/in-doubt-scenario.ts.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectEveryRowOnceOddMarked, produceWithOddRow, startThroughProxy, useInDoubtStack } from '../helpers/in-doubt-scenario.ts';

const scenario = useInDoubtStack('schema-in-doubt');
const { stack } = scenario;

test('an insert whose reply was lost, retried after an ALTER that makes one row invalid: every row once, that row dead-lettered marked may-have-landed', async () => {
  const { ch } = stack;
  await produceWithOddRow(stack);
  let altered = false;
  scenario.proxy().loseNextInsertReply(() => {
    ch.query('ALTER TABLE e.t ADD COLUMN z Date').then(
      () => (altered = true),
      (error: unknown) => assert.fail(`ALTER failed: ${String(error)}`),
    );
  });
  const inserter = await startThroughProxy(scenario);
  await stack.waitFor(async () => altered, 'the reply lost and the table altered', 30_000);
  await expectEveryRowOnceOddMarked(stack, inserter);
});
