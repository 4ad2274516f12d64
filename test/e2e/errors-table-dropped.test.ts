// A table dropped mid-stream: with table creation enabled, inserter recreates it from the route's
// template and every row produced after the drop lands exactly once; with creation disabled, the
// rows are held (retried, never dead-lettered) until an operator recreates the table, then land.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { produce, readTopic } from '../helpers/bus.ts';
import { useScenarioStack } from '../helpers/error-scenarios.ts';
import { waitFor, type InserterProcess } from '../helpers/inserter.ts';

const stack = useScenarioStack('errors-table-dropped', { database: 'app', table: false, partitions: 0 });
const ddl = 'CREATE TABLE IF NOT EXISTS {database}.{table} (uuid UUID, team_id Int64, _offset UInt64) ENGINE = MergeTree ORDER BY uuid SETTINGS non_replicated_deduplication_window = 1000';

const rows = (n: number): Array<{ value: Buffer }> => Array.from({ length: n }, () => ({ value: Buffer.from(JSON.stringify({ uuid: randomUUID(), team_id: 1 })) }));
const count = async (table: string): Promise<number> => Number((await stack.ch.query(`SELECT count() FROM app.${table}`)).trim());
const counts = async (table: string): Promise<string> => (await stack.ch.query(`SELECT count(), uniqExact(uuid) FROM app.${table}`)).trim();

async function start(topic: string, table: string, create: boolean): Promise<InserterProcess> {
  const ddlFile = join(tmpdir(), `${table}-${Date.now()}.sql`);
  await writeFile(ddlFile, ddl);
  return stack.startWith({
    kafka: { brokers: [stack.bootstrap], groupId: `${topic}-group`, fetchMaxWaitMs: 100 },
    destinations: [{ id: 'a', url: stack.ch.url, database: 'app' }],
    routes: [{ topic, table, destination: 'a', deadLetterTopic: `${topic}.dlq`, createTable: { enabled: create, ddlFile } }],
    batch: { maxRows: 200, maxAgeMs: 200 },
    schemaRefreshMs: 500,
    errorPolicy: { defaults: { missing_object: { baseMs: 100, capMs: 500, maxAttempts: 3, pauseMs: 500 } } },
  });
}

test('dropped mid-stream and recreated from the template: the rows after the drop land once', async () => {
  const { bootstrap } = stack;
  const { topic } = await stack.addTopic('dropped', 2);
  await start(topic, 'recreated', true);
  await produce(bootstrap, topic, rows(500));
  await waitFor(async () => (await count('recreated').catch(() => 0)) === 500, 'first 500 rows', 60_000);
  await stack.ch.query('DROP TABLE app.recreated SYNC');
  await produce(bootstrap, topic, rows(700));
  await waitFor(async () => (await count('recreated').catch(() => 0)) === 700, 'the 700 rows after the drop', 60_000).catch(async (error: unknown) => {
    throw new Error(`${String(error)}: ${await counts('recreated').catch((e: unknown) => String(e))}`);
  });
  await sleep(500);
  assert.equal(await counts('recreated'), '700\t700');
});

test('dropped with creation disabled: held until an operator recreates it, nothing dead-lettered', async () => {
  const { bootstrap, ch } = stack;
  const { topic } = await stack.addTopic('held', 2);
  await ch.query(ddl.replace('{database}', 'app').replace('{table}', 'kept'));
  await start(topic, 'kept', false);
  await produce(bootstrap, topic, rows(300));
  await waitFor(async () => (await count('kept')) === 300, 'first 300 rows', 60_000);
  await ch.query('DROP TABLE app.kept SYNC');
  await produce(bootstrap, topic, rows(400));
  await sleep(3_000);
  await ch.query(ddl.replace('{database}', 'app').replace('{table}', 'kept'));
  await waitFor(async () => (await count('kept')) === 400, 'the 400 held rows after the table came back', 60_000).catch(async (error: unknown) => {
    throw new Error(`${String(error)}: ${await counts('kept').catch((e: unknown) => String(e))}`);
  });
  assert.equal(await counts('kept'), '400\t400');
  assert.equal((await readTopic(bootstrap, `${topic}.dlq`, 1, 1_500).catch(() => [])).length, 0, 'nothing dead-lettered');
});
