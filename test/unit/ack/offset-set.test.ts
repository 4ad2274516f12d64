// OffsetSet: membership, merging in any order, pruning, and a wire form that stays compact.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OffsetSet } from '../../../src/ack/offset-set.ts';

function model(offsets: readonly number[]): OffsetSet {
  const set = new OffsetSet();
  for (const o of offsets) set.add(BigInt(o));
  return set;
}

test('adds in any order, merges touching runs, answers membership', () => {
  const offsets = [5, 1, 2, 9, 3, 7, 8, 6, 20, 4];
  const set = model(offsets);
  assert.deepEqual([...set].map(Number), [1, 2, 3, 4, 5, 6, 7, 8, 9, 20]);
  assert.equal(set.size, 10);
  assert.equal(set.runs, 2);
  assert.equal(set.has(0n), false);
  assert.equal(set.has(9n), true);
  assert.equal(set.has(10n), false);
  assert.equal(set.first, 1n);
  assert.equal(set.last, 20n);
});

test('matches a plain set under random adds, unions and prunes', () => {
  let seed = 7;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let round = 0; round < 200; round++) {
    const set = new OffsetSet();
    const plain = new Set<number>();
    for (let i = 0; i < 60; i++) {
      const roll = rand(10);
      if (roll < 6) {
        const o = rand(200);
        set.add(BigInt(o));
        plain.add(o);
      } else if (roll < 9) {
        const other = new OffsetSet();
        const base = rand(200);
        for (let k = 0; k < rand(12); k++) {
          const o = base + rand(20);
          other.add(BigInt(o));
          plain.add(o);
        }
        set.addAll(other);
      } else {
        const below = rand(200);
        set.removeBelow(BigInt(below));
        for (const o of [...plain]) if (o < below) plain.delete(o);
      }
      const expected = [...plain].sort((a, b) => a - b);
      assert.deepEqual([...set].map(Number), expected);
      assert.equal(set.size, expected.length);
      for (let o = 0; o < 230; o++) assert.equal(set.has(BigInt(o)), plain.has(o), `has(${o})`);
      assert.deepEqual([...OffsetSet.decode(set.encode())].map(Number), expected);
    }
  }
});

test('100k scattered offsets above a large base encode in well under 1 MiB', () => {
  const set = new OffsetSet();
  const base = 1_234_567_890n;
  for (let i = 0n; i < 100_000n; i++) set.add(base + i * 3n);
  const text = set.encode();
  assert.ok(text.length < 300_000, `${text.length} bytes`);
  const back = OffsetSet.decode(text);
  assert.equal(back.size, 100_000);
  assert.equal(back.has(base + 3n), true);
  assert.equal(back.has(base + 4n), false);
});
