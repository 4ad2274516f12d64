// The body-block pool: blocks come back only from bodies that took them, each once, within the bound;
// a body on the pool gives back its own blocks on release and never a value it only referenced.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Batch } from '../../../src/batch/lane.ts';
import { encodeRange } from '../../../src/encode/batch-body.ts';
import { BLOCK_SIZE, BlockPool, bodyBlocks } from '../../../src/encode/block-pool.ts';
import { ByteChunks } from '../../../src/encode/byte-chunks.ts';
import type { RowEncoder } from '../../../src/encode/types.ts';

/** Rows of `size` bytes, each filled with its own number, so a mix-up between bodies shows. */
function rows(count: number, size: number, seed: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.alloc(size, (seed * 31 + i) % 251));
}

function bodyOf(pool: BlockPool | undefined, parts: readonly Buffer[]): ByteChunks {
  const out = new ByteChunks(pool);
  for (const p of parts) out.writeBytes(p);
  return out;
}

test('a block given back is handed out again instead of a new one', () => {
  const pool = new BlockPool(4 * BLOCK_SIZE);
  const a = pool.take();
  assert.equal(a.length, BLOCK_SIZE);
  pool.give([a]);
  assert.equal(pool.idleBytes, BLOCK_SIZE);
  assert.equal(pool.take(), a);
  assert.deepEqual(pool.stats, { allocated: 1, reused: 1 });
  assert.equal(pool.idleBytes, 0);
});

test('only blocks the pool handed out come back, each once, and never above the bound', () => {
  const pool = new BlockPool(2 * BLOCK_SIZE);
  const [a, b, c] = [pool.take(), pool.take(), pool.take()];
  const foreign = Buffer.allocUnsafe(BLOCK_SIZE);
  pool.give([foreign, a.subarray(0, 10), a, a]);
  assert.equal(pool.idleBytes, BLOCK_SIZE, 'a foreign block, a slice and a second give of the same block are ignored');
  pool.give([b, c]);
  assert.equal(pool.idleBytes, 2 * BLOCK_SIZE, 'the third block is over the bound: left to the collector');
  const handed = [pool.take(), pool.take(), pool.take()];
  assert.equal(new Set(handed).size, 3, 'no block is handed to two bodies');
  assert.ok(!handed.includes(foreign));
  pool.give(handed);
  pool.setCapacity(BLOCK_SIZE);
  assert.equal(pool.idleBytes, BLOCK_SIZE);
  assert.equal(pool.capacityBytes, BLOCK_SIZE);
});

test('a body releases its own blocks; the next body reuses them and reads back its own bytes', () => {
  const pool = new BlockPool();
  const first = rows(300, 3_000, 1); // ~900 KB: four blocks
  const body = bodyOf(pool, first);
  assert.ok(Buffer.concat(body.slice(0, body.length)).equals(Buffer.concat(first)));
  const taken = pool.stats.allocated;
  assert.equal(taken, 4);
  body.release();
  assert.equal(pool.idleBytes, taken * BLOCK_SIZE);
  const second = rows(300, 3_000, 2);
  const again = bodyOf(pool, second);
  assert.deepEqual(pool.stats, { allocated: taken, reused: taken }, 'no new block for a body of the same size');
  assert.ok(Buffer.concat(again.slice(0, again.length)).equals(Buffer.concat(second)));
});

test('referenced large values and oversized copies are never given to the pool', () => {
  const pool = new BlockPool();
  const large = Buffer.alloc(BLOCK_SIZE, 7); // > BLOCK_SIZE / 4: referenced, and exactly a block's size
  const huge = Buffer.alloc(BLOCK_SIZE + 10, 9);
  const body = new ByteChunks(pool);
  body.writeUtf8('{"a":1}\n');
  body.writeBytes(large);
  body.writeRange(huge, 0, huge.length); // a copy in a block of its own, not a pool block
  body.writeUtf8('\n');
  const slices = body.slice(0, body.length);
  assert.ok(
    slices.some((s) => s.buffer === large.buffer),
    'the large value is referenced',
  );
  body.release();
  assert.equal(pool.idleBytes, pool.stats.allocated * BLOCK_SIZE);
  assert.equal(pool.stats.allocated, 2, 'only the two small-write blocks came from the pool');
  const handed = [pool.take(), pool.take()];
  assert.ok(handed.every((b) => b.buffer !== large.buffer && b.buffer !== huge.buffer));
  for (const b of handed) b.fill(0xee);
  assert.ok(large.equals(Buffer.alloc(BLOCK_SIZE, 7)), "the caller's value is untouched by the next bodies");
});

test('a released body can no longer be read or written', () => {
  const body = bodyOf(new BlockPool(), rows(10, 100, 3));
  body.release();
  body.release(); // idempotent
  assert.equal(body.length, 0);
  assert.throws(() => body.slice(0, 1), /released/);
  assert.throws(() => body.writeUtf8('x'), /released/);
  assert.throws(() => body.writeBytes(Buffer.alloc(BLOCK_SIZE)), /released/);
  const unpooled = bodyOf(undefined, rows(10, 100, 3));
  unpooled.release();
  assert.throws(() => unpooled.writeUInt8(1), /released/);
});

test("encodeRange builds on the process's pool and gives the blocks back when the encoder refuses a row", () => {
  let writes = 0;
  const refusing: RowEncoder = {
    format: 'JSONEachRow',
    columns: undefined,
    write(out) {
      if (++writes > 100) throw Object.assign(new Error('value refused'), { code: 'INSERTER_ENCODE_REJECTED' });
      out.writeBytes(Buffer.alloc(5_000, 1));
    },
  };
  const batch = { records: Array.from({ length: 200 }, () => ({})), rows: Array.from({ length: 200 }, () => ({})), teams: [] } as unknown as Batch;
  const idle = bodyBlocks.idleBytes;
  const before = bodyBlocks.stats;
  assert.throws(
    () => encodeRange(refusing, batch, 0, 200),
    (e: Error & { errorClass?: string }) => e.errorClass === 'row_data' && /at row 101/.test(e.message),
  );
  const taken = bodyBlocks.stats.allocated - before.allocated + (bodyBlocks.stats.reused - before.reused);
  assert.equal(taken, 2, '500 KB of rows took two blocks');
  assert.equal(bodyBlocks.idleBytes, idle + (bodyBlocks.stats.allocated - before.allocated) * BLOCK_SIZE, 'every block taken is idle again');
});
