// The exactly-once protocol of BigQuerySink.insert (docs/design/bigquery.md, sink/bigquery/jobs.ts)
// in the job states the emulator cannot be made to show — a load job that stays RUNNING, a chain of
// failed jobs, BigQuery's 409 `duplicate` — against a scripted BigQuery (fake-bigquery.ts). Each
// test counts the uploads: a second upload of a token that loaded is a duplicate row set.
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import type { DestinationConfig } from '../../../../src/config/load.ts';
import { Secret } from '../../../../src/config/secret.ts';
import { ErrorClasses } from '../../../../src/errors/classes.ts';
import { AbortedError } from '../../../../src/errors/inserter-error.ts';
import { WarehouseError } from '../../../../src/sink/errors.ts';
import { BigQuerySink } from '../../../../src/sink/bigquery/sink.ts';
import { baseJobId, chainJobId } from '../../../../src/sink/bigquery/jobs.ts';
import type { InsertBatch } from '../../../../src/sink/types.ts';
import { apiError, startFakeBigQuery, succeeded, type FakeBigQuery } from './fake-bigquery.ts';

const PROJECT = 'proj';
let fake: FakeBigQuery;
let sink: BigQuerySink;

/** `location` null: no bigquery.location. */
function destination(url: string, requestTimeoutMs = 5_000, location: string | null = 'US'): DestinationConfig {
  return {
    id: 'bq',
    kind: 'bigquery',
    bigquery: { project: PROJECT, ...(location === null ? {} : { location }) },
    url,
    user: 'default',
    password: new Secret('token-123'),
    database: 'ds',
    maxBufferedBytes: 1024,
    concurrency: 1,
    requestTimeoutMs,
    stalledAfterMs: 1000,
    compression: 'none',
  };
}

function batch(token: string, lines: readonly string[]): InsertBatch {
  const body = lines.map((l) => Buffer.from(`${l}\n`));
  return { table: { database: 'ds', table: 't' }, body, format: 'JSONEachRow', rows: lines.length, bytes: body.reduce((n, b) => n + b.length, 0), token };
}

const base = (token: string): string => baseJobId(PROJECT, 'ds', 't', token);

before(async () => {
  fake = await startFakeBigQuery(PROJECT);
});
after(async () => {
  await sink.close();
  await fake.close();
});
beforeEach(() => {
  fake.jobs.clear();
  fake.uploads.length = 0;
  fake.gets.length = 0;
  fake.requests.length = 0;
  fake.datasets.clear();
  fake.tables.clear();
  fake.onGet = () => undefined;
  fake.afterUpload = () => undefined;
  fake.onUpload = (upload) => ({ runningPolls: 1, done: succeeded(upload.content.split('\n').filter((l) => l !== '').length) });
  fake.beforeUpload = () => undefined;
  sink = new BigQuerySink(destination(fake.url));
});

test('a new token: looked up, uploaded once under inserter_<sha256>, waited for, its output rows returned', async () => {
  const result = await sink.insert(batch('a', ['{"n":1}', '{"n":2}', '{"n":3}']));
  assert.deepEqual(result, { writtenRows: 3 });
  assert.match(base('a'), /^inserter_[0-9a-f]{64}$/);
  assert.deepEqual(
    fake.uploads.map((u) => u.jobId),
    [base('a')],
  );
  const upload = fake.uploads[0];
  assert.equal(upload?.content, '{"n":1}\n{"n":2}\n{"n":3}\n');
  assert.deepEqual((upload?.configuration as { load?: unknown }).load, {
    destinationTable: { projectId: PROJECT, datasetId: 'ds', tableId: 't' },
    sourceFormat: 'NEWLINE_DELIMITED_JSON',
    writeDisposition: 'WRITE_APPEND',
    createDisposition: 'CREATE_NEVER',
    ignoreUnknownValues: true,
    maxBadRecords: 0,
  });
  // jobs.get before the upload (404), then polls until DONE.
  assert.equal(fake.gets[0], base('a'));
  assert.equal(fake.lastAuthorization, 'Bearer token-123');
});

test('the same token again: the job is found DONE and nothing is uploaded again', async () => {
  await sink.insert(batch('b', ['{"n":1}']));
  const result = await sink.insert(batch('b', ['{"n":1}']));
  assert.deepEqual(result, { writtenRows: 1 });
  assert.equal(fake.uploads.length, 1);
});

test('another attempt of the token is still loading: this one waits for that job, uploads nothing', async () => {
  fake.jobs.set(base('c'), { runningPolls: 3, done: succeeded(7) });
  assert.deepEqual(await sink.insert(batch('c', ['{"n":1}'])), { writtenRows: 7 });
  assert.equal(fake.uploads.length, 0);
});

test("a token whose load failed is loaded again under the chain's next id; the failed id is never reused", async () => {
  fake.jobs.set(base('d'), { runningPolls: 0, done: { status: { state: 'DONE', errorResult: { reason: 'backendError', message: 'Backend error. Job aborted.' } } } });
  assert.deepEqual(await sink.insert(batch('d', ['{"n":1}', '{"n":2}'])), { writtenRows: 2 });
  assert.deepEqual(
    fake.uploads.map((u) => u.jobId),
    [chainJobId(base('d'), 1)],
  );
  // And once that one succeeded, the token is done.
  await sink.insert(batch('d', ['{"n":1}', '{"n":2}']));
  assert.equal(fake.uploads.length, 1);
});

test('after many failed loads the chain is searched, not walked: the next id after the last one', async () => {
  const failed = { runningPolls: 0, done: { status: { state: 'DONE', errorResult: { reason: 'rateLimitExceeded', message: 'Exceeded rate limits' } } } };
  for (let i = 0; i < 21; i++) fake.jobs.set(chainJobId(base('e'), i), structuredClone(failed));
  await sink.insert(batch('e', ['{"n":1}']));
  assert.deepEqual(
    fake.uploads.map((u) => u.jobId),
    [chainJobId(base('e'), 21)],
  );
  const lookups = fake.gets.length - 2; // the two polls of the new job
  assert.ok(lookups <= 12, `${lookups} jobs.get to find the end of a chain of 21`);
});

test('a job that the upload finds created meanwhile (409 duplicate) is looked up, not loaded twice', async () => {
  fake.beforeUpload = (jobId) => {
    // A racing attempt created the job between our jobs.get and our upload.
    if (!fake.jobs.has(jobId)) fake.jobs.set(jobId, { runningPolls: 1, done: succeeded(5) });
  };
  assert.deepEqual(await sink.insert(batch('f', ['{"n":1}'])), { writtenRows: 5 });
  assert.equal(fake.uploads.length, 0);
});

test('a failed load names its row: row_data with the 1-based row, computed from the byte position', async () => {
  const lines = ['{"n":1}', '{"n":2}', '{"n":"x"}', '{"n":4}'];
  const position = lines.slice(0, 2).reduce((n, l) => n + l.length + 1, 0);
  fake.onUpload = () => ({
    runningPolls: 0,
    done: {
      status: {
        state: 'DONE',
        errorResult: {
          reason: 'invalid',
          message: 'Error while reading data, error message: JSON table encountered too many errors, giving up. Rows: 1; errors: 1. Please look into the errors[] collection for more details.',
        },
        errors: [
          {
            reason: 'invalid',
            message: 'Error while reading data, error message: JSON table encountered too many errors, giving up. Rows: 1; errors: 1. Please look into the errors[] collection for more details.',
          },
          {
            reason: 'invalid',
            message: `Error while reading data, error message: JSON parsing error in row starting at position ${position}: Could not convert value 'string_value: "x"' to integer. Field: n; Value: x`,
          },
        ],
      },
    },
  });
  await assert.rejects(sink.insert(batch('g', lines)), (error: unknown) => {
    assert.ok(error instanceof WarehouseError);
    assert.equal(error.errorClass, ErrorClasses.rowData);
    assert.equal(error.row, 3);
    assert.match(error.message, /Could not convert value/);
    return true;
  });
});

test('an abort while the job runs rejects at once with AbortedError; the job is left to finish', async () => {
  fake.onUpload = () => ({ runningPolls: 1_000_000, done: succeeded(1) });
  const controller = new AbortController();
  const pending = sink.insert(batch('h', ['{"n":1}']), controller.signal);
  const started = Date.now();
  setTimeout(() => controller.abort(), 300);
  await assert.rejects(pending, AbortedError);
  assert.ok(Date.now() - started < 2_000, 'rejected promptly');
});

test('a job still running after requestTimeoutMs: unknown_insert_status, and the retry waits for that job', async () => {
  sink = new BigQuerySink(destination(fake.url, 400));
  fake.onUpload = () => ({ runningPolls: 5, done: succeeded(1) });
  await assert.rejects(sink.insert(batch('i', ['{"n":1}'])), (error: unknown) => error instanceof WarehouseError && error.errorClass === ErrorClasses.unknownInsertStatus);
  sink = new BigQuerySink(destination(fake.url, 10_000));
  assert.deepEqual(await sink.insert(batch('i', ['{"n":1}'])), { writtenRows: 1 });
  assert.equal(fake.uploads.length, 1);
});

test('the empty insert (a probe) loads nothing: it asks whether the table is there', async () => {
  await assert.rejects(sink.insert(batch('j/probe', [])), (error: unknown) => error instanceof WarehouseError && error.errorClass === ErrorClasses.missingObject);
  fake.tables.set('ds.t', { tableReference: { projectId: PROJECT, datasetId: 'ds', tableId: 't' }, schema: { fields: [{ name: 'n', type: 'INTEGER' }] } });
  assert.deepEqual(await sink.insert(batch('j/probe', [])), { writtenRows: 0 });
  assert.equal(fake.uploads.length, 0);
});

/** A rejection of class `cls`. */
function classOf(cls: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof WarehouseError, String(error));
    assert.equal(error.errorClass, cls, error.message);
    return true;
  };
}

test('a 5xx of the upload, of a jobs.get of the lookup or of the wait: unknown_insert_status (the job may exist), and the retry under the same token loads nothing more', async () => {
  const backend = { status: 503, body: apiError(503, 'backendError', 'Error encountered during execution. Retrying may solve the problem.') };
  // The upload made its job, and its answer was lost to a 503.
  fake.afterUpload = (upload) => (upload.jobId === base('k1') ? backend : undefined);
  await assert.rejects(sink.insert(batch('k1', ['{"n":1}'])), classOf(ErrorClasses.unknownInsertStatus));
  assert.deepEqual(await sink.insert(batch('k1', ['{"n":1}'])), { writtenRows: 1 });
  // A poll of the job it made fails (the lookup is the first get).
  fake.onGet = (jobId, nth) => (jobId === base('k2') && nth === 1 ? backend : undefined);
  await assert.rejects(sink.insert(batch('k2', ['{"n":1}'])), classOf(ErrorClasses.unknownInsertStatus));
  assert.deepEqual(await sink.insert(batch('k2', ['{"n":1}'])), { writtenRows: 1 });
  // The lookup of a token whose job exists fails; so does a proxy's page.
  fake.onGet = (jobId) => (jobId === base('k2') ? { status: 502, body: '<html>502 Bad Gateway</html>' } : undefined);
  await assert.rejects(sink.insert(batch('k2', ['{"n":1}'])), classOf(ErrorClasses.unknownInsertStatus));
  // A jobs.get refused for a reason of its own says nothing of the job either.
  fake.onGet = (jobId) => (jobId === base('k2') ? { status: 400, body: apiError(400, 'invalid', 'Invalid job ID') } : undefined);
  await assert.rejects(sink.insert(batch('k2', ['{"n":1}'])), classOf(ErrorClasses.unknownInsertStatus));
  assert.deepEqual(
    fake.uploads.map((u) => u.jobId),
    [base('k1'), base('k2')],
  );
});

test('what is known keeps its class: a 4xx refusal of the upload (no job made), a credentials or rate refusal of jobs.get', async () => {
  const refuse = (status: number, reason: string, message: string) => (upload: { jobId: string }) => {
    fake.jobs.delete(upload.jobId); // refused: BigQuery made no job
    return { status, body: apiError(status, reason, message) };
  };
  fake.afterUpload = refuse(403, 'accessDenied', 'Access Denied: Table proj:ds.t');
  await assert.rejects(sink.insert(batch('l1', ['{"n":1}'])), classOf(ErrorClasses.authentication));
  fake.afterUpload = refuse(400, 'invalid', 'Invalid value for location');
  await assert.rejects(sink.insert(batch('l2', ['{"n":1}'])), classOf(ErrorClasses.unknownServerError));
  fake.afterUpload = refuse(404, 'notFound', 'Not found: Table proj:ds.t');
  await assert.rejects(sink.insert(batch('l3', ['{"n":1}'])), classOf(ErrorClasses.missingObject));
  fake.afterUpload = () => undefined;
  fake.onGet = (jobId, nth) => (jobId === base('l4') && nth === 1 ? { status: 429, body: apiError(429, 'rateLimitExceeded', 'Exceeded rate limits') } : undefined);
  await assert.rejects(sink.insert(batch('l4', ['{"n":1}'])), classOf(ErrorClasses.overloaded));
  fake.onGet = (jobId) => (jobId === base('l5') ? { status: 401, body: apiError(401, 'authError', 'Request had invalid authentication credentials.') } : undefined);
  await assert.rejects(sink.insert(batch('l5', ['{"n":1}'])), classOf(ErrorClasses.authentication));
});

test("without bigquery.location: jobs are looked up in the dataset's location (datasets.get, once) and polled in their own", async () => {
  sink = new BigQuerySink(destination(fake.url, 5_000, null));
  fake.datasets.set('ds', { datasetReference: { projectId: PROJECT, datasetId: 'ds' }, location: 'asia-northeast1' });
  await sink.insert(batch('m1', ['{"n":1}']));
  await sink.insert(batch('m2', ['{"n":1}']));
  const datasetGets = fake.requests.filter((r) => r.startsWith(`GET /bigquery/v2/projects/${PROJECT}/datasets/ds`));
  assert.equal(datasetGets.length, 1, `asked once per dataset: ${fake.requests.join('\n')}`);
  assert.deepEqual(
    fake.uploads.map((u) => u.location),
    ['asia-northeast1', 'asia-northeast1'],
  );
  // The fake's jobs are in US whatever they were asked for (its upload's reply says so): polled there.
  const jobGets = fake.requests.filter((r) => r.includes('/jobs/') && r.startsWith('GET ')).map((r) => new URL(r.slice(4), 'http://x').searchParams.get('location'));
  assert.deepEqual(jobGets, ['asia-northeast1', 'US', 'US', 'asia-northeast1', 'US', 'US']);

  // A dataset that names no location (the emulator's), or is not readable: looked up without one.
  sink = new BigQuerySink(destination(fake.url, 5_000, null));
  fake.requests.length = 0;
  fake.datasets.set('ds', { datasetReference: { projectId: PROJECT, datasetId: 'ds' } });
  await sink.insert(batch('m3', ['{"n":1}']));
  assert.equal(fake.uploads.at(-1)?.location, undefined);
  assert.ok(fake.requests.some((r) => r.startsWith(`GET /bigquery/v2/projects/${PROJECT}/jobs/${base('m3')}`) && !r.includes('location=')));

  // tables.get (describe) names it too: no datasets.get then.
  sink = new BigQuerySink(destination(fake.url, 5_000, null));
  fake.requests.length = 0;
  fake.tables.set('ds.t', { location: 'EU', schema: { fields: [{ name: 'n', type: 'INTEGER' }] } });
  await sink.describe({ database: 'ds', table: 't' });
  await sink.insert(batch('m4', ['{"n":1}']));
  assert.equal(fake.uploads.at(-1)?.location, 'EU');
  assert.ok(!fake.requests.some((r) => /\/datasets\/ds(\?|$)/.test(r)), fake.requests.join('\n'));
});
