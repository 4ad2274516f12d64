// Probe (passes on the reworked change, MemoryBudget.expectBodies/bodiesStarted): a failing
// destination with a batch queued behind its failing delivery (its bodies still expected:
// MemoryBudget.pending) is parked; the lane control's drop (LaneControl.checkBudget ->
// MemoryBudget.releaseBatch) takes the queued batch's rows AND its expected bodies out of the budget,
// the parked destination then holds only its delivery on the wire, and once it recovers every row
// lands once and the budget (rows and expected bodies) is back to 0, never negative.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectExactlyOnce } from '../../helpers/exactly-once.ts';
import { TokenWarehouse, until, worldConfig } from '../../helpers/pipeline-world.ts';
import { Control, errorPolicy, measure, rows, run } from './world.ts';

test('a queued batch dropped when its failing destination is parked releases its rows and its expected bodies; all rows land once after recovery', { timeout: 60_000 }, async () => {
  const { row, body } = await measure();
  const batch = 10 * row;
  const config = worldConfig({
    destinations: [{ id: 'd1', url: 'http://localhost:8123', maxBufferedBytes: Math.floor(3.2 * batch) }],
    teams: { map: { 1: 'd1' } },
    batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 60_000 },
    errorPolicy,
  });
  const warehouse = new TokenWarehouse();
  const control = new Control();
  control.failing.add('d1');
  const world = run(config, control.sinks(warehouse));
  const pending = (): number => world.pipeline.status().pendingBodyBytes ?? 0;
  try {
    void world.source.append(rows(0, 10, 1));
    await until(() => control.calls.length >= 2, 'the first batch is failing (retried)');
    assert.equal(pending(), 0, 'the first batch made its body: nothing of it is expected any more');
    void world.source.append(rows(10, 10, 1));
    await until(() => pending() > 0, 'the second batch is queued behind the failing delivery, its bodies expected');
    assert.deepEqual(world.parked(), []);
    void world.source.append(rows(20, 10, 1));
    await until(() => world.parked().includes('d1'), 'd1 parked');
    assert.equal(pending(), 0, "the dropped batch's expected bodies left the budget");
    assert.ok(world.held('d1') <= batch + 10 * body + 20, `only the delivery on the wire is held: ${world.held('d1')}`);

    control.failing.delete('d1');
    await until(() => world.parked().length === 0, 'recovered', 20_000);
    await until(() => world.source.committed === 30n, 'all committed', 20_000);
    expectExactlyOnce(warehouse, world.letters.written, 30);
    await until(() => world.total() === 0 && pending() === 0, 'budget back to 0');
    assert.ok(world.lowest >= 0, 'never negative');
  } finally {
    control.failing.clear();
    await world.pipeline.destroy();
  }
});
