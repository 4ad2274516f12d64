// The admin API in-process (Fastify inject) over a real pause registry on an in-memory control log:
// mutating calls need the bearer token (401 without, 403 wrong), bodies are validated, reads and
// probes are open, /metrics is the Prometheus text, and docs/api/admin.openapi.json is up to date.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Registry, Gauge } from 'prom-client';
import { adminOpenApiText, OPENAPI_FILE } from '../../../scripts/admin-openapi.ts';
import { Secret } from '../../../src/config/secret.ts';
import { buildAdminApp } from '../../../src/control/admin-server.ts';
import { BearerAuth } from '../../../src/control/admin-auth.ts';
import { PauseRegistry, type PipelineControl } from '../../../src/control/pause-registry.ts';
import { Readiness } from '../../../src/control/readiness.ts';
import type { Pause, PauseScope } from '../../../src/control/scope.ts';
import type { PipelineStatus } from '../../../src/pipeline/status.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { MemoryLogStore } from './memory-control-log.ts';

const TOKEN = 'a-long-enough-admin-token';
const logger = createLogger('silent');

const status: PipelineStatus = {
  partitions: [
    {
      topic: 'events',
      partition: 0,
      committed: '120',
      committable: '150',
      unresolved: 3,
      held: 0,
      replaying: 0,
      lanes: [
        { route: 'events->events', table: 'posthog.events', destination: 'a', state: 'running', lastInsertAt: 1_000, lastErrorClass: undefined, lastErrorAt: undefined, insertedRows: 100 },
        { route: 'events->events', table: 'posthog.events', destination: 'b', state: 'failing', lastInsertAt: 500, lastErrorClass: 'auth', lastErrorAt: 900, insertedRows: 7 },
      ],
    },
    {
      topic: 'events',
      partition: 1,
      committed: '80',
      committable: '80',
      unresolved: 0,
      held: 0,
      replaying: 0,
      lanes: [{ route: 'events->events', table: 'posthog.events', destination: 'a', state: 'backing_off', lastInsertAt: 2_000, lastErrorClass: 'overloaded', lastErrorAt: 1_500, insertedRows: 50 }],
    },
  ],
  pauses: [],
  parkedDestinations: [],
  bufferedBytesByDestination: { a: 10, b: 2048 },
};

class FakePipeline implements PipelineControl {
  pauses: readonly Pause[] = [];
  setPauses(pauses: readonly Pause[]): void {
    this.pauses = pauses;
  }
  inflight(_scope: PauseScope): number {
    return 0;
  }
  status(): PipelineStatus {
    return status;
  }
}

let app: FastifyInstance;
let registry: PauseRegistry;
let lifecycle: 'starting' | 'running' | 'stopping' = 'running';

before(async () => {
  const pipeline = new FakePipeline();
  registry = new PauseRegistry({ log: new MemoryLogStore().handle(), pipeline, replicaId: 'r1', logger, heartbeatMs: 50, replicaTimeoutMs: 1_000 });
  await registry.start(AbortSignal.timeout(5_000));
  const metrics = new Registry();
  new Gauge({ name: 'inserter_test_gauge', help: 'a test gauge', registers: [metrics] }).set(3);
  app = await buildAdminApp({
    registry,
    pipeline,
    readiness: new Readiness({ lifecycle: () => lifecycle, controlCaughtUp: () => true, controlSilenceMs: () => 0, status: () => status, stuckAfterMs: 60_000 }),
    metrics,
    lag: (topic, partition) => (partition === 0 ? 40 : 2),
    token: new Secret(TOKEN),
    logger,
    version: 'test',
  });
});
after(async () => {
  await app?.close();
  await registry?.destroy();
});

const body = { scope: { kind: 'table', table: 'events' }, reason: 'schema change', by: 'alice', timeoutMs: 2_000 };

test('mutating calls need the bearer token: 401 without, 403 with a wrong one', async () => {
  const none = await app.inject({ method: 'POST', url: '/v1/pauses', payload: body });
  assert.equal(none.statusCode, 401);
  assert.equal(none.headers['www-authenticate'], 'Bearer');
  const wrong = await app.inject({ method: 'POST', url: '/v1/pauses', payload: body, headers: { authorization: 'Bearer not-the-token-at-all' } });
  assert.equal(wrong.statusCode, 403);
  const basic = await app.inject({ method: 'DELETE', url: '/v1/pauses/table:events', headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` } });
  assert.equal(basic.statusCode, 401);
  assert.deepEqual(registry.pauses(), [], 'nothing was paused');
});

test('pause, read, poll and resume with the token', async () => {
  const auth = { authorization: `Bearer ${TOKEN}` };
  const paused = await app.inject({ method: 'POST', url: '/v1/pauses', payload: body, headers: auth });
  assert.equal(paused.statusCode, 200, paused.body);
  const outcome = paused.json<{ state: string; created: boolean; pause: { key: string; reason: string; by: string }; replicas: Array<{ replicaId: string; inflight: number }> }>();
  assert.equal(outcome.state, 'quiet');
  assert.equal(outcome.created, true);
  assert.deepEqual([outcome.pause.key, outcome.pause.reason, outcome.pause.by], ['table:events', 'schema change', 'alice']);
  assert.deepEqual(outcome.replicas, [{ replicaId: 'r1', applied: true, inflight: 0 }]);

  const again = await app.inject({ method: 'POST', url: '/v1/pauses', payload: { ...body, scope: 'table:events', wait: false }, headers: auth });
  assert.equal(again.json<{ created: boolean }>().created, false, 'pausing twice is harmless');

  const list = await app.inject({ method: 'GET', url: '/v1/pauses' });
  assert.equal(list.json<{ pauses: unknown[] }>().pauses.length, 1);
  const poll = await app.inject({ method: 'GET', url: '/v1/pauses/table:events?waitMs=100' });
  assert.equal(poll.json<{ state: string }>().state, 'quiet');

  const resumed = await app.inject({ method: 'DELETE', url: '/v1/pauses/table:events', headers: auth });
  assert.equal(resumed.statusCode, 200);
  assert.equal((await app.inject({ method: 'DELETE', url: '/v1/pauses/table:events', headers: auth })).statusCode, 404);
  assert.equal((await app.inject({ method: 'GET', url: '/v1/pauses/table:events' })).statusCode, 404);
});

test('bodies are validated', async () => {
  const auth = { authorization: `Bearer ${TOKEN}` };
  for (const payload of [
    { ...body, scope: { kind: 'table' } },
    { ...body, scope: 'planet:earth' },
    { ...body, reason: '' },
    { ...body, extra: 1 },
    { ...body, scope: { kind: 'team', team: 'x' } },
  ]) {
    const res = await app.inject({ method: 'POST', url: '/v1/pauses', payload, headers: auth });
    assert.equal(res.statusCode, 400, JSON.stringify(payload));
  }
  assert.deepEqual(registry.pauses(), []);
});

test('status folds lanes per route and destination with lag; probes and metrics are open', async () => {
  const res = await app.inject({ method: 'GET', url: '/v1/status' });
  assert.equal(res.statusCode, 200);
  const s = res.json<{ routes: Array<{ destination: string; state: string; lag: number; lastErrorClass: string | null; insertedRows: number; partitions: number }> }>();
  assert.deepEqual(
    s.routes.map((r) => [r.destination, r.state, r.partitions, r.lag, r.lastErrorClass, r.insertedRows]),
    [
      ['a', 'backing_off', 2, 42, 'overloaded', 150],
      ['b', 'failing', 1, 40, 'auth', 7],
    ],
  );
  assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
  lifecycle = 'stopping';
  const unready = await app.inject({ method: 'GET', url: '/readyz' });
  assert.equal(unready.statusCode, 503);
  assert.deepEqual(unready.json<{ reasons: string[] }>().reasons, ['pipeline is stopping']);
  lifecycle = 'running';
  const metrics = await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(metrics.statusCode, 200);
  assert.match(String(metrics.headers['content-type']), /^text\/plain/);
  assert.match(metrics.body, /^inserter_test_gauge 3$/m);
});

test('bearer check: constant-time comparison of digests, any length', () => {
  const auth = new BearerAuth(new Secret(TOKEN));
  assert.equal(auth.check(`Bearer ${TOKEN}`), 'ok');
  assert.equal(auth.check(`bearer ${TOKEN}`), 'ok');
  assert.equal(auth.check(`Bearer ${TOKEN}x`), 'wrong');
  assert.equal(auth.check('Bearer x'), 'wrong');
  assert.equal(auth.check('Bearer'), 'missing');
  assert.equal(auth.check(undefined), 'missing');
});

test('docs/api/admin.openapi.json is generated from the route schemas (run: node scripts/admin-openapi.ts)', async () => {
  assert.equal(readFileSync(OPENAPI_FILE, 'utf8'), await adminOpenApiText());
});
