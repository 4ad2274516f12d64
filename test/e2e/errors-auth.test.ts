// Wrong password: the destination is paused (keeps probing, logs an error, never dead-letters,
// commits nothing past the rows), and once the server accepts the password (rotated on the server
// side: chlocal restarted with a new users file) it resumes by itself and everything lands once.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { committedOffsets, endOffsets } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { assertExactlyOnce, counts, produceRows, scenarioConfig, TABLE_DDL } from '../helpers/error-scenarios.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const topic = uniqueTopic('errors-auth');
const group = `${topic}-g`;
const dlq = `${topic}.dlq`;
const TOTAL = 3_000;
let bootstrap: string;
let ch: ClickHouseInstance;
let inserter: InserterProcess | undefined;

before(async () => {
  bootstrap = await sharedKafka();
  ch = await startClickHouse({
    users: [
      { name: 'default', password: '' },
      { name: 'ingest', password: 'rotated' },
    ],
  });
  await ch.query('CREATE DATABASE e');
  await ch.query(TABLE_DDL('e', 't'));
  await createTopic(bootstrap, topic, 1);
});

after(async () => {
  await inserter?.kill();
  await ch?.stop();
});

test('a wrong password pauses the destination; it resumes by itself after the fix and loses nothing', async () => {
  await produceRows(bootstrap, topic, 0, TOTAL);
  const config = scenarioConfig({
    bootstrap,
    group,
    topic,
    url: ch.url,
    user: 'ingest',
    password: 'old',
    database: 'e',
    table: 't',
    deadLetterTopic: dlq,
    maxRows: 1_000,
    extra: { errorPolicy: { destinations: { a: { authentication: { baseMs: 100, capMs: 200, pauseMs: 500 } } } } },
  });
  inserter = await startInserter(config);
  const log = async (): Promise<string> => await inserter!.log();
  await waitFor(async () => /destination paused/.test(await log()), 'the destination to be paused', 20_000);
  await sleep(2_000); // paused for a while: it keeps probing, nothing moves
  assert.match(await log(), /"class":"authentication"/);
  assert.equal((await counts(ch, 'e', 't')).rows, 0);
  const committed = await committedOffsets(bootstrap, group, topic, 1);
  assert.ok((committed[0] ?? -1n) <= 0n, `nothing committed while paused (${committed[0]})`);
  // Server-side fix: the password the inserter has becomes valid.
  await writeFile(
    join(ch.dir, 'users.json'),
    JSON.stringify([
      { name: 'default', password: '' },
      { name: 'ingest', password: 'old' },
    ]),
  );
  await ch.restart();
  await waitFor(async () => (await counts(ch, 'e', 't')).distinct >= TOTAL, `${TOTAL} rows after the fix`, 30_000);
  await assertExactlyOnce(ch, 'e', 't', TOTAL);
  assert.match(await log(), /destination resumed/);
  assert.doesNotMatch(await log(), /dead-lettering/);
  assert.deepEqual(await endOffsets(bootstrap, dlq).catch(() => []), [], 'nothing dead-lettered');
  assert.equal(await inserter.stop(), 0);
});
