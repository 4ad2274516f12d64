// Review 2026-12-07c of src/source/kafka-lz4.ts: what happens to the process once the C decoder has failed on a frame, or
// its heap has grown. Each scenario runs in a fresh process (lz4-child.ts): the C decoder's context is one per process.
// Their names say what was wrong; all three were fixed the same session (src/source/kafka-lz4.ts: such frames go to the client's decoder).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inFreshProcess } from './lz4-frames.ts';

test(
  'a batch every Kafka reader decodes (0x80000000 as its end mark, a tail after it) turns the C decoder off for the life of the process, silently',
  {
    /* fixed this session; was todo: the C decoder read on past 0x80000000, failed on the tail, and every later frame went to the slower client decoder; nothing logged it (the switch is now logged too) */
  },
  () => {
    const r = inFreshProcess('pseudo-end-mark');
    assert.equal(r.client, 'same bytes', 'the client decodes the batch (as Kafka’s Java reader does: it ends at 0x80000000)');
    assert.equal(r.installed, 'same bytes', 'the fallback gives the client’s verdict');
    assert.equal(r.decoder, 'wasm-lz4', 'one decodable batch should not turn the C decoder off for good');
  },
);

test(
  'after the C decoder is off, ~300 batches with a wrong content checksum (the broker does not check it) break LZ4 decoding for the whole process',
  {
    /* fixed this session (frames with checksums go to the client's decoder, the C decoder stays on); was todo: the client decoder leaks WebAssembly memory on every frame it rejects and then fails on every frame (and on snappy, @platformatic/wasm-utils 0.2.1); with the C decoder off for good there was no decoder left until a restart */
  },
  () => {
    const r = inFreshProcess('content-checksum');
    assert.match(String(r.first), /^throws/, 'both decoders reject a wrong content checksum');
    assert.equal(r.decoder, 'wasm-lz4', 'a frame with checksums goes to the client decoder: the C decoder stays on');
    assert.equal(r.goodAfter, 'same bytes', `a good frame after ${String(r.brokenAfter)} rejected ones: ${String(r.goodAfter)}`);
  },
);

test('control: while the C decoder is healthy, 2,000 batches that are not LZ4 frames break only the client decoder, and good frames still decode', () => {
  const r = inFreshProcess('junk-while-healthy');
  assert.ok(Number(r.brokenAfter) > 0, 'the client decoder is broken by rejected frames (its own defect, @platformatic/wasm-utils 0.2.1)');
  assert.equal(r.goodAfter, 'same bytes');
  assert.equal(r.decoder, 'wasm-lz4');
});

test(
  'two valid frames of 4.2 and 8.4 MB: the first grows the C decoder’s heap to ~1.1 GiB (255x its size) and the second finds no room (2 GiB cap) and turns it off',
  {
    /* fixed this session (a frame that may hold more than 64 MiB goes to the client's decoder); was todo: the bound allowed 255x a frame and 1 GiB in all: a 4.2 MB frame that decodes to 4.2 MB reserved 1 GiB that WebAssembly never returns; the next large frame could not malloc its bound, the C decoder failed and was off for good */
  },
  () => {
    const r = inFreshProcess('heap');
    assert.deepEqual(r.bounds, ['refused: LZ4 frame that may hold more than 64 MiB', 'refused: LZ4 frame that may hold more than 64 MiB']);
    assert.equal(r.resultA, 'same bytes');
    assert.equal(r.resultB, 'same bytes', 'the fallback still gives the right bytes (malloc returned 0 and the C decoder refused to write)');
    assert.ok(Number(r.heapAfterA) < 64, `C decoder heap after a 4.2 MB frame that decodes to 4.2 MB: ${String(r.heapAfterA)} MiB`);
    assert.equal(r.decoder, 'wasm-lz4', 'two valid frames should not turn the C decoder off');
  },
);
