// How a BigQuery destination signs in (src/sink/bigquery/credentials.ts): a service-account key
// file becomes a JWT client with BigQuery's scope (and the password is not used), a file that is
// missing or is not such a key is an authentication failure of the call that needed it — never a
// throw of the constructor, never an error quoting the file — and without a file the password is
// the bearer token.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { test } from 'node:test';
import { JWT, OAuth2Client } from 'google-auth-library';
import type { DestinationConfig } from '../../../../src/config/load.ts';
import { Secret } from '../../../../src/config/secret.ts';
import { ErrorClasses } from '../../../../src/errors/classes.ts';
import { BigQuerySink } from '../../../../src/sink/bigquery/sink.ts';
import { BIGQUERY_SCOPE, bigQueryClient } from '../../../../src/sink/bigquery/credentials.ts';
import { WarehouseError } from '../../../../src/sink/errors.ts';
import { tempDir } from '../../../helpers/temp-dir.ts';

// Nothing listens there: a test that reached the API would fail as transient_network, not as asserted.
const URL = 'http://127.0.0.1:1';

function destination(credentialsFile: string | undefined, password = ''): DestinationConfig {
  return {
    id: 'bq',
    kind: 'bigquery',
    bigquery: { project: 'proj', ...(credentialsFile === undefined ? {} : { credentialsFile }) },
    url: URL,
    user: 'default',
    password: new Secret(password),
    database: 'ds',
    maxBufferedBytes: 1024,
    concurrency: 1,
    requestTimeoutMs: 2000,
    stalledAfterMs: 1000,
    compression: 'none',
  };
}

async function keyFile(content: string): Promise<string> {
  const file = join(await tempDir('inserter-bq-key-'), 'key.json');
  await writeFile(file, content, { mode: 0o600 });
  return file;
}

function authenticationFailure(secret?: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof WarehouseError, inspect(error));
    assert.equal(error.errorClass, ErrorClasses.authentication, error.message);
    if (secret !== undefined) assert.ok(!inspect(error, { depth: 10 }).includes(secret), 'the file content is not in the error');
    return true;
  };
}

test('a key file that is missing, not JSON, not a service-account key, or whose key cannot sign: authentication, at the call', async () => {
  const table = { database: 'ds', table: 't' };
  await assert.rejects(new BigQuerySink(destination('/nonexistent/inserter/key.json')).describe(table), authenticationFailure());
  const secret = 'SECRET-MATERIAL-5d1e';
  await assert.rejects(new BigQuerySink(destination(await keyFile(`{ "private_key": "${secret}" oops`))).describe(table), authenticationFailure(secret));
  const external = await keyFile(JSON.stringify({ type: 'external_account', audience: secret, credential_source: { executable: { command: '/bin/true' } } }));
  await assert.rejects(new BigQuerySink(destination(external)).describe(table), authenticationFailure(secret));
  const unsigned = await keyFile(
    JSON.stringify({ type: 'service_account', client_email: 'loader@proj.iam.gserviceaccount.com', private_key: `-----BEGIN PRIVATE KEY-----\n${secret}\n-----END PRIVATE KEY-----\n` }),
  );
  await assert.rejects(new BigQuerySink(destination(unsigned)).insert({ table, body: [Buffer.from('{}\n')], format: 'JSONEachRow', rows: 1, bytes: 3, token: 't' }), authenticationFailure(secret));
});

test('a service-account key becomes a JWT client with the BigQuery scope; the password is then not used', async () => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const file = await keyFile(JSON.stringify({ type: 'service_account', project_id: 'proj', private_key_id: 'k1', client_email: 'loader@proj.iam.gserviceaccount.com', private_key: privateKey }));
  const d = destination(file, 'a-token-that-must-not-be-used');
  const bigquery = d.bigquery;
  assert.ok(bigquery !== undefined);
  const client = await bigQueryClient(
    { project: 'proj', url: d.url, location: undefined, credentialsFile: bigquery.credentialsFile, password: d.password, timeoutMs: 2000 },
    AbortSignal.timeout(5000),
  );
  const auth = await client.authClient.getClient();
  assert.ok(auth instanceof JWT);
  assert.equal(auth.email, 'loader@proj.iam.gserviceaccount.com');
  assert.deepEqual(auth.scopes, [BIGQUERY_SCOPE]);
  // The token endpoint is called with no signal by the library: each attempt is bounded instead.
  assert.equal(auth.transporter.defaults.timeout, 2000);
  assert.equal(client.apiEndpoint, URL);
});

test('without a key file, a non-empty password is the access token', async () => {
  const client = await bigQueryClient({ project: 'proj', url: `${URL}/`, location: 'EU', credentialsFile: undefined, password: new Secret('tok-1'), timeoutMs: 2000 }, AbortSignal.timeout(5000));
  const auth = await client.authClient.getClient();
  assert.ok(auth instanceof OAuth2Client);
  assert.equal(auth.credentials.access_token, 'tok-1');
  // The client's own normalisation of the URL (no trailing slash) is what requests are made to.
  assert.equal(client.apiEndpoint, URL);
  assert.equal(client.location, 'EU');
});

test('a password that is not a token (whitespace, a pasted key file): authentication, in words that do not quote it', async () => {
  const pasted = JSON.stringify({ type: 'service_account', private_key: '-----BEGIN PRIVATE KEY-----\nMIIE-SECRET\n-----END PRIVATE KEY-----\n' }, null, 2);
  for (const password of [pasted, 'tok en', 'tok\u00e9n']) {
    await assert.rejects(new BigQuerySink(destination(undefined, password)).describe({ database: 'ds', table: 't' }), (error: unknown) => {
      authenticationFailure(password)(error);
      assert.match((error as Error).message, /not an OAuth access token/);
      return true;
    });
  }
  assert.ok(!inspect(await new BigQuerySink(destination(undefined, pasted)).describe({ database: 'ds', table: 't' }).catch((e: unknown) => e), { depth: 10 }).includes('MIIE-SECRET'));
});

test('the constructor refuses a destination that is not kind bigquery', () => {
  assert.throws(() => new BigQuerySink({ ...destination(undefined), kind: 'clickhouse', bigquery: undefined }), /needs kind: bigquery/);
});
