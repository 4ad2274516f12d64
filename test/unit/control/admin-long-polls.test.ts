// Long polls on the admin listener (GET /v1/pauses/{key}?waitMs) are open to read, so without the
// bearer token they are bounded: a wait is cut to openPolls.maxWaitMs and at most
// openPolls.maxConcurrent wait at once (429 beyond); with the token, waitMs is honoured.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { Secret } from '../../../src/config/secret.ts';
import { buildAdminApp } from '../../../src/control/admin-server.ts';
import { PauseRegistry, type PipelineControl } from '../../../src/control/pause-registry.ts';
import { Readiness } from '../../../src/control/readiness.ts';
import type { Pause, PauseScope } from '../../../src/control/scope.ts';
import type { PipelineStatus } from '../../../src/pipeline/status.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { MemoryLogStore } from './memory-control-log.ts';

const TOKEN = 'a-long-enough-admin-token';
const status: PipelineStatus = { partitions: [], pauses: [], parkedDestinations: [], bufferedBytesByDestination: {} };

/** An insert on every scope stays in flight: a pause never goes quiet, every poll waits its full time. */
class BusyPipeline implements PipelineControl {
  setPauses(_pauses: readonly Pause[]): void {}
  inflight(_scope: PauseScope): number {
    return 1;
  }
  status(): PipelineStatus {
    return status;
  }
}

test('unauthenticated long polls are cut to maxWaitMs and bounded in number; with the token they are not', async (t) => {
  const logger = createLogger('silent');
  const pipeline = new BusyPipeline();
  const registry = new PauseRegistry({ log: new MemoryLogStore().handle(), pipeline, replicaId: 'r1', logger, heartbeatMs: 50, replicaTimeoutMs: 1_000 });
  await registry.start(AbortSignal.timeout(5_000));
  const app = await buildAdminApp({
    registry,
    pipeline,
    readiness: new Readiness({ lifecycle: () => 'running', controlCaughtUp: () => true, controlSilenceMs: () => 0, status: () => status, stuckAfterMs: 60_000 }),
    metrics: new Registry(),
    token: new Secret(TOKEN),
    logger,
    version: 'test',
    openPolls: { maxWaitMs: 150, maxConcurrent: 2 },
  });
  t.after(async () => {
    await app.close();
    await registry.destroy();
  });
  await registry.pause({ kind: 'table', table: 'events' }, 'busy', 'test', { wait: false });
  const poll = (headers: Record<string, string> = {}, waitMs = 60_000) => app.inject({ method: 'GET', url: `/v1/pauses/table:events?waitMs=${waitMs}`, headers });

  const started = Date.now();
  const cut = await poll();
  assert.equal(cut.statusCode, 200);
  assert.equal(cut.json<{ state: string }>().state, 'timeout');
  assert.ok(Date.now() - started < 2_000, `an open poll asking 60 s waited ${Date.now() - started} ms`);

  const waiting = [poll(), poll()];
  await new Promise((resolve) => setTimeout(resolve, 30));
  const refused = await poll();
  assert.equal(refused.statusCode, 429);
  assert.equal(refused.headers['retry-after'], '1');
  assert.equal(refused.json<{ error: string }>().error, 'INSERTER_ADMIN_TOO_MANY_WAITS');
  const authStarted = Date.now();
  const withToken = await poll({ authorization: `Bearer ${TOKEN}` }, 400);
  assert.equal(withToken.statusCode, 200, 'the token is not held up by open polls');
  assert.ok(Date.now() - authStarted >= 350, 'with the token, waitMs is honoured beyond the open bound');
  for (const res of await Promise.all(waiting)) assert.equal(res.statusCode, 200);
  assert.equal((await poll({}, 10)).statusCode, 200, 'slots are given back');
  assert.equal((await poll({ authorization: 'Bearer wrong-token-wrong-token' })).json<{ state: string }>().state, 'timeout', 'a wrong token counts as none');
});
