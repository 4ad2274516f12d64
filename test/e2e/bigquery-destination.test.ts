// The same pipeline into a second warehouse: `bin/inserter run` with a `kind: bigquery` destination
// (the BigQuery emulator), killed with SIGKILL at arbitrary points while a producer writes, each
// restart with another batch size. After the last restart every produced row is in BigQuery exactly
// once (count = distinct uuids = produced) and the group's committed offsets reach the log end: the
// ledger's intents and the load jobs' ids (one per insert token, docs/design/bigquery.md) do for
// BigQuery what insert tokens do for ClickHouse. The table is made by the route's DDL file.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { BigQuery } from '@google-cloud/bigquery';
import { OAuth2Client } from 'google-auth-library';
import { startBigQueryEmulator, type BigQueryEmulator } from '../helpers/bigquery-emulator.ts';
import { committedOffsets, endOffsets, produce } from '../helpers/bus.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const PARTITIONS = 3;
const TOTAL = 6_000;
const PROJECT = 'inserter-test';
const DATASET = 'analytics';
let bootstrap: string;
let emulator: BigQueryEmulator;
let current: InserterProcess | undefined;

before(async () => {
  bootstrap = await sharedKafka();
  emulator = await startBigQueryEmulator({ project: PROJECT, dataset: DATASET });
});

after(async () => {
  await current?.kill();
  await emulator?.stop();
});

function client(): BigQuery {
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'emulator-token' });
  return new BigQuery({ projectId: PROJECT, apiEndpoint: emulator.url, authClient: auth });
}

async function counts(table: string): Promise<{ rows: number; distinct: number }> {
  const [rows] = await client().query({ query: `SELECT COUNT(*) AS n, COUNT(DISTINCT uuid) AS d FROM \`${PROJECT}.${DATASET}.${table}\`` });
  const row = (rows as Array<{ n: number; d: number }>)[0];
  return { rows: Number(row?.n ?? 0), distinct: Number(row?.d ?? 0) };
}

test('kill -9 at arbitrary points: every row lands in BigQuery once, offsets reach the end', async () => {
  const topic = uniqueTopic('bq-crash');
  const table = 'events';
  await createTopic(bootstrap, topic, PARTITIONS);
  const dir = await tempDir('inserter-bq-');
  const ddlFile = join(dir, 'events.sql');
  await writeFile(ddlFile, 'CREATE TABLE IF NOT EXISTS {database}.{table} (uuid STRING, team_id INT64, event STRING, n INT64)');
  const config = (maxRows: number): unknown => ({
    kafka: { brokers: [bootstrap], groupId: `${topic}-group`, fetchMaxWaitMs: 100, sessionTimeoutMs: 6_000 },
    destinations: [{ id: 'bq', kind: 'bigquery', url: emulator.url, database: DATASET, password: 'emulator-token', bigquery: { project: PROJECT } }],
    routes: [{ topic, table, destination: 'bq', createTable: { enabled: true, ddlFile } }],
    batch: { maxRows, maxAgeMs: 300 },
    commitIntervalMs: 2_000,
  });
  // Fields the table does not have (`properties`) are skipped, as ClickHouse skips them.
  const messages = Array.from({ length: TOTAL }, (_, n) => ({
    key: Buffer.from(String(n % 17)),
    value: Buffer.from(JSON.stringify({ uuid: randomUUID(), team_id: n % 17, event: 'pageview', n, properties: { $browser: 'x' } })),
  }));
  const producing = (async () => {
    for (let i = 0; i < messages.length; i += 500) {
      await produce(bootstrap, topic, messages.slice(i, i + 500));
      await sleep(300);
    }
  })();
  // Each life starts, inserts some, and is killed; the next one cuts batches differently.
  for (const maxRows of [170, 400, 90]) {
    current = await startInserter(config(maxRows));
    const before = await counts(table).catch(() => ({ rows: 0, distinct: 0 }));
    await waitFor(async () => (await counts(table).catch(() => ({ rows: 0, distinct: 0 }))).rows > before.rows, 'rows inserted by this life', 60_000);
    await current.kill();
  }
  await producing;
  current = await startInserter(config(250));
  await waitFor(async () => (await counts(table)).rows >= TOTAL, `${TOTAL} rows in BigQuery`, 90_000).catch(async (error: unknown) => {
    throw new Error(`${String(error)}: ${JSON.stringify(await counts(table))}\n${(await current?.log())?.slice(-3000)}`);
  });
  const ends = await endOffsets(bootstrap, topic);
  await waitFor(async () => (await committedOffsets(bootstrap, `${topic}-group`, topic, PARTITIONS)).every((o, p) => o === ends[p]), 'committed offsets at the log end', 60_000);
  await sleep(1_000); // a late duplicate would show now
  assert.deepEqual(await counts(table), { rows: TOTAL, distinct: TOTAL });
  assert.equal(await current.stop(), 0);
  current = undefined;
});
