// The BigQuery classifier on the error shapes it meets: google-auth-library's GaxiosError (status,
// response.data.error) as the emulator and real BigQuery answer, the @google-cloud/bigquery
// ApiError (code, errors), a load job's errorResult/errors[], fetch's network failures, and the
// auth library's own. Emulator shapes were captured from goccy/bigquery-emulator v0.8.1; real
// BigQuery's follow https://cloud.google.com/bigquery/docs/error-messages.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorClasses } from '../../../../src/errors/classes.ts';
import { inspect } from 'node:util';
import { classifyBigQueryError, classifyJobFailure, classifyMaybeLanded, isDuplicateJob, redact, rowAt, slim } from '../../../../src/sink/bigquery/classify.ts';
import { WarehouseError } from '../../../../src/sink/errors.ts';

/** What GaxiosError carries for an HTTP error with a JSON body. */
function httpError(status: number, body: unknown, message = `Request failed with status code ${status}`): Error {
  return Object.assign(new Error(message), { status, code: String(status), response: { status, data: body } });
}
function apiBody(code: number, reason: string, message: string): unknown {
  return { error: { code, message, errors: [{ reason, message, domain: 'global' }] } };
}

test('real BigQuery HTTP errors by reason, else by status', () => {
  const cases: Array<[Error, string]> = [
    [httpError(403, apiBody(403, 'accessDenied', 'Access Denied: Table p:d.t: Permission bigquery.tables.updateData denied on table p:d.t')), ErrorClasses.authentication],
    [
      httpError(401, { error: { code: 401, message: 'Request had invalid authentication credentials.', errors: [{ reason: 'required', message: 'Login Required.' }], status: 'UNAUTHENTICATED' } }),
      ErrorClasses.authentication,
    ],
    [httpError(404, apiBody(404, 'notFound', 'Not found: Dataset p:missing')), ErrorClasses.missingObject],
    [httpError(403, apiBody(403, 'quotaExceeded', 'Quota exceeded: Your table exceeded quota for imports or query appends per table.')), ErrorClasses.overloaded],
    [httpError(403, apiBody(403, 'rateLimitExceeded', 'Exceeded rate limits: too many table update operations for this table.')), ErrorClasses.overloaded],
    [httpError(429, { error: { code: 429, message: 'Too many requests', errors: [] } }), ErrorClasses.overloaded],
    [httpError(500, apiBody(500, 'backendError', 'Backend error. Job aborted.')), ErrorClasses.unknownServerError],
    [httpError(503, apiBody(503, 'backendError', 'Visibility check was unavailable.')), ErrorClasses.unknownServerError],
    // A proxy's page: no JSON, no reason.
    [httpError(502, '<html>Bad Gateway</html>'), ErrorClasses.unknownServerError],
    [httpError(413, '<html>Request Entity Too Large</html>'), ErrorClasses.memoryLimit],
  ];
  for (const [error, cls] of cases) assert.equal(classifyBigQueryError(error).errorClass, cls, error.message);
});

test('the @google-cloud/bigquery ApiError shape (code, errors) reads the same', () => {
  const apiError = Object.assign(new Error('Not found: Table p:d.t'), { code: 404, errors: [{ reason: 'notFound', message: 'Not found: Table p:d.t' }] });
  assert.equal(classifyBigQueryError(apiError).errorClass, ErrorClasses.missingObject);
});

test('emulator HTTP errors (captured): a missing job, table or dataset; a failed upload content', () => {
  assert.equal(classifyBigQueryError(httpError(404, apiBody(404, 'notFound', 'job nope is not found'))).errorClass, ErrorClasses.missingObject);
  assert.equal(classifyBigQueryError(httpError(404, apiBody(404, 'notFound', 'table missing is not found'))).errorClass, ErrorClasses.missingObject);
  assert.equal(classifyBigQueryError(httpError(404, apiBody(404, 'notFound', 'dataset "nope" is not found'))).errorClass, ErrorClasses.missingObject);
  // A load into a table that is not there (createDisposition CREATE_NEVER): reason jobInternalError, in words.
  assert.equal(classifyBigQueryError(httpError(400, apiBody(400, 'jobInternalError', '`missing` is not found'))).errorClass, ErrorClasses.missingObject);
  // A value that does not fit its column ("abc" into INT64; the emulator quotes its internal encoding of it).
  const badRow = classifyBigQueryError(httpError(400, apiBody(400, 'jobInternalError', 'strconv.ParseInt: parsing "eyJoZWFkZXIiOiJzdHJpbmciLCJib2R5IjoiYWJjIn0=": invalid syntax')));
  assert.equal(badRow.errorClass, ErrorClasses.rowData);
  assert.equal(badRow.retryable, false);
  // The emulator's load into a table that tables.patch changed but its storage did not.
  assert.equal(
    classifyBigQueryError(httpError(400, apiBody(400, 'jobInternalError', 'failed to analyze: Column patched is not present in table p1_d1_t1 [at 1:49]'))).errorClass,
    ErrorClasses.unknownServerError,
  );
  // Anything else the emulator's job reports: bisected (the policy of unknown_server_error).
  assert.equal(classifyBigQueryError(httpError(400, apiBody(400, 'jobInternalError', 'unexpected state'))).errorClass, ErrorClasses.unknownServerError);
});

test('a repeated job id: 409 duplicate (BigQuery), 500 "already created" (the emulator); nothing else', () => {
  assert.equal(isDuplicateJob(httpError(409, apiBody(409, 'duplicate', 'Already Exists: Job p:US.inserter_1'))), true);
  assert.equal(isDuplicateJob(httpError(500, apiBody(500, 'internalError', 'failed to add job: job inserter_1 is already created'))), true);
  assert.equal(isDuplicateJob(httpError(500, apiBody(500, 'internalError', 'failed to start transaction'))), false);
  assert.equal(isDuplicateJob(httpError(404, apiBody(404, 'notFound', 'job inserter_1 is not found'))), false);
  assert.equal(isDuplicateJob(new Error('fetch failed')), false);
});

test("a failed load job: the row BigQuery names by byte position in errors[] becomes the insert's 1-based row", () => {
  const body = [Buffer.from('{"n":1}\n{"n":2}\n'), Buffer.from('{"n":"x"}\n{"n":4}\n')];
  const job = {
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
          message: 'Error while reading data, error message: JSON parsing error in row starting at position 16: Could not convert value \'string_value: "x"\' to integer. Field: n; Value: x',
        },
      ],
    },
  };
  const failure = classifyJobFailure(job, body, 'inserter_abc');
  assert.equal(failure.errorClass, ErrorClasses.rowData);
  assert.equal(failure.row, 3);
  assert.match(failure.message, /^job inserter_abc: invalid: Error while reading data.*\(Error while reading data, error message: JSON parsing error in row starting at position 16/);
  // A refusal that is not about a row (a setting, a location): bisected, never isolated row by row.
  assert.equal(
    classifyJobFailure({ status: { state: 'DONE', errorResult: { reason: 'invalid', message: 'Invalid value for location: xx is not a valid value' } } }, body).errorClass,
    ErrorClasses.unknownServerError,
  );
  // A job error that is not about a row: the schema the job was given does not match, a backend error.
  assert.equal(
    classifyJobFailure({ status: { state: 'DONE', errorResult: { reason: 'invalid', message: 'Provided Schema does not match Table p:d.t. Field n has changed mode' } } }, body).errorClass,
    ErrorClasses.unknownServerError,
  );
  assert.equal(classifyJobFailure({ status: { state: 'DONE', errorResult: { reason: 'backendError', message: 'Backend error. Job aborted.' } } }, body).errorClass, ErrorClasses.unknownServerError);
  assert.equal(classifyJobFailure({ status: { state: 'DONE', errorResult: { reason: 'notFound', message: 'Not found: Table p:d.t' } } }, body).errorClass, ErrorClasses.missingObject);
  assert.equal(classifyJobFailure({ status: { state: 'DONE', errorResult: { reason: 'quotaExceeded', message: 'Quota exceeded' } } }, body).errorClass, ErrorClasses.overloaded);
});

test('rowAt counts lines across chunks; a position past the body names no row', () => {
  const body = [Buffer.from('a\nbb\n'), Buffer.from('ccc\n')];
  assert.equal(rowAt(body, 0), 1);
  assert.equal(rowAt(body, 2), 2);
  assert.equal(rowAt(body, 5), 3);
  assert.equal(rowAt(body, 9), undefined);
  assert.equal(rowAt(body, -1), undefined);
});

test('network failures as fetch reports them (the code on the cause chain), timeouts, and aborts not ours', () => {
  const refused = Object.assign(new Error('fetch failed'), {
    cause: Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }) }),
  });
  assert.equal(classifyBigQueryError(refused).errorClass, ErrorClasses.transientNetwork);
  const reset = Object.assign(new Error('fetch failed'), { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) });
  assert.equal(classifyBigQueryError(reset).errorClass, ErrorClasses.transientNetwork);
  assert.equal(classifyBigQueryError(Object.assign(new Error('The operation was aborted due to timeout'), { code: 'TimeoutError' })).errorClass, ErrorClasses.transientNetwork);
  assert.equal(classifyBigQueryError(Object.assign(new Error('This operation was aborted'), { name: 'AbortError' })).errorClass, ErrorClasses.transientNetwork);
  // gaxios's words for a request that got no answer (the token endpoint behind a proxy that drops it).
  const dropped = new Error('request to https://oauth2.googleapis.com/token failed, reason: Proxy connection ended before receiving CONNECT response');
  assert.equal(classifyBigQueryError(dropped).errorClass, ErrorClasses.transientNetwork);
});

test('credentials that cannot be loaded or are refused by the token endpoint: authentication', () => {
  assert.equal(
    classifyBigQueryError(new Error('Could not load the default credentials. Browse to https://cloud.google.com/docs/authentication/getting-started for more information.')).errorClass,
    ErrorClasses.authentication,
  );
  assert.equal(classifyBigQueryError(Object.assign(new Error("ENOENT: no such file or directory, open '/run/secrets/bq.json'"), { code: 'ENOENT' })).errorClass, ErrorClasses.authentication);
  const refused = classifyBigQueryError(httpError(400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' }));
  assert.equal(refused.errorClass, ErrorClasses.authentication);
  assert.match(refused.message, /invalid_grant/);
});

test('anything else is unknown, with its first line', () => {
  const failure = classifyBigQueryError(new Error('something odd\nsecond line'));
  assert.equal(failure.errorClass, ErrorClasses.unknown);
  assert.equal(failure.message, 'something odd');
});

test('after the upload or a jobs.get of the lookup or wait, only what is known keeps its class; the rest is unknown_insert_status', () => {
  const network = Object.assign(new Error('fetch failed'), { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) });
  const cases: Array<[string, unknown, 'upload' | 'jobs.get', string]> = [
    // The upload: a 4xx is BigQuery's "no job was created".
    ['upload 400 invalid', httpError(400, apiBody(400, 'invalid', 'Invalid value for location')), 'upload', ErrorClasses.unknownServerError],
    ['upload 403 accessDenied', httpError(403, apiBody(403, 'accessDenied', 'Access Denied')), 'upload', ErrorClasses.authentication],
    ['upload 404', httpError(404, apiBody(404, 'notFound', 'Not found: Table p:d.t')), 'upload', ErrorClasses.missingObject],
    ['upload 413', httpError(413, '<html>Request Entity Too Large</html>'), 'upload', ErrorClasses.memoryLimit],
    ['upload 429', httpError(429, apiBody(429, 'rateLimitExceeded', 'Too many requests')), 'upload', ErrorClasses.overloaded],
    ['upload 500', httpError(500, apiBody(500, 'backendError', 'Backend error')), 'upload', ErrorClasses.unknownInsertStatus],
    ['upload 503 with a reason of a class', httpError(503, apiBody(503, 'quotaExceeded', 'Quota exceeded')), 'upload', ErrorClasses.unknownInsertStatus],
    ["upload: a proxy's 504", httpError(504, '<html>504 Gateway Timeout</html>'), 'upload', ErrorClasses.unknownInsertStatus],
    ['upload: socket closed', network, 'upload', ErrorClasses.transientNetwork],
    ['upload: anything else', new Error('Unexpected Gaxios Error'), 'upload', ErrorClasses.unknownInsertStatus],
    ['upload: credentials that cannot be loaded', new Error('Could not load the default credentials.'), 'upload', ErrorClasses.authentication],
    // jobs.get: its refusal says nothing of the job, unless it is about the credentials or the rate.
    ['get 400', httpError(400, apiBody(400, 'invalid', 'Invalid job ID')), 'jobs.get', ErrorClasses.unknownInsertStatus],
    ['get 401', httpError(401, apiBody(401, 'authError', 'Invalid credentials')), 'jobs.get', ErrorClasses.authentication],
    ['get 403 rateLimitExceeded', httpError(403, apiBody(403, 'rateLimitExceeded', 'Exceeded rate limits')), 'jobs.get', ErrorClasses.overloaded],
    ['get 503', httpError(503, apiBody(503, 'backendError', 'Backend error')), 'jobs.get', ErrorClasses.unknownInsertStatus],
    ['get: socket closed', network, 'jobs.get', ErrorClasses.transientNetwork],
  ];
  for (const [name, error, call, cls] of cases) assert.equal(classifyMaybeLanded(error, call).errorClass, cls, name);
  // Ours pass as they are: a wait's timeout, a chain without end.
  const own = new WarehouseError(ErrorClasses.unknown, 'jobs.get finds a job for every id', undefined, undefined);
  assert.equal(classifyMaybeLanded(own, 'jobs.get'), own);
  assert.match(classifyMaybeLanded(httpError(500, apiBody(500, 'backendError', 'Backend error')), 'upload').message, /jobs\.insert.*backendError: Backend error.*same token/);
});

test("no bearer token, nor the sink's own token, in a message, a cause, errors[] or a log of it", () => {
  const token = 'ya29.a0-own-token';
  assert.equal(redact(`Authorization: Bearer ${token}, and again ${token}`, [token]), 'Authorization: Bearer [redacted], and again [redacted]');
  assert.equal(redact('header "authorization":"bearer abc.def"'), 'header "authorization":"Bearer [redacted]"');
  const echoed = httpError(400, apiBody(400, 'invalid', `Invalid header: Authorization: Bearer ${token}`), `Invalid header: Authorization: Bearer ${token}`);
  Object.assign(echoed, { config: { headers: { authorization: `Bearer ${token}` } }, cause: { message: `echo ${token}`, errors: [{ message: `echo ${token}` }] } });
  const failure = classifyBigQueryError(echoed, undefined, [token]);
  assert.ok(!inspect(failure, { depth: 20, showHidden: true }).includes(token), inspect(failure, { depth: 20 }));
  assert.ok(!JSON.stringify(failure).includes(token));
  // A message cut at 1000 characters keeps no part of a token that straddles the cut.
  const long = classifyBigQueryError(new Error(`${'x'.repeat(990)} ${token}`), undefined, [token]);
  assert.ok(!long.message.includes(token.slice(0, 8)), long.message);
  // An error that is not an HTTP client's (fetch's own, quoting a header value) is slimmed too.
  const thrown = new TypeError(`Headers.append: "Bearer ${token}\n" is an invalid header value.`);
  const kept = slim(thrown, [token]);
  assert.ok(kept instanceof Error && kept.name === 'TypeError' && !inspect(kept).includes(token), inspect(kept));
  // The job's own messages are server text too.
  const job = { status: { state: 'DONE', errorResult: { reason: 'invalid', message: `echo Bearer ${token}` } } };
  assert.ok(!classifyJobFailure(job, undefined, 'j', [token]).message.includes(token));
});
