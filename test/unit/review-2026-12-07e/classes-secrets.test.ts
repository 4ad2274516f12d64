// Review 2026-12-07e: what the BigQuery sink's failures say — their class, so the core's policy does
// the right thing (a bad row: isolate and dead-letter that row; quota: back off; auth: pause; a
// missing table: wait or create), and that no secret (the access token, a key's contents) is in an
// error's message, its cause, a log line or a URL. Driven through the real BigQuerySink against
// bq-fake.ts. Tests named 'finding N' failed while that finding stood (fixed since); they guard it now.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { after, before, beforeEach, test } from 'node:test';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { ErrorPolicy } from '../../../src/errors/policy.ts';
import { renderTableDdl } from '../../../src/sink/bigquery/schema.ts';
import { BigQuerySink } from '../../../src/sink/bigquery/sink.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import type { InsertBatch } from '../../../src/sink/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { apiError, batch, destination, startBigQueryFake, type BigQueryFake, type ErrorProto, type Fault } from './bq-fake.ts';
import { tempDir } from '../../helpers/temp-dir.ts';

const TOKEN = 'ya29.SECRET-ACCESS-TOKEN';
let fake: BigQueryFake;
let dir: string;
const sinks: BigQuerySink[] = [];

function sink(options: Parameters<typeof destination>[1] = {}): BigQuerySink {
  const made = new BigQuerySink(destination(fake.url, { password: TOKEN, ...options }));
  sinks.push(made);
  return made;
}

async function failure(promise: Promise<unknown>): Promise<WarehouseError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof WarehouseError, `a WarehouseError, got ${inspect(error)}`);
    return error;
  }
  assert.fail('resolved');
}

/** Everything a failure would show: its message, its cause chain inspected, and a log line of it. */
function shown(error: unknown): string {
  let line = '';
  const logger = createLogger(
    'info',
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        line += chunk.toString();
        done();
      },
    }),
  );
  logger.error({ err: error }, 'insert failed');
  logger.flush();
  return `${error instanceof Error ? error.message : String(error)}\n${inspect(error, { depth: 8 })}\n${line}`;
}

before(async () => {
  fake = await startBigQueryFake('proj');
  dir = await tempDir('review-07e-');
});
after(async () => {
  for (const s of sinks) await s.close();
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  fake.reset();
  fake.tables.set('ds.t', [{ name: 'uuid', type: 'STRING' }]);
});

// ---- classes ----------------------------------------------------------------------------------

test('holds: HTTP refusals of the upload get the class whose policy fits (auth: pause; quota: back off; table: wait/create; size: split)', async () => {
  const cases: Array<[string, Fault, string]> = [
    ['401', { before: 401, body: apiError(401, 'authError', 'Request had invalid authentication credentials.') }, ErrorClasses.authentication],
    ['403 accessDenied', { before: 403, body: apiError(403, 'accessDenied', 'Access Denied: Table proj:ds.t: Permission bigquery.tables.updateData denied') }, ErrorClasses.authentication],
    ['403 quotaExceeded', { before: 403, body: apiError(403, 'quotaExceeded', 'Quota exceeded: Your table exceeded quota for imports or query appends per table.') }, ErrorClasses.overloaded],
    ['403 rateLimitExceeded', { before: 403, body: apiError(403, 'rateLimitExceeded', 'Exceeded rate limits: too many table update operations for this table.') }, ErrorClasses.overloaded],
    ['429', { before: 429, text: 'Too Many Requests' }, ErrorClasses.overloaded],
    ['404 table', { before: 404, body: apiError(404, 'notFound', 'Not found: Table proj:ds.t') }, ErrorClasses.missingObject],
    ['404 dataset', { before: 404, body: apiError(404, 'notFound', 'Not found: Dataset proj:ds') }, ErrorClasses.missingObject],
    ['413', { before: 413, text: 'Request Entity Too Large' }, ErrorClasses.memoryLimit],
  ];
  const s = sink();
  for (const [name, fault, expected] of cases) {
    fake.fault = (call) => (call.kind === 'upload' ? fault : undefined);
    const refused = await failure(s.insert(batch(`http-${name}`, ['a'])));
    assert.equal(refused.errorClass, expected, `${name}: ${refused.message}`);
  }
  const policy = new ErrorPolicy();
  assert.equal(policy.resolve(ErrorClasses.overloaded, 'r', 'd').then, 'pauseDestination');
  assert.equal(policy.resolve(ErrorClasses.authentication, 'r', 'd').then, 'pauseDestination');
});

test("holds: failed load jobs get their class from errorResult (and a named row becomes the insert's row)", async () => {
  const top = {
    reason: 'invalid',
    message: 'Error while reading data, error message: JSON table encountered too many errors, giving up. Rows: 1; errors: 1. Please look into the errors[] collection for more details.',
  };
  // Multi-byte characters before the bad row, and buffers cut mid-line: the position is in bytes.
  const lines = ['{"uuid":"żółć"}', '{"uuid":"日本語"}', '{"uuid":"bad"}', '{"uuid":"d"}'];
  const joined = Buffer.from(lines.map((l) => `${l}\n`).join(''));
  const body = [joined.subarray(0, 5), joined.subarray(5, 23), joined.subarray(23, 24), joined.subarray(24)];
  const position = Buffer.byteLength(`${lines[0]}\n${lines[1]}\n`);
  const multi: InsertBatch = { table: { database: 'ds', table: 't' }, body, format: 'JSONEachRow', rows: 4, bytes: joined.length, token: 'job-row' };
  const cases: Array<[string, ErrorProto, readonly ErrorProto[] | undefined, string, number | undefined]> = [
    [
      'row at a position',
      top,
      [
        top,
        {
          reason: 'invalid',
          message: `Error while reading data, error message: JSON parsing error in row starting at position ${position}: Could not convert value 'string_value: "bad"' to integer. Field: n; Value: bad`,
        },
      ],
      ErrorClasses.rowData,
      3,
    ],
    ['emulator strconv', { reason: 'jobInternalError', message: 'failed to convert: strconv.ParseInt: parsing "bad": invalid syntax' }, undefined, ErrorClasses.rowData, undefined],
    [
      'schema mismatch',
      { reason: 'invalid', message: 'Provided Schema does not match Table proj:ds.t. Field n has changed type from INTEGER to STRING' },
      undefined,
      ErrorClasses.unknownServerError,
      undefined,
    ],
    ['table gone', { reason: 'notFound', message: 'Not found: Table proj:ds.t was not found in location US' }, undefined, ErrorClasses.missingObject, undefined],
    ['quota', { reason: 'quotaExceeded', message: 'Quota exceeded: Your table exceeded quota for imports or query appends per table.' }, undefined, ErrorClasses.overloaded, undefined],
    ['resources', { reason: 'resourcesExceeded', message: 'Resources exceeded during query execution' }, undefined, ErrorClasses.memoryLimit, undefined],
    ['backend', { reason: 'backendError', message: 'Backend error. Job aborted.' }, undefined, ErrorClasses.unknownServerError, undefined],
    ['denied', { reason: 'accessDenied', message: 'Access Denied: Table proj:ds.t: Permission bigquery.tables.updateData denied' }, undefined, ErrorClasses.authentication, undefined],
  ];
  const s = sink();
  for (const [name, error, errors, expected, row] of cases) {
    fake.fate = () => ({ afterMs: 0, error, errors });
    const refused = await failure(s.insert({ ...multi, token: `job-${name}` }));
    assert.equal(refused.errorClass, expected, `${name}: ${refused.message}`);
    assert.equal(refused.row, row, name);
  }
});

test('holds: the probe (an insert of no rows) loads nothing and says what a load would: missing table, auth', async () => {
  const s = sink();
  const probe = (table: string): InsertBatch => ({ table: { database: 'ds', table }, body: [], format: 'JSONEachRow', rows: 0, bytes: 0, token: 'x/0-9/probe' });
  assert.deepEqual(await s.insert(probe('t')), { writtenRows: 0 });
  assert.equal((await failure(s.insert(probe('gone')))).errorClass, ErrorClasses.missingObject);
  fake.fault = (call) => (call.kind === 'getTable' ? { before: 403, body: apiError(403, 'accessDenied', 'Access Denied: Table proj:ds.t') } : undefined);
  assert.equal((await failure(s.insert(probe('t')))).errorClass, ErrorClasses.authentication);
  assert.equal(fake.uploads().length, 0);
});

test('holds: tokens with odd characters make plain job ids; dataset and table names that are not plain are never put into DDL', async () => {
  const s = sink();
  for (const token of ['a/b/0-9/probe', 'ż\u0000\n"`\'; DROP', 'x'.repeat(5000), '../../jobs/other']) {
    await s.insert(batch(token, ['a']));
  }
  for (const upload of fake.uploads()) assert.match(upload.jobId ?? '', /^inserter_[0-9a-f]{64}$/);
  for (const call of fake.calls) assert.doesNotMatch(call.url, /DROP|\.\.\/|%2F\.\./);
  const template = 'CREATE TABLE IF NOT EXISTS {database}.{table} (uuid STRING)';
  for (const table of [
    { database: 'ds', table: 't` (x INT64); DROP TABLE ds.y; --' },
    { database: 'ds`; DROP SCHEMA x; --', table: 't' },
    { database: 'ds', table: 't\n' },
    { database: 'ds', table: '{database}' },
  ]) {
    assert.throws(
      () => renderTableDdl(table, template),
      (error: unknown) => error instanceof WarehouseError && error.errorClass === ErrorClasses.missingObject,
    );
  }
  assert.equal(renderTableDdl({ database: 'ds', table: 'events_2' }, template), 'CREATE TABLE IF NOT EXISTS `ds`.`events_2` (uuid STRING)');
});

// ---- secrets ----------------------------------------------------------------------------------

test("holds: the access token is in no URL, and in no failure of BigQuery's own shapes (401, 403, 5xx, a failed job, a reset)", async () => {
  const s = sink();
  const faults: Fault[] = [
    { before: 401, body: apiError(401, 'authError', 'Request had invalid authentication credentials.') },
    { before: 503, text: '<html>503 Service Unavailable</html>' },
    'reset',
  ];
  for (const [i, fault] of faults.entries()) {
    fake.fault = (call) => (call.kind === 'upload' ? fault : undefined);
    assert.ok(!shown(await failure(s.insert(batch(`secret-${i}`, ['a'])))).includes(TOKEN));
  }
  fake.fault = () => undefined;
  fake.fate = () => ({ afterMs: 0, error: { reason: 'invalid', message: 'Error while reading data' } });
  assert.ok(!shown(await failure(s.insert(batch('secret-job', ['a'])))).includes(TOKEN));
  assert.ok(fake.calls.length > 0);
  for (const call of fake.calls) {
    assert.ok(!call.url.includes('SECRET'), call.url);
    assert.equal(call.authorization, `Bearer ${TOKEN}`);
  }
});

test('holds: a key file that is not a usable service-account key is an authentication failure that shows none of its contents', async () => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const body = privateKey.split('\n')[1] ?? '';
  const files: Array<[string, string]> = [
    ['not JSON', `{"private_key": "${body}"`],
    ['another type', JSON.stringify({ type: 'external_account', credential_source: { executable: { command: `/bin/echo ${body}` } } })],
    ['broken key', JSON.stringify({ type: 'service_account', client_email: 'a@b.c', private_key: `-----BEGIN PRIVATE KEY-----\n${body.slice(0, 40)}\n-----END PRIVATE KEY-----\n` })],
  ];
  for (const [name, content] of files) {
    const file = join(dir, `${name.replaceAll(' ', '-')}.json`);
    await writeFile(file, content);
    const refused = await failure(sink({ credentialsFile: file }).describe({ database: 'ds', table: 't' }));
    assert.equal(refused.errorClass, ErrorClasses.authentication, `${name}: ${refused.message}`);
    assert.ok(!shown(refused).includes(body.slice(0, 40)), `${name} shows the key`);
  }
});

test("finding 5: an error body that echoes the request's Authorization header (a proxy, a gateway) puts the access token in the error and its log line", async () => {
  const s = sink();
  const echoes: Fault[] = [
    { before: 400, body: apiError(400, 'invalid', `Invalid request header: Authorization: Bearer ${TOKEN}`) },
    { before: 502, text: `Bad Gateway: upstream refused GET with Authorization: Bearer ${TOKEN}` },
  ];
  const leaks: string[] = [];
  for (const [i, fault] of echoes.entries()) {
    fake.fault = (call) => (call.kind === 'getJob' ? fault : undefined);
    const refused = await failure(s.insert(batch(`echo-${i}`, ['a'])));
    if (refused.message.includes(TOKEN)) leaks.push(`message of ${refused.errorClass}`);
    else if (shown(refused).includes(TOKEN)) leaks.push(`cause or log of ${refused.errorClass}`);
  }
  assert.deepEqual(leaks, []);
});

test('finding 6: a password that is not a valid header value (a service-account key pasted as the password): the failure shows it — message, cause and log line', async () => {
  const pasted = JSON.stringify({ type: 'service_account', client_email: 'a@b.c', private_key: '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n' }, null, 2);
  const refused = await failure(sink({ password: pasted }).describe({ database: 'ds', table: 't' }));
  const text = shown(refused);
  assert.ok(!text.includes('MIIEvQIBADANBgkqhkiG9w0BAQEFAASC') && !text.includes('"type": "service_account"'), `the failure (${refused.errorClass}: ${refused.message}) shows the password`);
});

test('minor finding 9: the failure after three "created meanwhile" rounds keeps the raw HTTP client error as its cause (its request config, the upload\'s body stream), not a slim one', async () => {
  fake.fault = (call) => (call.kind === 'upload' ? { before: 409, body: apiError(409, 'duplicate', 'Already Exists: Job') } : undefined);
  const refused = await failure(sink().insert(batch('dup-cause', ['a'])));
  const cause = refused.cause as Record<string, unknown> | undefined;
  assert.ok(cause !== undefined && !('config' in cause) && !('response' in cause), `the cause keeps ${Object.keys(cause ?? {}).join(', ')}`);
});
