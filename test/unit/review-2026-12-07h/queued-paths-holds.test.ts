// Probes (pass on the reworked change): batches queued behind an insert that hangs hold their rows
// and their expected bodies (MemoryBudget.pending); whatever ends them — a destination pause, a team
// pause, a revocation (each once the insert on the wire answered: none is cut), a graceful close past its deadline, destroy() — both leave the budget once,
// nothing goes negative, and (for pauses) once the pause lifts every row lands once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PauseScope } from '../../../src/control/scope.ts';
import { expectExactlyOnce } from '../../helpers/exactly-once.ts';
import { TokenWarehouse, until, worldConfig } from '../../helpers/pipeline-world.ts';
import { Control, errorPolicy, rows, run, type Run } from './world.ts';

function hungWorld(): { world: Run; control: Control; warehouse: TokenWarehouse; pending: () => number } {
  const config = worldConfig({ teams: { map: { 1: 'd1' } }, batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 60_000 }, errorPolicy });
  const warehouse = new TokenWarehouse();
  const control = new Control();
  control.hanging.add('d1');
  const world = run(config, control.sinks(warehouse));
  return { world, control, warehouse, pending: () => world.pipeline.status().pendingBodyBytes ?? 0 };
}

async function threeBatches(h: ReturnType<typeof hungWorld>): Promise<void> {
  await h.world.source.append(rows(0, 30, 1));
  await until(() => h.control.heldCount === 1, 'the first insert hangs');
  await until(() => h.pending() > 0, 'two batches queued, their bodies expected');
}

for (const scope of [
  { kind: 'destination', destination: 'd1' },
  { kind: 'team', team: 1 },
] as PauseScope[]) {
  test(`a ${scope.kind} pause: once the hung insert answers, the queued batches end, their rows and expected bodies leave the budget; lifted, every row lands once`, { timeout: 60_000 }, async () => {
    const h = hungWorld();
    try {
      await threeBatches(h);
      h.world.pipeline.setPauses([{ id: 'p', scope, reason: 'review', by: 'test', at: Date.now() }]);
      // An insert on the wire is not cut by a pause: it ends when the destination answers, and the
      // batches queued behind it on the lane end then (see the report on what they hold meanwhile).
      h.control.hanging.clear();
      h.control.release();
      await until(() => h.world.total() === 0 && h.pending() === 0, 'nothing held while paused');
      h.world.pipeline.setPauses([]);
      await until(() => h.world.source.committed === 30n, 'all committed after the pause lifted', 20_000);
      expectExactlyOnce(h.warehouse, h.world.letters.written, 30);
      await until(() => h.world.total() === 0 && h.pending() === 0, 'budget back to 0');
      assert.ok(h.world.lowest >= 0);
    } finally {
      h.control.release();
      await h.world.pipeline.destroy();
    }
  });
}

test('a revocation with batches queued behind a hung insert: once it answers, rows and expected bodies leave the budget', { timeout: 60_000 }, async () => {
  const h = hungWorld();
  try {
    await threeBatches(h);
    h.world.source.revoke(h.world.pipeline, [0]);
    h.control.hanging.clear();
    h.control.release();
    await until(() => h.world.total() === 0 && h.pending() === 0, 'nothing held after the revocation');
    assert.ok(h.world.lowest >= 0);
  } finally {
    h.control.release();
    await h.world.pipeline.destroy();
  }
});

for (const how of ['close past its deadline', 'destroy'] as const) {
  test(`${how} with batches queued behind a hung insert: the budget is back to 0`, { timeout: 60_000 }, async () => {
    const h = hungWorld();
    try {
      await threeBatches(h);
      await (how === 'destroy' ? h.world.pipeline.destroy() : h.world.pipeline.close(100));
      assert.equal(h.world.total(), 0);
      assert.equal(h.pending(), 0);
      assert.ok(h.world.lowest >= 0);
    } finally {
      h.control.release();
      await h.world.pipeline.destroy();
    }
  });
}
