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

test('a trickle whose open batch never empties: after cut() (a batch taken for delivery) the position moves batch by batch, never past the open one', () => {
  const tracker = new PartitionTracker();
  let open = new AckSet();
  let next = 0n;
  const read = (n: number): void => {
    for (let i = 0; i < n; i++) open.add(tracker.track(next++, 0));
  };
  read(5); // batch 1 open: 0–4
  for (let round = 1; round <= 20; round++) {
    const taken = open; // the lane's batch is flushed…
    tracker.cut();
    open = new AckSet();
    read(3); // …and the next records arrive before it lands
    taken.resolve();
    const position = tracker.committable();
    assert.equal(position, next - 3n, `round ${round}: past the landed batch, at the first record of the open one`);
  }
  assert.equal(tracker.unresolved(), 3);
});

test('cut() with nothing read since makes no empty chunk: the position never goes back', () => {
  const tracker = new PartitionTracker();
  const acks = new AckSet();
  acks.add(tracker.track(100n, 0));
  tracker.cut();
  tracker.cut();
  acks.resolve();
  assert.equal(tracker.committable(), 101n);
  tracker.cut();
  assert.equal(tracker.committable(), 101n);
  const later = new AckSet();
  later.add(tracker.track(101n, 0));
  assert.equal(tracker.committable(), 101n);
  later.resolve();
  assert.equal(tracker.committable(), 102n);
});

test('peekCommittable() says what committable() would, and reading it changes nothing later', () => {
  const run = (peekBetween: boolean): bigint[] => {
    const tracker = new PartitionTracker();
    const seen: bigint[] = [];
    const first = new AckSet();
    first.add(tracker.track(0n, 0));
    first.resolve();
    if (peekBetween) assert.equal(tracker.peekCommittable(), 1n, 'what a commit would store now');
    const second = new AckSet();
    second.add(tracker.track(1n, 0)); // joins the first record's chunk: nothing closed it
    seen.push(tracker.committable());
    second.resolve();
    seen.push(tracker.committable());
    return seen;
  };
  assert.deepEqual(run(true), run(false), 'a read-only view (status) does not move the chunk boundaries');
  assert.deepEqual(run(false), [0n, 2n]);
});
