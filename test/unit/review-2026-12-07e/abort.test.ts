// Review 2026-12-07e: every wait of the BigQuery sink honours its AbortSignal and close() — the
// upload, the chain lookup, the wait for DONE — and a timeout is an ambiguous class. Also what the
// key-file path (a service account's JWT) does that the access-token path does not: it fetches an
// OAuth token first, from Google's token endpoint, through google-auth-library, which is given no
// signal and no timeout. Tests named 'finding N' failed while that finding stood (fixed since);
// they guard it now.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { AbortedError } from '../../../src/errors/inserter-error.ts';
import { AMBIGUOUS } from '../../../src/pipeline/attempt.ts';
import { BigQuerySink } from '../../../src/sink/bigquery/sink.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import { batch, destination, startBigQueryFake, until, type BigQueryFake } from './bq-fake.ts';
import { tempDir } from '../../helpers/temp-dir.ts';

let fake: BigQueryFake;
let dir: string;
const sinks: BigQuerySink[] = [];

function sink(options: Parameters<typeof destination>[1] = {}): BigQuerySink {
  const made = new BigQuerySink(destination(fake.url, options));
  sinks.push(made);
  return made;
}

before(async () => {
  fake = await startBigQueryFake('proj');
  fake.tables.set('ds.t', [{ name: 'uuid', type: 'STRING' }]);
  dir = await tempDir('review-07e-');
});
after(async () => {
  for (const s of sinks) await s.close();
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => fake.reset());

/** How the promise settles, and after how many ms; 'pending' when not within `limitMs`. */
async function settle(promise: Promise<unknown>, limitMs: number): Promise<{ outcome: unknown; ms: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    promise.then(
      (value) => ({ resolved: value }),
      (error: unknown) => error,
    ),
    new Promise((resolve) => (timer = setTimeout(() => resolve('pending'), limitMs))),
  ]);
  clearTimeout(timer);
  return { outcome, ms: Date.now() - started };
}

test('holds: an abort while the upload is being answered (the server never answers) ends the insert at once', async () => {
  fake.fault = (call) => (call.kind === 'upload' ? 'hang' : undefined);
  const controller = new AbortController();
  const pending = sink().insert(batch('abort-upload', ['a']), controller.signal);
  await until(() => fake.uploads().length === 1, 'the upload');
  controller.abort();
  const { outcome, ms } = await settle(pending, 3_000);
  assert.ok(outcome instanceof AbortedError, `an AbortedError, got ${String(outcome)}`);
  assert.ok(ms < 1_000, `${ms} ms`);
});

test('holds: an abort while the chain lookup hangs ends the insert at once; so does close() on a wait for DONE, and a closed sink refuses', async () => {
  fake.fault = (call) => (call.kind === 'getJob' ? 'hang' : undefined);
  const controller = new AbortController();
  const s = sink();
  const pending = s.insert(batch('abort-lookup', ['a']), controller.signal);
  await until(() => fake.calls.some((c) => c.kind === 'getJob'), 'the lookup');
  controller.abort();
  const aborted = await settle(pending, 3_000);
  assert.ok(aborted.outcome instanceof AbortedError, String(aborted.outcome));
  assert.ok(aborted.ms < 1_000, `${aborted.ms} ms`);

  fake.fault = () => undefined;
  fake.fate = () => ({ afterMs: undefined }); // runs until the test ends
  const waiting = s.insert(batch('close-wait', ['a']));
  await until(() => fake.calls.filter((c) => c.kind === 'getJob').length >= 3, 'polls of the running job');
  await s.close();
  const closed = await settle(waiting, 3_000);
  assert.ok(closed.outcome instanceof AbortedError, String(closed.outcome));
  assert.ok(closed.ms < 1_000, `${closed.ms} ms`);
  await assert.rejects(s.insert(batch('after-close', ['a'])), AbortedError);
  await assert.rejects(s.describe({ database: 'ds', table: 't' }), AbortedError);
});

test('holds: requestTimeoutMs on a hanging upload is transient_network (ambiguous: the retry looks the job up first)', async () => {
  fake.fault = (call) => (call.kind === 'upload' ? 'hang' : undefined);
  const { outcome, ms } = await settle(sink({ requestTimeoutMs: 300 }).insert(batch('timeout-upload', ['a'])), 3_000);
  assert.ok(outcome instanceof WarehouseError, String(outcome));
  assert.equal(outcome.errorClass, ErrorClasses.transientNetwork);
  assert.ok(AMBIGUOUS.has(outcome.errorClass));
  assert.ok(ms < 1_500, `${ms} ms`);
});

async function keyFile(): Promise<string> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const file = join(dir, 'key.json');
  await writeFile(file, JSON.stringify({ type: 'service_account', project_id: 'proj', client_email: 'loader@proj.iam.gserviceaccount.com', private_key_id: 'k1', private_key: privateKey }));
  return file;
}

/**
 * A proxy for the token endpoint (CONNECT oauth2.googleapis.com:443), set as HTTPS_PROXY while `body`
 * runs (the API at 127.0.0.1 is not proxied): `silent` accepts and never answers (a blackholed
 * endpoint), `refusing` drops every connection. Nothing leaves this machine.
 */
async function withTokenProxy(mode: 'silent' | 'refusing', body: (proxy: { connections: () => number; close: () => Promise<void> }) => Promise<void>): Promise<void> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server: Server = createServer((socket) => {
    count++;
    if (mode === 'refusing') return void socket.destroy();
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = async (): Promise<void> => {
    mode = 'refusing';
    for (const socket of sockets) socket.destroy();
  };
  const saved = { https: process.env.HTTPS_PROXY, no: process.env.NO_PROXY };
  process.env.HTTPS_PROXY = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.NO_PROXY = '127.0.0.1';
  try {
    await body({ connections: () => count, close });
  } finally {
    await close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (saved.https === undefined) delete process.env.HTTPS_PROXY;
    else process.env.HTTPS_PROXY = saved.https;
    if (saved.no === undefined) delete process.env.NO_PROXY;
    else process.env.NO_PROXY = saved.no;
  }
}

test('finding 4: with a key file, a token endpoint that does not answer holds the insert past its abort and past close() (and past requestTimeoutMs)', async () => {
  await withTokenProxy('silent', async (proxy) => {
    const s = sink({ credentialsFile: await keyFile(), requestTimeoutMs: 500 });
    const controller = new AbortController();
    const pending = s.insert(batch('jwt', ['a']), controller.signal);
    pending.catch(() => undefined);
    try {
      await until(() => proxy.connections() > 0, 'the token request to reach the proxy');
      controller.abort();
      await s.close();
      const { outcome, ms } = await settle(pending, 2_000);
      assert.ok(outcome instanceof AbortedError, `aborted and closed, the insert is still ${String(outcome)} after ${ms} ms; the API saw ${fake.calls.length} calls`);
    } finally {
      // The token request fails now; google-auth-library retries it a few times, then gives up.
      await proxy.close();
      await settle(pending, 10_000);
    }
  });
});

test("minor finding 8: two first uses of a key-file sink at once, the first one's signal already aborted: the second fails as transient_network", async () => {
  await withTokenProxy('refusing', async () => {
    const s = sink({ credentialsFile: await keyFile() });
    const aborted = AbortSignal.abort();
    const first = s.describe({ database: 'ds', table: 't' }, aborted);
    const second = s.describe({ database: 'ds', table: 't' });
    await assert.rejects(first, AbortedError);
    const outcome = await second.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    // The second caller was not aborted: its call should go on (here the token fetch would then fail, as
    // the token endpoint refuses here), not fail with the first caller's abort.
    assert.ok(
      !(outcome instanceof WarehouseError && /abort/i.test(outcome.message)),
      `the second caller failed with ${outcome instanceof WarehouseError ? `${outcome.errorClass}: ${outcome.message}` : String(outcome)}`,
    );
  });
});
