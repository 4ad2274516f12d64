// A schema change between an insert that landed (its reply lost) and its retry, against ClickHouse's
// own server (docs/design/delivery.md §11). The table gains a `Date` column while the reply of the
// first insert is lost; one row carries a field of that name that is not a date (skipped before the
// ALTER, refused after it, "(at row N)"). The retry must not split the batch into new tokens: the
// refused row is left out, the rest re-sent under the same token (ClickHouse deduplicates it: the
// first attempt landed), and the row is dead-lettered marked may-have-landed. Every row is in the
// table exactly once; commits reach the end. This also checks two facts of the server the design
// rests on: a retry is parsed (and refused) before its token is looked at, and a deduplicated insert
// of fewer rows under the same token stores nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { committedOffsets, produce } from '../helpers/bus.ts';
import { deadLetters, produceRows, useScenarioStack } from '../helpers/error-scenarios.ts';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.ts';
import { waitFor } from '../helpers/inserter.ts';

const TOTAL = 100;
const ODD = 50; // the row whose `z` is not a date
let proxy: FaultProxy;
const stack = useScenarioStack('schema-in-doubt', {
  setup: async ({ ch }) => {
    proxy = await startFaultProxy(ch.url);
  },
  teardown: async () => {
    await proxy?.stop();
  },
});
const { topic, dlq } = stack;

test('an insert whose reply was lost, retried after an ALTER that makes one row invalid: every row once, that row dead-lettered marked may-have-landed', async () => {
  const { bootstrap, ch } = stack;
  await produceRows(bootstrap, topic, 0, ODD);
  await produce(bootstrap, topic, [{ key: Buffer.from(String(ODD)), value: Buffer.from(JSON.stringify({ id: ODD, team_id: 1, n: ODD, s: 'odd', k: 0, z: 'not a date' })) }]);
  await produceRows(bootstrap, topic, ODD + 1, TOTAL);
  let altered = false;
  proxy.loseNextInsertReply(() => {
    ch.query('ALTER TABLE e.t ADD COLUMN z Date').then(
      () => (altered = true),
      (error: unknown) => assert.fail(`ALTER failed: ${String(error)}`),
    );
  });
  const inserter = await stack.start({
    url: proxy.url,
    maxRows: TOTAL,
    destination: { compression: 'none' },
    // The retry comes after the ALTER: the first attempt's outcome stays unknown that long.
    extra: { errorPolicy: { defaults: { transient_network: { baseMs: 3_000, capMs: 3_000 } } } },
  });
  const fail = async (error: unknown): Promise<never> => {
    throw new Error(`${String(error)}\n${(await inserter.log()).slice(-4000)}`);
  };
  await waitFor(async () => altered, 'the reply lost and the table altered', 30_000).catch(fail);
  await waitFor(async () => (await committedOffsets(bootstrap, `${topic}-g`, topic, 1))[0] === BigInt(TOTAL), `committed to ${TOTAL}`, 45_000).catch(fail);
  // The first attempt landed with every row (the odd one's z then unknown and skipped); nothing twice.
  assert.deepEqual(await stack.counts(), { rows: TOTAL, distinct: TOTAL });
  const letters = await deadLetters(bootstrap, dlq, 1);
  assert.equal(letters.length, 1, 'exactly the refused row is dead-lettered');
  const [letter] = letters;
  assert.equal(letter?.headers.get('x-inserter-original-offset'), String(ODD));
  assert.equal(letter?.headers.get('x-inserter-may-have-landed'), 'true');
  assert.equal(letter?.headers.get('x-inserter-error-class'), 'row_data');
  const log = (await inserter.log()) ?? '';
  assert.match(log, /INSERTER_DELIVERY_IN_DOUBT/);
  assert.doesNotMatch(log, /splitting it/, 'never split');
  assert.equal(await inserter.stop(), 0);
});
