// BigQuerySink against a real BigQuery API (goccy/bigquery-emulator v0.8.1 as
// scripts/bigquery-emulator.sh builds it, one per file): live schemas, CREATE TABLE from a template,
// and inserts as load jobs under ids derived from their tokens — the same token loads once (one
// after the other, or racing), another token loads again, a failed load is retried under the
// token's next id, a row that does not fit fails the whole batch, and the errors leave classified.
// Rows are counted in the emulator with the @google-cloud/bigquery client. A job that stays
// RUNNING, BigQuery's own error shapes and its 409 are in test/unit/sink/bigquery/protocol.test.ts.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { after, before, test } from 'node:test';
import { BigQuery } from '@google-cloud/bigquery';
import { OAuth2Client } from 'google-auth-library';
import type { DestinationConfig } from '../../src/config/load.ts';
import { Secret } from '../../src/config/secret.ts';
import { ErrorClasses } from '../../src/errors/classes.ts';
import { AbortedError } from '../../src/errors/inserter-error.ts';
import { WarehouseError } from '../../src/sink/errors.ts';
import { BigQuerySink } from '../../src/sink/bigquery/sink.ts';
import { baseJobId } from '../../src/sink/bigquery/jobs.ts';
import type { InsertBatch } from '../../src/sink/types.ts';
import { startBigQueryEmulator, type BigQueryEmulator } from '../helpers/bigquery-emulator.ts';

const PROJECT = 'inserter-test';
const DATASET = 'analytics';
const TOKEN = 'emulator-token-5f1c';
const DDL = 'CREATE TABLE IF NOT EXISTS {database}.{table} (uuid STRING, n INT64, tags ARRAY<STRING>, props STRUCT<a INT64, b STRING>)';
let emulator: BigQueryEmulator;
let sink: BigQuerySink;
let client: BigQuery;

function destination(url: string, options: { requestTimeoutMs?: number; password?: string } = {}): DestinationConfig {
  return {
    id: 'bq',
    kind: 'bigquery',
    bigquery: { project: PROJECT },
    url,
    user: 'default',
    password: new Secret(options.password ?? TOKEN),
    database: DATASET,
    maxBufferedBytes: 64 * 1024 * 1024,
    concurrency: 4,
    requestTimeoutMs: options.requestTimeoutMs ?? 20_000,
    stalledAfterMs: 30_000,
    compression: 'none',
  };
}

function batch(table: string, token: string, rows: readonly unknown[], dataset = DATASET): InsertBatch {
  // Two rows per buffer: a body is a list of blocks, not one buffer.
  const lines = rows.map((r) => `${JSON.stringify(r)}\n`);
  const body: Buffer[] = [];
  for (let i = 0; i < lines.length; i += 2) body.push(Buffer.from(lines.slice(i, i + 2).join('')));
  return { table: { database: dataset, table }, body, format: 'JSONEachRow', rows: rows.length, bytes: body.reduce((n, b) => n + b.length, 0), token };
}

async function select<T>(query: string): Promise<T[]> {
  const [rows] = await client.query({ query });
  return rows as T[];
}

async function uuids(table: string): Promise<string[]> {
  return (await select<{ uuid: string }>(`SELECT uuid FROM \`${PROJECT}.${DATASET}.${table}\` ORDER BY uuid`)).map((r) => r.uuid);
}

async function created(table: string): Promise<void> {
  await sink.createTable({ database: DATASET, table }, DDL);
}

function classOf(cls: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof WarehouseError, `a WarehouseError, got ${inspect(error)}`);
    assert.equal(error.errorClass, cls, error.message);
    return true;
  };
}

/**
 * An API that says "no such job" to jobs.get and then never answers (the upload, tables.get): a
 * request to it only ends by its signal or its timeout. Records what it was sent.
 */
async function stallingApi(): Promise<{ url: string; requests: () => string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url} authorization=${req.headers.authorization ?? ''}`);
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (req.method === 'GET' && /\/datasets\/[^/]+$/.test(path)) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'bigquery#dataset', location: 'US' }));
      return;
    }
    if (req.method === 'GET' && /\/jobs\/[^/]+$/.test(path)) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 404, message: 'job is not found', errors: [{ reason: 'notFound', message: 'job is not found' }] } }));
      return;
    }
    req.resume(); // read the upload, never answer
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

before(async () => {
  emulator = await startBigQueryEmulator({ project: PROJECT, dataset: DATASET });
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'reader' });
  client = new BigQuery({ projectId: PROJECT, apiEndpoint: emulator.url, authClient: auth });
  sink = new BigQuerySink(destination(emulator.url));
});

after(async () => {
  await sink?.close();
  await emulator?.stop();
});

test('describe: undefined for a missing table; a created one lists its top-level fields; the version follows the schema', async () => {
  const table = { database: DATASET, table: 'described' };
  assert.equal(await sink.describe(table), undefined);
  await sink.createTable(table, DDL);
  const schema = await sink.describe(table);
  assert.ok(schema !== undefined);
  assert.deepEqual(schema.columns, [
    { name: 'uuid', type: 'STRING', defaultKind: '' },
    { name: 'n', type: 'INTEGER', defaultKind: '' },
    { name: 'tags', type: 'ARRAY<STRING>', defaultKind: '' },
    { name: 'props', type: 'RECORD', defaultKind: '' },
  ]);
  assert.deepEqual(schema.deduplication, { engine: 'BigQuery load jobs', byToken: true, setting: undefined, windowBlocks: undefined, windowSeconds: 15_552_000, reason: undefined });
  assert.equal(schema.timezone, 'UTC');
  assert.match(schema.version ?? '', /^[\w-]{22}$/);
  // CREATE TABLE IF NOT EXISTS again: nothing changes.
  await sink.createTable(table, DDL);
  assert.equal((await sink.describe(table))?.version, schema.version);
  // A column added (tables.patch; the emulator's ALTER TABLE does not reach tables.get): a new version.
  const metadata: unknown = (await client.dataset(DATASET).table('described').getMetadata())[0];
  const fields = (metadata as { schema: { fields: Array<{ name: string; type: string; mode?: string }> } }).schema.fields;
  await client
    .dataset(DATASET)
    .table('described')
    .setMetadata({ schema: { fields: [...fields, { name: 'added', type: 'STRING', mode: 'NULLABLE' }] } });
  const changed = await sink.describe(table);
  assert.deepEqual(changed?.columns.at(-1), { name: 'added', type: 'STRING', defaultKind: '' });
  assert.notEqual(changed?.version, schema.version);
});

test('createTable: without a template, missing_object naming the DDL file; a name that is not plain is refused', async () => {
  await assert.rejects(
    sink.createTable({ database: DATASET, table: 'no_template' }, undefined),
    (error: unknown) => classOf(ErrorClasses.missingObject)(error) && /DDL file/.test((error as Error).message),
  );
  await assert.rejects(sink.createTable({ database: DATASET, table: 'x` (a INT64); DROP TABLE y; --' }, DDL), classOf(ErrorClasses.missingObject));
  assert.equal(await sink.describe({ database: DATASET, table: 'no_template' }), undefined);
});

test('insert: the JSON lines become rows; fields the table does not have are skipped (ignoreUnknownValues)', async () => {
  await created('events');
  const rows = [
    { uuid: 'a', n: 1, tags: ['x', 'y'], props: { a: 7, b: 'q' }, unknown_field: { deep: [1, 2] } },
    { uuid: 'b', n: 2 },
    { uuid: 'c', n: 3, tags: [] },
  ];
  await sink.insert(batch('events', 'events/0-2', rows));
  const loaded = await select<{ uuid: string; n: number; tags: string[]; props: { a: number; b: string } | null }>(`SELECT uuid, n, tags, props FROM \`${PROJECT}.${DATASET}.events\` ORDER BY uuid`);
  assert.deepEqual(
    loaded.map((r) => [r.uuid, r.n, r.tags, r.props]),
    [
      ['a', 1, ['x', 'y'], { a: 7, b: 'q' }],
      ['b', 2, [], null],
      ['c', 3, [], null],
    ],
  );
  // The emulator skips unknown fields whatever the job says; real BigQuery refuses them unless the
  // job says ignoreUnknownValues, so the job's own configuration is checked.
  const job: unknown = (await client.job(baseJobId(PROJECT, DATASET, 'events', 'events/0-2')).getMetadata())[0];
  const load = (job as { configuration: { load: Record<string, unknown> } }).configuration.load;
  assert.equal(load.ignoreUnknownValues, true);
  assert.equal(load.createDisposition, 'CREATE_NEVER');
  assert.equal(load.writeDisposition, 'WRITE_APPEND');
  assert.equal(load.sourceFormat, 'NEWLINE_DELIMITED_JSON');
});

test('the same token loads once: again afterwards, and racing itself; another token loads again', async () => {
  await created('once');
  const rows = [
    { uuid: 'r1', n: 1 },
    { uuid: 'r2', n: 2 },
  ];
  await sink.insert(batch('once', 'p0/0-1', rows));
  // A retry after the first attempt's reply was lost: the same rows under the same token.
  await sink.insert(batch('once', 'p0/0-1', rows));
  // A fresh sink (a restarted process replaying its ledger) knows nothing but the token.
  const restarted = new BigQuerySink(destination(emulator.url));
  await restarted.insert(batch('once', 'p0/0-1', rows));
  await restarted.close();
  assert.deepEqual(await uuids('once'), ['r1', 'r2']);
  // Three attempts of one token at once (a retry racing its first attempt, a fenced owner): each
  // finds no job, uploads, and all but one are refused as duplicates of the first.
  const racing = [{ uuid: 'r3', n: 3 }];
  const results = await Promise.all([1, 2, 3].map(() => sink.insert(batch('once', 'p0/2-2', racing))));
  assert.equal(results.length, 3);
  assert.deepEqual(await uuids('once'), ['r1', 'r2', 'r3']);
  // Other tokens for the same rows (a split's halves, another offset range) load them again: the
  // job id, not the rows, decides.
  await sink.insert(batch('once', 'p0/0-1/a', rows));
  assert.deepEqual(await uuids('once'), ['r1', 'r1', 'r2', 'r2', 'r3']);
});

test('a row that does not fit its column: row_data, and nothing of its batch is loaded', async () => {
  await created('typed');
  const rows = [
    { uuid: 'ok-1', n: 1 },
    { uuid: 'ok-2', n: 2 },
    { uuid: 'bad', n: 'not a number' },
    { uuid: 'ok-3', n: 3 },
  ];
  await assert.rejects(sink.insert(batch('typed', 't/0-3', rows)), (error: unknown) => classOf(ErrorClasses.rowData)(error) && (error as WarehouseError).retryable === false);
  assert.deepEqual(await uuids('typed'), []);
  // The halves a split sends (new tokens): the good one loads.
  await sink.insert(batch('typed', 't/0-1', rows.slice(0, 2)));
  assert.deepEqual(await uuids('typed'), ['ok-1', 'ok-2']);
});

test('a missing table or dataset: missing_object, and no table is made by the load; the probe says the same', async () => {
  await assert.rejects(sink.insert(batch('absent', 'm/0-0', [{ uuid: 'x', n: 1 }])), classOf(ErrorClasses.missingObject));
  assert.equal(await sink.describe({ database: DATASET, table: 'absent' }), undefined);
  await assert.rejects(sink.insert(batch('absent', 'm/0-0', [{ uuid: 'x', n: 1 }], 'no_such_dataset')), classOf(ErrorClasses.missingObject));
  // The empty insert the delivery probes with: refused for a missing table, accepted for one that is there.
  await assert.rejects(sink.insert(batch('absent', 'm/probe', [])), classOf(ErrorClasses.missingObject));
  await created('probed');
  assert.deepEqual(await sink.insert(batch('probed', 'm/probe', [])), { writtenRows: 0 });
  assert.deepEqual(await uuids('probed'), []);
});

test('abort: an aborted call creates nothing; a hanging request ends at once when aborted or timed out; a refused connection is transient', async () => {
  await created('aborted');
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(sink.insert(batch('aborted', 'a/0-0', [{ uuid: 'x', n: 1 }]), controller.signal), AbortedError);
  await assert.rejects(client.job(baseJobId(PROJECT, DATASET, 'aborted', 'a/0-0')).getMetadata(), /not found/);
  assert.deepEqual(await uuids('aborted'), []);

  const hole = await stallingApi();
  try {
    const hanging = new BigQuerySink(destination(hole.url));
    const started = Date.now();
    await assert.rejects(hanging.insert(batch('aborted', 'a/1-1', [{ uuid: 'y', n: 1 }]), AbortSignal.timeout(500)), AbortedError);
    assert.ok(Date.now() - started < 3_000, `aborted after ${Date.now() - started} ms`);
    // It got as far as the upload (the dataset's location learned, the job id looked up there first),
    // with the token as a bearer token.
    const id = baseJobId(PROJECT, DATASET, 'aborted', 'a/1-1');
    assert.deepEqual(hole.requests(), [
      `GET /bigquery/v2/projects/${PROJECT}/datasets/${DATASET} authorization=Bearer ${TOKEN}`,
      `GET /bigquery/v2/projects/${PROJECT}/jobs/${id}?location=US authorization=Bearer ${TOKEN}`,
      `POST /upload/bigquery/v2/projects/${PROJECT}/jobs?uploadType=multipart authorization=Bearer ${TOKEN}`,
    ]);
    await assert.rejects(hanging.describe({ database: DATASET, table: 'aborted' }, AbortSignal.timeout(300)), AbortedError);
    const slow = new BigQuerySink(destination(hole.url, { requestTimeoutMs: 300 }));
    await assert.rejects(slow.describe({ database: DATASET, table: 'aborted' }), classOf(ErrorClasses.transientNetwork));
  } finally {
    await hole.close();
  }
  const port = new URL(hole.url).port; // closed now: nothing listens
  await assert.rejects(new BigQuerySink(destination(`http://127.0.0.1:${port}`)).describe({ database: DATASET, table: 'x' }), classOf(ErrorClasses.transientNetwork));
});

test('the access token is never part of an error, its message or its cause', async () => {
  const secret = 'secret-token-never-shown-8c2e';
  const withSecret = new BigQuerySink(destination(emulator.url, { password: secret }));
  const failures = await Promise.allSettled([
    withSecret.insert(batch('absent', 's/0-0', [{ uuid: 'x', n: 1 }])),
    withSecret.insert(batch('absent', 's/0-0', [{ uuid: 'x' }], 'no_such_dataset')),
    withSecret.createTable({ database: DATASET, table: 'bad_ddl' }, 'CREATE TABLE {database}.{table} (x NOT_A_TYPE)'),
  ]);
  for (const failure of failures) {
    assert.ok(failure.status === 'rejected');
    const error: unknown = failure.reason;
    assert.ok(error instanceof WarehouseError, inspect(error));
    assert.ok(!inspect(error, { depth: 20, showHidden: true }).includes(secret), 'the token is not in the error');
    assert.ok(!JSON.stringify(error).includes(secret));
  }
  await withSecret.close();
});

test("a load that failed is its job's outcome: the token's retry loads again under the chain's next id", async () => {
  // Needs the emulator as scripts/bigquery-emulator.sh patches it: released, v0.8.1 reports a job
  // whose data failed as DONE without error, and this retry would load nothing.
  const rows = [
    { uuid: 'late-1', n: 1 },
    { uuid: 'late-2', n: 2 },
  ];
  await assert.rejects(sink.insert(batch('late', 'l/0-1', rows)), classOf(ErrorClasses.missingObject));
  const first = baseJobId(PROJECT, DATASET, 'late', 'l/0-1');
  const failed: unknown = (await client.job(first).getMetadata())[0];
  assert.equal((failed as { status: { state: string; errorResult?: unknown } }).status.state, 'DONE');
  assert.ok((failed as { status: { errorResult?: unknown } }).status.errorResult !== undefined, 'the failure is recorded on the job');
  // The table is made (createTable, as the core does for missing_object) and the token retried.
  await created('late');
  await sink.insert(batch('late', 'l/0-1', rows));
  assert.deepEqual(await uuids('late'), ['late-1', 'late-2']);
  const retried: unknown = (await client.job(`${first}_1`).getMetadata())[0];
  assert.deepEqual((retried as { status: unknown }).status, { state: 'DONE' });
  // And that is the token's outcome from now on.
  await sink.insert(batch('late', 'l/0-1', rows));
  assert.deepEqual(await uuids('late'), ['late-1', 'late-2']);
  // A row that can never load fails again under each new id, and nothing of its batch loads.
  const bad = [{ uuid: 'bad-1', n: 'x' }];
  await assert.rejects(sink.insert(batch('late', 'l/2-2', bad)), classOf(ErrorClasses.rowData));
  await assert.rejects(sink.insert(batch('late', 'l/2-2', bad)), classOf(ErrorClasses.rowData));
  await client.job(`${baseJobId(PROJECT, DATASET, 'late', 'l/2-2')}_1`).getMetadata();
  assert.deepEqual(await uuids('late'), ['late-1', 'late-2']);
});
