// Review 2026-12-07e: the BigQuery sink's findings and races against the real BigQuery API the
// project tests with (goccy/bigquery-emulator, patched, started by test/helpers/bigquery-emulator.ts),
// through an HTTP proxy of ours that can hold an upload (a fenced owner's, slow on the wire) or
// replace the emulator's answer to it (a 503 after the job was made: BigQuery's "it's unclear if the
// job succeeded"). Rows are counted in the emulator. Tests named 'finding N' failed while that
// finding stood (fixed since); they guard it now.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BigQuery } from '@google-cloud/bigquery';
import { OAuth2Client } from 'google-auth-library';
import { BigQuerySink } from '../../../src/sink/bigquery/sink.ts';
import { event, HeldDeadLetters, startWorld, TokenWarehouse, worldConfig } from '../../helpers/pipeline-world.ts';
import { REPO_ROOT, startBigQueryEmulator, type BigQueryEmulator } from '../../helpers/bigquery-emulator.ts';
import { apiError, batch, destination, latch, until } from './bq-fake.ts';

const PROJECT = 'review-07e';
const DATASET = 'ds';
let emulator: BigQueryEmulator;
let proxy: UploadProxy;
let client: BigQuery;
/** The emulator is built by `bash scripts/bigquery-emulator.sh install` (minutes); a unit run does not build it. */
const skip = existsSync(join(REPO_ROOT, '.cache', 'bigquery-emulator', 'bin', 'bigquery-emulator')) ? false : 'the BigQuery emulator is not built (bash scripts/bigquery-emulator.sh install)';
const DDL = 'CREATE TABLE IF NOT EXISTS {database}.{table} (team_id INT64, uuid STRING, pad STRING)';

interface UploadProxy {
  readonly url: string;
  uploads: number;
  /** Decides what the client gets for the n-th upload (0-based): the emulator's answer (undefined) or this. */
  replace: (nth: number) => { status: number; body: unknown } | undefined;
  /** The n-th upload waits for this before it is forwarded. */
  hold: (nth: number) => Promise<void> | undefined;
  close(): Promise<void>;
}

async function readAll(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function startUploadProxy(target: string): Promise<UploadProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const state: UploadProxy = {
    url: '',
    uploads: 0,
    replace: () => undefined,
    hold: () => undefined,
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readAll(req);
      const isUpload = req.method === 'POST' && (req.url ?? '').startsWith('/upload/');
      const nth = isUpload ? state.uploads++ : -1;
      if (isUpload) await state.hold(nth);
      const upstream = await new Promise<{ status: number; headers: Record<string, string>; body: Buffer }>((resolve, reject) => {
        const forwarded = request({ hostname, port, method: req.method, path: req.url, headers: { ...req.headers, host: `${hostname}:${port}` } }, (response) => {
          void readAll(response).then(
            (data) => resolve({ status: response.statusCode ?? 502, headers: { 'content-type': String(response.headers['content-type'] ?? 'application/json') }, body: data }),
            reject,
          );
        });
        forwarded.on('error', reject);
        forwarded.end(body);
      });
      const replaced = isUpload ? state.replace(nth) : undefined;
      if (replaced !== undefined) {
        res.writeHead(replaced.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(replaced.body));
        return;
      }
      res.writeHead(upstream.status, upstream.headers);
      res.end(upstream.body);
    })().catch(() => res.destroy());
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(state, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  });
}

async function uuids(table: string): Promise<string[]> {
  const [rows] = await client.query({ query: `SELECT uuid FROM \`${PROJECT}.${DATASET}.${table}\` ORDER BY uuid` });
  return (rows as Array<{ uuid: string }>).map((r) => r.uuid);
}

async function createTable(table: string): Promise<void> {
  const sink = new BigQuerySink(destination(emulator.url, { project: PROJECT }));
  try {
    await sink.createTable({ database: DATASET, table }, DDL);
  } finally {
    await sink.close();
  }
}

before(async () => {
  if (skip !== false) return;
  emulator = await startBigQueryEmulator({ project: PROJECT, dataset: DATASET });
  proxy = await startUploadProxy(emulator.url);
  const auth = new OAuth2Client();
  auth.setCredentials({ access_token: 'reader' });
  client = new BigQuery({ projectId: PROJECT, apiEndpoint: emulator.url, authClient: auth });
});
after(async () => {
  await proxy?.close();
  await emulator?.stop();
});

test('holds (emulator): a fenced owner\'s upload, held on the wire while the new owner loads the same token, is refused ("already created") and resolves with that job', { skip }, async () => {
  await createTable('fenced');
  proxy.uploads = 0;
  const held = latch();
  proxy.hold = (nth) => (nth === 0 ? held.promise : undefined);
  const fenced = new BigQuerySink(destination(proxy.url, { project: PROJECT }));
  const owner = new BigQuerySink(destination(proxy.url, { project: PROJECT }));
  try {
    const rows = ['a', 'b', 'c'];
    const stale = fenced.insert(batch('p0/0-2', rows, 'fenced'));
    await until(() => proxy.uploads === 1, "the fenced owner's upload at the proxy");
    await owner.insert(batch('p0/0-2', rows, 'fenced'));
    held.open();
    await stale;
    assert.deepEqual(await uuids('fenced'), rows);
  } finally {
    proxy.hold = () => undefined;
    await fenced.close();
    await owner.close();
  }
});

test('finding 3 (emulator, end to end): the first upload loads, its answer is replaced by 503 backendError: the core bisects and the rows land twice', { skip }, async () => {
  await createTable('events');
  proxy.uploads = 0;
  proxy.replace = (nth) => (nth === 0 ? { status: 503, body: apiError(503, 'backendError', 'Error encountered during execution. Retrying may solve the problem.') } : undefined);
  const fast = { baseMs: 5, capMs: 20, maxAttempts: 4, pauseMs: 20 };
  const config = worldConfig({
    destinations: [{ id: 'd1', kind: 'bigquery', url: proxy.url, database: DATASET, password: 'ya29.SECRET', requestTimeoutMs: 10_000, bigquery: { project: PROJECT } }],
    teams: { map: { 8: 'd1' } },
    errorPolicy: { defaults: { unknown_server_error: fast, unknown: fast, transient_network: fast, unknown_insert_status: fast } },
  });
  const { pipeline, source } = startWorld({ config, warehouse: new TokenWarehouse(), sinkFactory: (d) => new BigQuerySink(d), deadLetters: new HeldDeadLetters() });
  try {
    await source.append(Array.from({ length: 6 }, (_, i) => event(i, 8)));
    await until(() => source.committed === 6n, `commits past every record (committed ${source.committed})`, 20_000);
  } finally {
    proxy.replace = () => undefined;
    await pipeline.destroy();
  }
  const landed = await uuids('events');
  assert.deepEqual(landed, ['u0', 'u1', 'u2', 'u3', 'u4', 'u5'], `${landed.length} rows landed for 6 records (${proxy.uploads} uploads)`);
});
