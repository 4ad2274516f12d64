import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AckSet, PartitionTracker } from '../../../src/ack/partition-tracker.ts';

test('watermark stops at the first unresolved record and advances when it resolves', () => {
  const tracker = new PartitionTracker();
  const a = new AckSet();
  const b = new AckSet();
  for (let offset = 10n; offset < 2000n; offset++) {
    const chunk = tracker.track(offset, 0);
    if (offset === 700n) a.add(chunk);
    if (offset === 1500n) b.add(chunk);
  }
  assert.ok(tracker.committable() <= 700n, 'never past offset 700 while it is unresolved');
  b.resolve();
  assert.ok(tracker.committable() <= 700n);
  a.resolve();
  assert.equal(tracker.committable(), 2000n);
  assert.equal(tracker.unresolved(), 0);
});

test('starts at the first tracked offset and skips nothing when all resolve immediately', () => {
  const tracker = new PartitionTracker();
  assert.equal(tracker.committable(), -1n);
  tracker.track(5n, 3);
  assert.equal(tracker.committable(), 6n);
  assert.equal(tracker.epoch, 3);
  assert.equal(tracker.nextOffset, 6n);
});

test('resolving out of order across many chunks never overtakes a pending record', () => {
  const tracker = new PartitionTracker();
  const sets: AckSet[] = [];
  for (let offset = 0n; offset < 10_000n; offset++) {
    const chunk = tracker.track(offset, 0);
    const set = new AckSet();
    set.add(chunk);
    sets.push(set);
  }
  const order = sets.map((_, i) => i).reverse();
  let lowestPending = 0;
  const resolved = new Set<number>();
  for (const i of order) {
    sets[i]?.resolve();
    resolved.add(i);
    while (resolved.has(lowestPending)) lowestPending++;
    assert.ok(tracker.committable() <= BigInt(lowestPending));
  }
  assert.equal(tracker.committable(), 10_000n);
});

test('seen: a record at or below the last tracked offset was tracked already (a re-delivery)', () => {
  const tracker = new PartitionTracker();
  assert.equal(tracker.seen(0n), false, 'nothing tracked yet');
  assert.equal(tracker.nextOffset, undefined);
  tracker.track(10n, 0);
  tracker.track(11n, 0);
  assert.equal(tracker.seen(9n), true);
  assert.equal(tracker.seen(11n), true);
  assert.equal(tracker.seen(12n), false);
  assert.equal(tracker.nextOffset, 12n);
});
