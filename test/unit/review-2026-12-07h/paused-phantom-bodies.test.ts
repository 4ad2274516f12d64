// Finding (cd02dba), fixed since: LaneControl (#stopLanes, #stopTeams) and Ownership.reset clear the expectations of queued batches. bodies that can never be made still hold the source. A batch queued behind an
// insert that hangs expects its bodies (MemoryBudget.expectBodies in LaneDelivery.enqueue) until its
// first attempt (bodiesStarted) or the end of its delivery (releaseBatch in #deliverHolding's
// finally) — and that delivery only runs once the hung insert answers (lane.tail). An operator pause
// of the hanging destination (LaneControl.#stopLanes: lane.stop aborted, no insert of the lane will
// be made) leaves those expectations in `MemoryBudget.over`, so the source keeps waiting and a
// healthy destination gets no rows until the hung request ends (requestTimeoutMs, 120 s by
// default) or the destination is parked as stalled (stalledAfterMs). Before cd02dba the same state
// held rows only: under this budget the source would not have waited at all. (Revocation leaves
// them the same way: Ownership.#abandon, then PartitionState.reset touches open and re-forming
// batches only.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenWarehouse, until, worldConfig } from '../../helpers/pipeline-world.ts';
import { Control, errorPolicy, measure, rows, run, settle } from './world.ts';

test('pausing a hanging destination lets a healthy one be read: its queued batches will never be sent, so their bodies no longer hold the source', { timeout: 60_000 }, async () => {
  const { row, body } = await measure();
  const batch = 10 * row;
  // d1's hung batch (rows + body) and its queued batch's rows fit; with the queued batch's expected body they do not.
  const maxBufferedBytes = Math.floor(2 * batch + 10 * body + batch / 2);
  const config = worldConfig({
    destinations: [
      { id: 'd1', url: 'http://localhost:8123', stalledAfterMs: 60_000 },
      { id: 'd2', url: 'http://localhost:8124' },
    ],
    teams: { map: { 1: 'd1', 2: 'd2' } },
    batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 },
    maxBufferedBytes,
    errorPolicy,
  });
  const warehouse = new TokenWarehouse();
  const control = new Control();
  control.hanging.add('d1');
  const world = run(config, control.sinks(warehouse));
  const pending = (): number => world.pipeline.status().pendingBodyBytes ?? 0;
  try {
    void world.source.append(rows(0, 20, 1));
    await until(() => control.heldCount === 1 && pending() > 0, "d1's first insert hangs, its second batch is queued behind it");
    await settle();
    assert.equal(world.source.caughtUp, false, 'the source waits: rows, the hung body and the expected body are over the budget');
    assert.ok(world.total() <= maxBufferedBytes, 'what is held alone is under it');

    world.pipeline.setPauses([{ id: 'p', scope: { kind: 'destination', destination: 'd1' }, reason: 'hanging', by: 'operator', at: Date.now() }]);
    void world.source.append(rows(20, 10, 2));
    await until(() => warehouse.rows.some((r) => r.destination === 'd2'), "d2's rows read and inserted while d1 is paused", 3_000);
  } finally {
    control.release();
    await world.pipeline.destroy();
  }
});
