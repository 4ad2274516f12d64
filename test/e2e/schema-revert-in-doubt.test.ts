// A schema change *and its revert* inside one insert attempt, against ClickHouse's own server
// (docs/design/delivery.md §11, review 2026-12-06b finding 2). The table has a `z Date` column; one
// row's `z` is not a date, so the server refuses it ("(at row N)"). The inserter reads the schema,
// sends the batch; a fault proxy holds the INSERT while the column is dropped (the row is valid
// then: its `z` is an unknown field, skipped), lets it land, loses its reply, and the column comes
// back. The retry is refused for that row under columns equal to the first read's: only the table's
// definition version (here the metadata's modification time) tells that the first attempt ran under
// another schema. So the range must not be split: every row once, the row dead-lettered marked
// may-have-landed (it is in the table: the first attempt landed). A fingerprint of columns alone
// splits it and inserts the other 99 rows twice.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { committedOffsets, produce } from '../helpers/bus.ts';
import { deadLetters, produceRows, useScenarioStack } from '../helpers/error-scenarios.ts';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.ts';
import { waitFor } from '../helpers/inserter.ts';

const TOTAL = 100;
const ODD = 50; // the row whose `z` is not a date
let proxy: FaultProxy;
const stack = useScenarioStack('schema-revert', {
  sql: ['ALTER TABLE e.t ADD COLUMN z Date'],
  setup: async ({ ch }) => {
    proxy = await startFaultProxy(ch.url);
  },
  teardown: async () => {
    await proxy?.stop();
  },
});
const { topic, dlq } = stack;

test('an ALTER and its revert inside one attempt (insert landed, reply lost): the retry refused for a row is not split; every row once, that row dead-lettered marked', async () => {
  const { bootstrap, ch } = stack;
  const version = async (): Promise<string> => (await ch.query("SELECT metadata_version, metadata_modification_time FROM system.tables WHERE database = 'e' AND name = 't'")).trim();
  const base = await version();
  // The metadata's time has a resolution of seconds: the change and its revert must come in a later
  // second than the table's last change, or they would not move it (what a later second gives).
  await waitFor(
    async () => Number((await ch.query("SELECT now() > (SELECT metadata_modification_time FROM system.tables WHERE database = 'e' AND name = 't')")).trim()) === 1,
    'a later second',
    10_000,
  );
  await produceRows(bootstrap, topic, 0, ODD);
  await produce(bootstrap, topic, [{ key: Buffer.from(String(ODD)), value: Buffer.from(JSON.stringify({ id: ODD, team_id: 1, n: ODD, s: 'odd', k: 0, z: 'not a date' })) }]);
  await produceRows(bootstrap, topic, ODD + 1, TOTAL);
  let reverted = false;
  proxy.loseNextInsertReply(
    () => {
      ch.query('ALTER TABLE e.t ADD COLUMN z Date').then(
        () => (reverted = true),
        (error: unknown) => assert.fail(`the revert failed: ${String(error)}`),
      );
    },
    { before: async () => void (await ch.query('ALTER TABLE e.t DROP COLUMN z')) },
  );
  const inserter = await stack.start({
    url: proxy.url,
    maxRows: TOTAL,
    destination: { compression: 'none' },
    // The retry comes after the revert: the first attempt's outcome stays unknown that long.
    extra: { errorPolicy: { defaults: { transient_network: { baseMs: 3_000, capMs: 3_000 } } } },
  });
  const fail = async (error: unknown): Promise<never> => {
    throw new Error(`${String(error)}\n${(await inserter.log()).slice(-4000)}`);
  };
  await waitFor(async () => reverted, 'the insert landed without z, its reply lost, z back', 30_000).catch(fail);
  const columns = (await ch.query("SELECT groupArray(name) FROM (SELECT name FROM system.columns WHERE database = 'e' AND table = 't' ORDER BY position)")).trim();
  assert.match(columns, /'z'\]$/, 'the same columns as the first read');
  assert.notEqual(await version(), base, 'the definition version moved');
  await waitFor(async () => (await committedOffsets(bootstrap, `${topic}-g`, topic, 1))[0] === BigInt(TOTAL), `committed to ${TOTAL}`, 45_000).catch(fail);
  assert.deepEqual(await stack.counts(), { rows: TOTAL, distinct: TOTAL }, 'the first attempt landed every row; nothing twice');
  const letters = await deadLetters(bootstrap, dlq, 1);
  assert.equal(letters.length, 1, 'exactly the refused row is dead-lettered');
  assert.equal(letters[0]?.headers.get('x-inserter-original-offset'), String(ODD));
  assert.equal(letters[0]?.headers.get('x-inserter-may-have-landed'), 'true');
  assert.doesNotMatch((await inserter.log()) ?? '', /splitting it/, 'never split');
  assert.equal(await inserter.stop(), 0);
});
