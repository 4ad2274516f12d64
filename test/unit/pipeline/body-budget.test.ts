// An insert's body is a second copy of its rows while it is sent (src/pipeline/attempt.ts): it is
// counted in the memory budget from encode until the attempt ends, landed or failed; before that a
// queued batch's bodies are expected at its rows' size (Batch.bodyAllowance). The source waits while
// rows, bodies and expected bodies together are over `maxBufferedBytes` — the flush itself never waits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { AbortedError } from '../../../src/errors/inserter-error.ts';
import type { Pipeline } from '../../../src/pipeline/pipeline.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import type { InsertBatch } from '../../../src/sink/types.ts';
import { event, startWorld, TokenWarehouse, until, worldConfig } from '../../helpers/pipeline-world.ts';

const held = (pipeline: Pipeline): number => pipeline.status().bufferedBytesByDestination.d1 ?? 0;

/** A world whose inserts wait for the test: each call is recorded with the bytes held when it was sent. */
function heldInserts(maxBufferedBytes?: number) {
  const config = worldConfig({
    teams: { map: { 1: 'd1' } },
    batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 60_000 },
    ...(maxBufferedBytes === undefined ? {} : { maxBufferedBytes }),
  });
  const warehouse = new TokenWarehouse();
  const calls: Array<{ batch: InsertBatch; heldAtSend: number; settle: (error?: Error) => void }> = [];
  const started: { pipeline?: Pipeline } = {};
  const sinkFactory = warehouse.sinksWith(async (inner, batch, signal) => {
    const settled = new Promise<Error | undefined>((resolve) => {
      calls.push({ batch, heldAtSend: started.pipeline === undefined ? -1 : held(started.pipeline), settle: resolve });
      // A stopping pipeline aborts what it sent: the held insert fails as a real one would.
      signal?.addEventListener('abort', () => resolve(new AbortedError('insert aborted')), { once: true });
    });
    const error = await settled;
    if (error !== undefined) throw error;
    return inner.insert(batch, signal);
  });
  const world = startWorld({ config, warehouse, sinkFactory });
  started.pipeline = world.pipeline;
  return { world, warehouse, calls };
}

test('a body is counted while it is sent, again on its retry, and released when the attempt ends', { timeout: 60_000 }, async () => {
  const { world, warehouse, calls } = heldInserts();
  try {
    const records = Array.from({ length: 10 }, (_, i) => event(i, 1));
    await world.source.append(records.slice(0, 9));
    await until(() => held(world.pipeline) > 0, 'nine rows held');
    const nineRows = held(world.pipeline);
    const tenRows = (nineRows / 9) * 10; // the rows are the same size
    await world.source.append(records.slice(9));
    await until(() => calls.length === 1, 'the full batch is sent');
    const first = calls[0]!;
    assert.ok(first.batch.bytes > 0);
    assert.equal(first.heldAtSend, tenRows + first.batch.bytes, 'rows and the body being sent');
    assert.equal(held(world.pipeline), tenRows + first.batch.bytes);
    assert.equal(world.pipeline.status().pendingBodyBytes, 0, 'the body expected when the batch was queued is the body now');

    first.settle(new WarehouseError(ErrorClasses.transientNetwork, 'connect ECONNRESET', undefined, undefined));
    await until(() => calls.length === 2, 'the retry is sent');
    const second = calls[1]!;
    assert.equal(second.heldAtSend, tenRows + second.batch.bytes, "a failed attempt's body no longer counts; the retry's does");
    second.settle();
    await until(() => world.source.committedAt(0) === 10n, 'committed');
    assert.equal(held(world.pipeline), 0, 'nothing held once the batch landed');
    assert.equal(warehouse.uuids().length, 10);
  } finally {
    await world.pipeline.destroy();
  }
});

test('the source waits from when a batch is queued: its bodies are counted before they exist, although the rows alone are under the budget', { timeout: 60_000 }, async () => {
  // The sizes of this world's rows and body, measured with an unlimited budget.
  const probe = heldInserts();
  let tenRows: number;
  let body: number;
  try {
    await probe.world.source.append(Array.from({ length: 9 }, (_, i) => event(i, 1)));
    await until(() => held(probe.world.pipeline) > 0, 'nine rows held');
    tenRows = (held(probe.world.pipeline) / 9) * 10;
    await probe.world.source.append([event(9, 1)]);
    await until(() => probe.calls.length === 1, 'sent');
    body = probe.calls[0]!.batch.bytes;
    assert.equal(probe.calls[0]!.heldAtSend, tenRows + body, 'rows and the body being sent');
  } finally {
    await probe.world.pipeline.destroy();
  }

  const { world, calls } = heldInserts(tenRows + Math.floor(tenRows / 2));
  try {
    // The tenth row queues the batch: rows and the body expected for them are over the budget at once,
    // so the source waits on that row already (before, it went on until the body was encoded).
    let resumed = false;
    void world.source.append(Array.from({ length: 10 }, (_, i) => event(i, 1))).then(() => (resumed = true));
    await until(() => calls.length === 1, 'the batch is sent although rows and bodies exceed the budget');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(resumed, false, 'the source waits while the batch is being sent');
    calls[0]!.settle();
    await until(() => resumed, 'the source goes on once the insert landed and its rows were released');
    assert.equal(held(world.pipeline), 0);
  } finally {
    await world.pipeline.destroy();
  }
});
