// The simulation's sparse offsets (FEATURES.sparseOffsets) are what they claim — increasing, safe
// integers, with every kind of gap and far-off bases — and the bus finds records by offset: a fetch
// from a position in a gap starts at the next record, and the end a drained partition commits is
// just past its last record.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Bus } from '../../sim/bus.ts';
import { indexAtOrAbove, sparseLayout } from '../../sim/offsets.ts';
import { Rng } from '../../sim/rng.ts';

test('sparse layouts increase, stay safe integers, and hold every kind of gap and base', () => {
  const bases: bigint[] = [];
  const gaps = { one: 0, few: 0, thousands: 0, millions: 0 };
  for (let seed = 1; seed <= 200; seed++) {
    const next = sparseLayout(new Rng(seed));
    let previous = next();
    bases.push(previous);
    for (let i = 0; i < 160; i++) {
      const offset = next();
      const d = offset - previous;
      assert.ok(d >= 1n, `seed ${seed}: ${offset} after ${previous}`);
      if (d === 1n) gaps.one++;
      else if (d <= 5n) gaps.few++;
      else if (d < 1_000_000n) gaps.thousands++;
      else gaps.millions++;
      previous = offset;
    }
    assert.ok(Number.isSafeInteger(Number(previous)) && previous < 2n ** 50n, `seed ${seed}: ${previous}`);
  }
  assert.ok(bases.includes(0n));
  assert.ok(bases.some((b) => b > 0n && b <= 100_000n));
  assert.ok(bases.some((b) => b > 2n ** 49n));
  assert.ok(gaps.one > gaps.few && gaps.few > gaps.thousands && gaps.thousands > gaps.millions && gaps.millions > 0, JSON.stringify(gaps));
});

test('the bus fetches the first record at or above a position, and a drained partition ends just past its last record', () => {
  const offsets = [7n, 8n, 12n, 5_000_012n];
  const bus = new Bus();
  bus.addPartition('t', 0, () => offsets.shift() as bigint);
  for (let i = 0; i < 4; i++) bus.append('t', 0, { timestamp: 0n, key: undefined, value: undefined, appendAt: i * 10 });
  const at = (position: bigint): bigint | undefined => bus.recordAtOrAbove('t', 0, position)?.offset;
  assert.deepEqual([at(0n), at(7n), at(9n), at(12n), at(13n), at(5_000_013n)], [7n, 7n, 12n, 12n, 5_000_012n, undefined]);
  assert.equal(indexAtOrAbove(bus.log('t', 0), 10n), 2);
  assert.equal(bus.visibleEnd('t', 0, -1), 0n);
  assert.equal(bus.visibleEnd('t', 0, 20), 13n);
  assert.equal(bus.endPosition('t', 0), 5_000_013n);
  bus.applyCommit({ topic: 't', partition: 0, offset: 13n, epoch: 0 }, 1);
  assert.equal(bus.drained(100), false);
  bus.applyCommit({ topic: 't', partition: 0, offset: 5_000_013n, epoch: 0 }, 1);
  assert.equal(bus.drained(100), true);
});
