// Review 2026-12-06f of d920a8f: what parking a destination because the SHARED budget is full costs
// when the destination is not the cause. Parking drops the destination's open batches and, when it
// is unparked, rewinds every owned partition to its committed position (read amplification). These
// tests drive the real Pipeline and count parks and rewinds; the exactly-once checks all hold (no
// loss, no duplicate), the `todo` ones are parks of a destination that is not stuck in the sense
// the change means (a hang or an outage).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import { expectExactlyOnce } from '../../helpers/exactly-once.ts';
import { event, TokenWarehouse, until, worldConfig } from '../../helpers/pipeline-world.ts';
import { Gate, run } from './world.ts';

const fastRetries = { baseMs: 5, capMs: 20, pauseMs: 20 };
const errorPolicy = { defaults: { transient_network: fastRetries, unknown_server_error: fastRetries, row_data: { baseMs: 5, capMs: 20 } } };

// Finding (low: cost, no loss). "Stuck" is "failing OR stalled", and failing is "the destination's
// last request failed" — any failure, including the warehouse refusing one bad row (row_data). With
// the shared budget full (any backlog drain: the source reads faster than it inserts, so `over` is
// true most of the time), a healthy destination that refuses ONE row is parked: its open batches are
// dropped and, once its bisection ends, every partition is rewound and re-read. Before d920a8f it was
// parked only over its own maxBufferedBytes (256 MiB by default), i.e. practically never for a poison
// row. Each poison row during a backlog now costs a full rewind.
test('a healthy destination refusing one bad row during a backlog (shared budget full) is not parked', { timeout: 60_000 }, async () => {
  const config = worldConfig({ teams: { map: { 1: 'd1' } }, batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 }, maxBufferedBytes: 2_000, errorPolicy });
  const warehouse = new TokenWarehouse();
  warehouse.fail = (_token, rows, uuids) => {
    const at = uuids.indexOf('u55');
    return at < 0 ? undefined : new WarehouseError(ErrorClasses.rowData, `Cannot parse input (at row ${at + 1})`, 27, undefined, rows > 1 ? at + 1 : 1);
  };
  const r: { world?: ReturnType<typeof run> } = {};
  // Every insert samples the parked set (a park lasts at least until the bisection's next insert).
  const world = (r.world = run(config, (d) => {
    const inner = warehouse.sink(d);
    return { ...inner, insert: (batch, signal) => (r.world?.parked(), inner.insert(batch, signal)) };
  }));
  try {
    void world.source.append(Array.from({ length: 400 }, (_, i) => event(i, 1, 40)));
    await until(() => (world.parked(), world.source.committed === 400n), 'committed to the end', 20_000);
    expectExactlyOnce(warehouse, world.letters.written, 400);
    assert.deepEqual(
      world.letters.written.map((l) => l.offset),
      [55n],
    );
    assert.deepEqual([...world.everParked], [], `parked: ${[...world.everParked].join(',')}; rewinds ${world.source.rewinds}`);
  } finally {
    await world.pipeline.destroy();
  }
});

// Control (and a measure of the cost): a healthy destination whose every insert takes longer than its
// stalledAfterMs (misconfigured: docs/operations.md says to set it above the longest insert) during
// a backlog is parked over and over; each park drops its open batches and each unpark rewinds every
// partition. It still makes progress (the insert on the wire lands each time: no livelock), and every
// row lands once. The parks and rewinds are reported.
test('a slow healthy destination (inserts longer than stalledAfterMs) during a backlog: parked repeatedly, no livelock, every row once', { timeout: 60_000 }, async (t) => {
  const config = worldConfig({
    destinations: [
      { id: 'd1', url: 'http://localhost:8123' },
      { id: 'd2', url: 'http://localhost:8124', stalledAfterMs: 20 },
    ],
    teams: { map: { 1: 'd1', 2: 'd2' } },
    batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 },
    maxBufferedBytes: 2_000,
    errorPolicy,
  });
  const warehouse = new TokenWarehouse();
  const gate = new Gate();
  gate.latency.set('d2', 40);
  const r: { world?: ReturnType<typeof run> } = {};
  const world = (r.world = run(
    config,
    gate.sinks(warehouse, (_d, inner, batch, signal) => (r.world?.parked(), inner.insert(batch, signal))),
  ));
  try {
    void world.source.append(Array.from({ length: 600 }, (_, i) => event(i, i % 3 === 0 ? 2 : 1, 40)));
    await until(() => (world.parked(), world.source.committed === 600n), 'committed to the end', 40_000);
    expectExactlyOnce(warehouse, world.letters.written, 600);
    t.diagnostic(`rewinds ${world.source.rewinds}, inserts ${warehouse.inserts.length}, parked seen ${[...world.everParked].join(',')}`);
    assert.ok(world.everParked.has('d2'), 'd2 was parked (its inserts outlast stalledAfterMs)');
  } finally {
    await world.pipeline.destroy();
  }
});
