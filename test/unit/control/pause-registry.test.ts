// The pause registry's protocol over an in-memory control log: a pause is confirmed only once every
// live replica applied it with nothing in flight; dead replicas stop counting; restarts apply pauses
// before returning from start(); pausing twice is harmless; resume lifts everywhere.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PauseRegistry, type PipelineControl } from '../../../src/control/pause-registry.ts';
import type { Pause, PauseScope } from '../../../src/control/scope.ts';
import { scopeKey } from '../../../src/control/scope.ts';
import { heartbeatKey } from '../../../src/control/wire.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { MemoryLogStore } from './memory-control-log.ts';

class FakePipeline implements PipelineControl {
  pauses: readonly Pause[] = [];
  inflightByKey = new Map<string, number>();
  history: Array<readonly string[]> = [];
  setPauses(pauses: readonly Pause[]): void {
    this.pauses = pauses;
    this.history.push(pauses.map((p) => scopeKey(p.scope)));
  }
  inflight(scope: PauseScope): number {
    return this.inflightByKey.get(scopeKey(scope)) ?? 0;
  }
  status() {
    return { partitions: [], pauses: this.pauses.map((p) => p.id), parkedDestinations: [], bufferedBytesByDestination: {} };
  }
}

const logger = createLogger('silent');
const open: PauseRegistry[] = [];
after(async () => {
  for (const r of open) await r.destroy();
});

async function replica(store: MemoryLogStore, id: string, pipeline = new FakePipeline(), replicaExpireMs?: number): Promise<{ registry: PauseRegistry; pipeline: FakePipeline }> {
  const registry = new PauseRegistry({ log: store.handle(), pipeline, replicaId: id, logger, heartbeatMs: 50, replicaTimeoutMs: 400, ...(replicaExpireMs === undefined ? {} : { replicaExpireMs }) });
  open.push(registry);
  await registry.start(AbortSignal.timeout(5_000));
  return { registry, pipeline };
}

const events: PauseScope = { kind: 'table', table: 'events' };

test('a pause is confirmed only once every live replica applied it with nothing in flight', async () => {
  const store = new MemoryLogStore();
  const a = await replica(store, 'a');
  const b = await replica(store, 'b');
  b.pipeline.inflightByKey.set('table:events', 2);
  setTimeout(() => b.pipeline.inflightByKey.set('table:events', 0), 300);
  const started = Date.now();
  const outcome = await a.registry.pause(events, 'schema change', 'alice', { timeoutMs: 5_000 });
  assert.equal(outcome.state, 'quiet');
  assert.ok(Date.now() - started >= 280, 'waited for the insert in flight on b');
  assert.deepEqual(
    outcome.replicas.map((r) => [r.replicaId, r.applied, r.inflight]),
    [
      ['a', true, 0],
      ['b', true, 0],
    ],
  );
  assert.deepEqual(a.pipeline.history.at(-1), ['table:events']);
  assert.deepEqual(b.pipeline.history.at(-1), ['table:events']);
  assert.equal(outcome.pause.reason, 'schema change');
  assert.equal(outcome.pause.by, 'alice');
});

test('past the timeout the answer names the replicas with inserts in flight', async () => {
  const store = new MemoryLogStore();
  const a = await replica(store, 'a');
  const b = await replica(store, 'b');
  b.pipeline.inflightByKey.set('destination:x', 1);
  const outcome = await a.registry.pause({ kind: 'destination', destination: 'x' }, 'r', 'bob', { timeoutMs: 300 });
  assert.equal(outcome.state, 'timeout');
  assert.deepEqual(outcome.waitingFor, [{ replicaId: 'b', applied: true, inflight: 1 }]);
  b.pipeline.inflightByKey.set('destination:x', 0);
  const later = await a.registry.waitQuiet('destination:x', 3_000);
  assert.equal(later?.state, 'quiet');
});

test('a replica that stopped heartbeating (kill -9) is not waited for; a clean close says goodbye', async () => {
  const store = new MemoryLogStore();
  const a = await replica(store, 'a');
  const b = await replica(store, 'b');
  const c = await replica(store, 'c');
  await b.registry.destroy(); // no goodbye: ages out after replicaTimeoutMs
  await c.registry.close(); // goodbye: gone at once
  assert.deepEqual(
    a.registry
      .replicas()
      .filter((r) => r.live)
      .map((r) => r.replicaId),
    ['a', 'b'],
  );
  const outcome = await a.registry.pause({ kind: 'all' }, 'r', 'x', { timeoutMs: 3_000 });
  assert.equal(outcome.state, 'quiet');
  assert.deepEqual(
    outcome.replicas.map((r) => r.replicaId),
    ['a'],
  );
});

test('a restarting replica applies the pauses in force before start() resolves; pausing twice is harmless', async () => {
  const store = new MemoryLogStore();
  const a = await replica(store, 'a');
  const first = await a.registry.pause({ kind: 'team', team: 7 }, 'gdpr', 'carol', { timeoutMs: 2_000 });
  const again = await a.registry.pause({ kind: 'team', team: 7 }, 'other reason', 'dave', { timeoutMs: 2_000 });
  assert.equal(first.created, true);
  assert.equal(again.created, false);
  assert.equal(again.pause.id, first.pause.id);
  assert.equal(again.pause.reason, 'gdpr');
  const pipeline = new FakePipeline();
  const restarted = new PauseRegistry({ log: store.handle(), pipeline, replicaId: 'a2', logger, heartbeatMs: 50, replicaTimeoutMs: 400 });
  open.push(restarted);
  await restarted.start(AbortSignal.timeout(5_000));
  assert.deepEqual(pipeline.history[0], ['team:7'], 'applied before start() returned');
  assert.equal(pipeline.history.length, 1);
});

test('resume lifts the pause on every replica', async () => {
  const store = new MemoryLogStore();
  const a = await replica(store, 'a');
  const b = await replica(store, 'b');
  await a.registry.pause(events, 'r', 'x', { timeoutMs: 2_000 });
  const lifted = await b.registry.resume('table:events');
  assert.equal(lifted?.scope.kind, 'table');
  await sleep(50);
  assert.deepEqual(a.pipeline.history.at(-1), []);
  assert.deepEqual(b.pipeline.history.at(-1), []);
  assert.equal(await b.registry.resume('table:events'), undefined, 'resuming what is not paused says so');
  assert.deepEqual(a.registry.pauses(), []);
});

test('a replica silent past replicaExpireMs is forgotten and its heartbeat tombstoned; one that speaks again is back', async () => {
  const store = new MemoryLogStore();
  const ids = (r: PauseRegistry): string[] => r.replicas().map((v) => v.replicaId);
  const a = await replica(store, 'a', new FakePipeline(), 700);
  const b = await replica(store, 'b', new FakePipeline(), 700);
  await b.registry.destroy(); // kill -9: no goodbye
  await sleep(500);
  assert.deepEqual(ids(a.registry), ['a', 'b'], 'silent past replicaTimeoutMs: shown, not live');
  assert.equal(a.registry.replicas().find((r) => r.replicaId === 'b')?.live, false);
  await sleep(600);
  assert.deepEqual(ids(a.registry), ['a'], 'silent past replicaExpireMs: forgotten');
  assert.ok(
    store.records.some((r) => r.key === heartbeatKey('b') && r.value === undefined),
    'its heartbeat is tombstoned, so compaction removes it from the topic',
  );
  const c = await replica(store, 'c', new FakePipeline(), 700);
  assert.deepEqual(ids(c.registry), ['a', 'c'], 'a replica started later never sees it');
  const back = await replica(store, 'b', new FakePipeline(), 700);
  await sleep(100);
  assert.deepEqual(ids(a.registry), ['a', 'b', 'c'], 'one that speaks again is back');
  await back.registry.close();
});
