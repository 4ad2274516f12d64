// Cluster-wide pause under load, end to end: real broker, real ClickHouse engine (chlocal), inserter as
// child processes, the pause set with `inserter ctl` through the admin API.
//
// Inserts into the paused table are slow (its destination is behind a proxy that holds every request
// byte for 1.5 s), so inserts are on the wire when the pause is set: the confirmation comes only once
// they finished — after it, the table's count() does not move while the other table keeps growing.
// (With a confirmation that ignored inserts in flight, the count moves after it: this test fails.) A second replica that joins
// during the pause (a rebalance) holds it too. Resume lands everything exactly once
// (count() = uniqExact(uuid) = produced). Unauthenticated and wrongly authenticated calls are refused.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { produce } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { REPO_ROOT, startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';
import { tempDirSync } from '../helpers/temp-dir.ts';

const TOKEN = 'e2e-admin-token-0123456789';
let bootstrap: string;
let ch: ClickHouseInstance;
const slowTopic = uniqueTopic('pause-slow');
const fastTopic = uniqueTopic('pause-fast');
const group = `${slowTopic}-group`;
const running: InserterProcess[] = [];
let tokenFile: string;
let slowProxy: { url: string; stop: () => void };

/** Forwards to `target`, holding every byte from the client for `delayMs`: a slow link. */
async function startDelayProxy(target: string, delayMs: number): Promise<{ url: string; stop: () => void }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: hostname, port: Number(port) });
    sockets.add(client).add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('data', (chunk) => setTimeout(() => upstream.writable && upstream.write(chunk), delayMs));
    upstream.on('data', (chunk) => client.writable && client.write(chunk));
    for (const s of [client, upstream]) s.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    stop: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

before(async () => {
  bootstrap = await sharedKafka();
  ch = await startClickHouse({ users: [{ name: 'default', password: '', settings: { optimize_on_insert: '0' } }] });
  await ch.query('CREATE DATABASE db');
  for (const t of ['slow', 'fast']) {
    await ch.query(`CREATE TABLE db.${t} (uuid String, team_id UInt64, n UInt64) ENGINE = MergeTree ORDER BY uuid SETTINGS non_replicated_deduplication_window = 10000`);
    await ch.query(`SYSTEM STOP MERGES db.${t}`);
  }
  slowProxy = await startDelayProxy(ch.url, 1_500);
  await createTopic(bootstrap, slowTopic, 2);
  await createTopic(bootstrap, fastTopic, 2);
});

after(async () => {
  for (const p of running) await p.kill();
  slowProxy?.stop();
  await ch?.stop();
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function replica(): Promise<{ process: InserterProcess; admin: string }> {
  const port = await freePort();
  const config = {
    kafka: { brokers: [bootstrap], groupId: group, fetchMaxWaitMs: 100, sessionTimeoutMs: 6_000 },
    destinations: [
      { id: 'a', url: ch.url, database: 'db' },
      { id: 'slow-link', url: slowProxy.url, database: 'db' },
    ],
    routes: [
      { name: 'slow', topic: slowTopic, table: 'slow', destination: 'slow-link', createTable: { enabled: false } },
      { name: 'fast', topic: fastTopic, table: 'fast', destination: 'a', createTable: { enabled: false } },
    ],
    batch: { maxRows: 500, maxAgeMs: 200 },
    commitIntervalMs: 500,
    admin: { listen: `127.0.0.1:${port}`, token: TOKEN },
    telemetry: { logLevel: 'info' },
  };
  const process = await startInserter(config);
  running.push(process);
  const admin = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${admin}/healthz`)).ok, 'admin API up', 60_000, 200);
  return { process, admin };
}

const count = async (table: string): Promise<number> => Number((await ch.query(`SELECT count() FROM db.${table}`)).trim());

function ctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(join(REPO_ROOT, 'bin', 'inserter'), ['ctl', ...args], { timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

interface Outcome {
  state: string;
  replicas: Array<{ replicaId: string; applied: boolean; inflight: number | null }>;
  waitingFor: Array<{ replicaId: string; applied: boolean; inflight: number | null }>;
}

test('pause during load: confirmed after inserts in flight finish, holds through a joining replica, resume lands everything exactly once', async () => {
  tokenFile = join(tempDirSync('inserter-pause-'), 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`);
  const produced = { slow: 0, fast: 0 };
  let producing = true;
  const producer = (async () => {
    for (let round = 0; producing; round++) {
      for (const [topic, key] of [
        [slowTopic, 'slow'],
        [fastTopic, 'fast'],
      ] as const) {
        const batch = Array.from({ length: key === 'slow' ? 60 : 150 }, (_, i) => ({ value: Buffer.from(JSON.stringify({ uuid: randomUUID(), team_id: 1, n: round * 1000 + i })) }));
        produced[key] += await produce(bootstrap, topic, batch);
      }
      await sleep(200);
    }
  })();
  try {
    const a = await replica();
    await waitFor(async () => (await count('slow')) > 0 && (await count('fast')) > 0, 'both tables receive rows', 60_000);

    // Refused without a token, and with a wrong one: nothing is paused.
    const body = JSON.stringify({ scope: 'table:slow', reason: 'e2e', by: 'test', wait: false });
    const json = { 'content-type': 'application/json' };
    assert.equal((await fetch(`${a.admin}/v1/pauses`, { method: 'POST', headers: json, body })).status, 401);
    assert.equal((await fetch(`${a.admin}/v1/pauses`, { method: 'POST', headers: { ...json, authorization: 'Bearer wrong-token-wrong-token' }, body })).status, 403);
    assert.equal((await fetch(`${a.admin}/v1/pauses/table:slow`, { method: 'DELETE', headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, 403);
    assert.equal(((await (await fetch(`${a.admin}/v1/pauses`)).json()) as { pauses: unknown[] }).pauses.length, 0);

    // Pause and wait for quiet: inserts into db.slow are on the wire at this moment.
    const started = Date.now();
    const confirming = fetch(`${a.admin}/v1/pauses`, { method: 'POST', headers: { ...json, authorization: `Bearer ${TOKEN}` }, body: body.replace('"wait":false', '"wait":true') });
    // The first heartbeat after applying it reports the inserts still on the wire.
    let early: Outcome | undefined;
    await waitFor(
      async () => {
        const res = await fetch(`${a.admin}/v1/pauses/table:slow`);
        early = res.ok ? ((await res.json()) as Outcome) : undefined;
        return early !== undefined && early.replicas.length > 0 && early.replicas.every((r) => r.applied);
      },
      'the pause applied',
      10_000,
      20,
    );
    assert.ok(
      early?.waitingFor.some((w) => (w.inflight ?? 0) > 0),
      `inserts in flight when paused: ${JSON.stringify(early)}`,
    );
    const confirmed = await confirming;
    assert.equal(confirmed.status, 200);
    assert.equal(((await confirmed.json()) as Outcome).state, 'quiet');
    const waited = Date.now() - started;
    const slowAtPause = await count('slow');

    // `inserter ctl pause` on the same scope: harmless, already quiet.
    const again = await ctl(['pause', '--admin', a.admin, '--token-file', tokenFile, '--scope', 'table:slow', '--reason', 'e2e', '--by', 'test', '--timeout', '60000']);
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.match(again.stdout, /already paused .* quiet/);

    // Quiet means quiet: not one more row lands in db.slow, while db.fast keeps growing.
    const fastAtPause = await count('fast');
    await sleep(4_000);
    assert.equal(await count('slow'), slowAtPause, `no insert into the paused table after the confirmation (it took ${waited} ms)`);
    assert.ok((await count('fast')) > fastAtPause, 'the other table keeps growing');

    // Operators see it: lag per route, the paused destination state and gauges, readiness.
    await waitFor(
      async () => {
        const s = (await (await fetch(`${a.admin}/v1/status`)).json()) as { routes: Array<{ route: string; state: string; lag: number | null }> };
        return s.routes.some((r) => r.route === 'slow' && r.state === 'paused' && r.lag !== null) && s.routes.some((r) => r.route === 'fast' && r.state === 'running');
      },
      'status shows the paused route with its lag',
      30_000,
      500,
    );
    const metrics = await (await fetch(`${a.admin}/metrics`)).text();
    assert.match(metrics, /^inserter_destination_state\{destination="slow-link",state="paused"\} 1$/m);
    assert.match(metrics, /^inserter_consumer_lag\{topic="[^"]+",partition="\d+"\} \d+$/m);
    assert.match(metrics, /^inserter_pause_age_seconds\{kind="table"\} [\d.]+$/m);
    assert.equal((await fetch(`${a.admin}/readyz`)).status, 200, 'a paused replica is still ready');

    // A second replica joins (rebalance): it reads the pause before consuming, and the pause holds.
    const b = await replica();
    await waitFor(
      async () => {
        const s = (await (await fetch(`${b.admin}/v1/status`)).json()) as { partitions: unknown[]; replicas: Array<{ live: boolean }> };
        return s.partitions.length > 0 && s.replicas.filter((r) => r.live).length === 2;
      },
      'the second replica owns partitions',
      60_000,
    );
    const onB = (await (await fetch(`${b.admin}/v1/pauses/table:slow?waitMs=20000`)).json()) as Outcome;
    assert.equal(onB.state, 'quiet');
    assert.equal(onB.replicas.length, 2, 'both replicas confirm the pause');
    const fastAtJoin = await count('fast');
    await sleep(4_000);
    assert.equal(await count('slow'), slowAtPause, 'the pause held through the rebalance');
    assert.ok((await count('fast')) > fastAtJoin, 'the other table keeps growing on the new assignment');

    // Resume everywhere; after the load stops every row lands exactly once.
    producing = false;
    await producer;
    const resumed = await ctl(['resume', '--admin', b.admin, '--token-file', tokenFile, '--scope', 'table:slow']);
    assert.equal(resumed.code, 0, resumed.stderr);
    for (const table of ['slow', 'fast'] as const) {
      await waitFor(async () => (await count(table)) >= produced[table], `${produced[table]} rows in db.${table}`, 180_000, 500);
      await sleep(1_000);
      const [rows, distinct] = (await ch.query(`SELECT count(), uniqExact(uuid) FROM db.${table}`)).trim().split('\t').map(Number);
      assert.deepEqual([rows, distinct], [produced[table], produced[table]], `db.${table}: exactly once`);
    }
    for (const p of [a.process, b.process]) assert.equal(await p.stop(), 0, `graceful exit; log tail:\n${(await p.log()).slice(-3000)}`);
  } finally {
    producing = false;
    await producer.catch(() => undefined);
  }
});
