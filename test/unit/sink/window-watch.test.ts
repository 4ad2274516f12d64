// The deduplication-window watch: a retry of an insert whose earlier attempt may have landed is
// flagged (one warning and one count per token) once it is later than the table's window seconds,
// or once this process alone inserted `window` blocks into the table since; definite failures and
// unknown windows are never flagged.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { DedupWindowWatch } from '../../../src/sink/clickhouse/window-watch.ts';
import type { Deduplication } from '../../../src/sink/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { Metrics } from '../../../src/telemetry/metrics.ts';

const t = { database: 'app', table: 'events' };
const replicated: Deduplication = { engine: 'ReplicatedMergeTree', byToken: true, setting: 'replicated_deduplication_window', windowBlocks: 3, windowSeconds: 60, reason: undefined };

function watch(): { w: DedupWindowWatch; metrics: Metrics; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  const metrics = new Metrics();
  const w = new DedupWindowWatch({ destinationId: 'a', metrics, logger: createLogger('silent'), now: () => clock.now });
  w.learn(t, replicated);
  return { w, metrics, clock };
}

const exceeded = async (metrics: Metrics): Promise<number> => (await metrics.dedupWindowExceeded.get()).values.reduce((sum, v) => sum + v.value, 0);

test('a retry later than the window seconds after an uncertain attempt is flagged once', async () => {
  const { w, metrics, clock } = watch();
  assert.equal(w.beforeAttempt(t, 'T'), false);
  w.failed(t, 'T', ErrorClasses.transientNetwork);
  clock.now += 59_000;
  assert.equal(w.beforeAttempt(t, 'T'), false);
  clock.now += 2_000;
  assert.equal(w.beforeAttempt(t, 'T'), true);
  w.failed(t, 'T', ErrorClasses.unknownInsertStatus); // still counted from the first uncertain attempt
  assert.equal(w.beforeAttempt(t, 'T'), true);
  assert.equal(await exceeded(metrics), 1);
  w.succeeded(t, 'T');
  assert.equal(w.beforeAttempt(t, 'T'), false);
});

test('a retry after `window` other inserts into the table is flagged', async () => {
  const { w, metrics } = watch();
  w.failed(t, 'T', ErrorClasses.unknownInsertStatus);
  for (const token of ['a', 'b']) w.succeeded(t, token);
  assert.equal(w.beforeAttempt(t, 'T'), false);
  w.succeeded(t, 'c');
  assert.equal(w.beforeAttempt(t, 'T'), true);
  assert.equal(await exceeded(metrics), 1);
});

test('definite failures, other tables and unknown windows are not flagged', async () => {
  const { w, metrics, clock } = watch();
  w.failed(t, 'T', ErrorClasses.tooManyParts);
  const other = { database: 'app', table: 'other' };
  w.failed(other, 'U', ErrorClasses.transientNetwork);
  clock.now += 3_600_000;
  assert.equal(w.beforeAttempt(t, 'T'), false, 'the server said no: nothing landed');
  assert.equal(w.beforeAttempt(other, 'U'), false, 'window never read');
  assert.equal(await exceeded(metrics), 0);
});

test('learning a table sets its deduplicates gauge', async () => {
  const { w, metrics } = watch();
  w.learn({ database: 'app', table: 'buf' }, { engine: 'Buffer', byToken: false, setting: undefined, windowBlocks: undefined, windowSeconds: undefined, reason: 'x' });
  const values = (await metrics.tableDeduplicates.get()).values.map((v) => [v.labels.table, v.value]);
  assert.deepEqual(values, [
    ['app.events', 1],
    ['app.buf', 0],
  ]);
});
