// A destination that hangs (its insert on the wire, never answered) must not stop the others once
// the shared memory budget is full (docs/design/delivery.md §9): past its `stalledAfterMs` it is
// stuck, parked, and its bytes stop counting towards what the source waits on; when its request
// finally answers it is unparked and its rows are re-read, each landing once. And the budget's
// accounting of parked bytes, alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryBudget } from '../../../src/batch/budget.ts';
import type { InsertBatch, InsertResult } from '../../../src/sink/types.ts';
import { Metrics } from '../../../src/telemetry/metrics.ts';
import { InflightRegistry } from '../../../src/pipeline/tracked-sink.ts';
import { expectExactlyOnce } from '../../helpers/exactly-once.ts';
import { event, HeldDeadLetters, startWorld, TokenWarehouse, until, worldConfig } from '../../helpers/pipeline-world.ts';

test('a hanging destination is parked while the budget is full: the healthy one goes on, and once it answers every row lands once', async () => {
  const warehouse = new TokenWarehouse();
  let release: (() => void) | undefined;
  let hung = 0;
  const sinkFactory = warehouse.sinksWith(async (inner, batch: InsertBatch, signal): Promise<InsertResult> => {
    // d2's first insert hangs until the test lets it answer (a server that took the request and sits on it).
    if (batch.token.includes(':d2:') && hung++ === 0) await new Promise<void>((resolve) => (release = resolve));
    return inner.insert(batch, signal);
  });
  const config = worldConfig({
    destinations: [
      { id: 'd1', url: 'http://localhost:8123' },
      { id: 'd2', url: 'http://localhost:8124', stalledAfterMs: 50 },
    ],
    teams: { map: { 1: 'd1', 2: 'd2' } },
    batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 },
    maxBufferedBytes: 1_000, // under one d2 batch and its body: what d2 has on the wire alone fills it
  });
  const letters = new HeldDeadLetters();
  const world = startWorld({ config, warehouse, sinkFactory, deadLetters: letters });
  try {
    // Interleaved teams, so the source must read d2's rows to reach d1's.
    const records = Array.from({ length: 200 }, (_, i) => event(i, i % 4 === 0 ? 2 : 1, 40));
    void world.source.append(records);
    await until(() => release !== undefined, "d2's first insert is on the wire");
    const d1Rows = records.filter((_, i) => i % 4 !== 0).length;
    await until(() => warehouse.rows.filter((r) => r.destination === 'd1').length === d1Rows, "every d1 row inserted while d2's insert hangs", 10_000);
    assert.deepEqual(world.pipeline.status().parkedDestinations, ['d2'], 'd2 parked');
    release?.();
    await until(() => world.source.committed === 200n, 'committed to the end once d2 answers', 10_000);
    expectExactlyOnce(warehouse, letters.written, 200);
  } finally {
    release?.();
    await world.pipeline.destroy();
  }
});

test("budget: a parked destination's bytes stop counting towards `over`, its later releases too, and unparking counts them again", () => {
  const budget = new MemoryBudget(worldConfig({ maxBufferedBytes: 100 }), new Metrics(), () => undefined);
  budget.reserve(80, 'd2');
  budget.reserve(40, 'd1');
  assert.equal(budget.over, true);
  let woken = false;
  void budget.waitForDrain().then(() => (woken = true));
  budget.park('d2');
  assert.equal(budget.over, false, '40 bytes of d1 count');
  budget.reserve(30, 'd2'); // a retry's body of the parked destination
  budget.release(30, 'd2');
  budget.release(50, 'd2');
  assert.equal(budget.over, false);
  budget.reserve(70, 'd1');
  assert.equal(budget.over, true, '110 of d1');
  budget.release(70, 'd1');
  budget.unpark('d2');
  assert.equal(budget.total, 70);
  assert.equal(budget.over, false, '30 of d2 and 40 of d1 count again');
  budget.reserve(31, 'd2');
  assert.equal(budget.over, true);
  return Promise.resolve().then(() => assert.equal(woken, true, 'parking woke the waiting source'));
});

test("the inflight registry knows each destination's oldest request on the wire", () => {
  const registry = new InflightRegistry();
  assert.equal(registry.oldestRequestAge('d1', 1_000), 0);
  const a = registry.requestStarted('d1', 100);
  const b = registry.requestStarted('d1', 300);
  registry.requestStarted('d2', 900);
  assert.equal(registry.oldestRequestAge('d1', 1_000), 900);
  registry.requestEnded('d1', a);
  assert.equal(registry.oldestRequestAge('d1', 1_000), 700);
  registry.requestEnded('d1', b);
  assert.equal(registry.oldestRequestAge('d1', 1_000), 0);
  assert.equal(registry.oldestRequestAge('d2', 1_000), 100);
});
