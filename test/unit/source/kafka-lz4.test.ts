import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, test } from 'node:test';
import fc from 'fast-check';
import { compressionsAlgorithms, compressionsAlgorithmsByBitmask } from '@platformatic/kafka';
import { generate } from '../../../dev/posthog/generator.ts';
import { decompressLz4Frame, installLz4Decoder, lz4Decoder, lz4FrameBound, Lz4FrameError } from '../../../src/source/kafka-lz4.ts';

// The client's own LZ4 codec, taken before the install replaces its decoder: frames are made the
// way the client's producers make them, and the two decoders are compared on them.
const clientCompress = compressionsAlgorithms.lz4.compressSync;
const clientDecompress = compressionsAlgorithms.lz4.decompressSync;

before(async () => {
  await installLz4Decoder(); // the C decoder's WebAssembly loads asynchronously
});

function events(count: number, seed: number): Buffer {
  return Buffer.concat([...generate('clickhouse_events_json', { seed, count, teams: 1000 })].map((m) => Buffer.from(m.value)));
}

/**
 * A frame written by hand: 64 KiB blocks (as Kafka's Java producer writes them), each stored
 * uncompressed. The header checksum is taken from a frame of the client's with the same descriptor.
 */
function storedFrame(data: Buffer): Buffer {
  const descriptor = clientCompress(Buffer.from('small input: 64 KiB blocks')).subarray(0, 7);
  assert.deepEqual([...descriptor.subarray(4, 6)], [0x60, 0x40]);
  const parts: Buffer[] = [descriptor];
  for (let at = 0; at < data.length; at += 64 << 10) {
    const block = data.subarray(at, Math.min(data.length, at + (64 << 10)));
    const size = Buffer.alloc(4);
    size.writeUInt32LE((block.length | 0x80000000) >>> 0);
    parts.push(size, block);
  }
  parts.push(Buffer.alloc(4));
  return Buffer.concat(parts);
}

test('frames the client compresses: the C decoder gives the same bytes as the client, within the bound', () => {
  const cases = [
    Buffer.from('x'),
    events(1, 1),
    events(700, 2),
    events(4_000, 3) /* ~5.5 MB: two 4 MiB blocks */,
    randomBytes(300_000) /* stored blocks */,
    Buffer.alloc(9 << 20) /* zeros: LZ4's largest ratio, ~255 */,
  ];
  for (const data of cases) {
    const frame = clientCompress(data);
    const bound = lz4FrameBound(frame);
    assert.ok(bound >= data.length, `bound ${bound} < ${data.length}`);
    assert.ok(bound <= data.length + (4 << 20), `bound ${bound} far above ${data.length}`);
    const ours = decompressLz4Frame(frame);
    assert.equal(Buffer.compare(ours, data), 0);
    assert.equal(Buffer.compare(ours, clientDecompress(frame)), 0);
  }
});

test('any bytes, compressed by the client, come back whole (property)', () => {
  const chunk = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 5_000 })).map(([byte, n]) => new Uint8Array(n).fill(byte)),
  );
  fc.assert(
    fc.property(fc.array(chunk, { maxLength: 40 }), (chunks) => {
      const data = Buffer.concat(chunks);
      if (data.length === 0) return; // Kafka never compresses an empty batch
      const frame = clientCompress(data);
      assert.ok(lz4FrameBound(frame) >= data.length);
      assert.equal(Buffer.compare(decompressLz4Frame(frame), data), 0);
    }),
    { numRuns: 300 },
  );
});

test('64 KiB blocks stored uncompressed: the bound is exact', () => {
  const data = events(200, 4);
  const frame = storedFrame(data);
  assert.equal(lz4FrameBound(frame), data.length);
  assert.equal(Buffer.compare(decompressLz4Frame(frame), data), 0);
});

test('installed into the client: its LZ4 codec decodes with the C decoder, once per process', async () => {
  assert.equal(await installLz4Decoder(), true);
  assert.equal(await installLz4Decoder(), true);
  const codec = compressionsAlgorithms.lz4;
  assert.notEqual(codec.decompressSync, clientDecompress, 'the client table holds the new decoder');
  assert.equal(compressionsAlgorithmsByBitmask[codec.bitmask]?.decompressSync, codec.decompressSync, 'record batches look the codec up by bitmask');
  const data = events(300, 6);
  assert.equal(Buffer.compare(codec.decompressSync(clientCompress(data)), data), 0);
  assert.equal(lz4Decoder(), 'wasm-lz4');
  // What is not one standard frame goes to the client's decoder, which gives its own verdict.
  assert.throws(() => codec.decompressSync(Buffer.from('not a frame')));
  assert.equal(lz4Decoder(), 'wasm-lz4');
});

// The tests below make the C decoder fail on a frame: its one decompression context is unusable
// afterwards, so they run last.

test('a frame the C decoder fails on: the client decides it, and decodes every later frame', () => {
  const codec = compressionsAlgorithms.lz4;
  const good = clientCompress(events(100, 7));
  const corrupt = Buffer.from(good);
  corrupt.fill(0xff, 12, 40); // a block's bytes
  assert.throws(() => codec.decompressSync(corrupt));
  assert.equal(lz4Decoder(), 'client');
  assert.equal(Buffer.compare(codec.decompressSync(good), events(100, 7)), 0);
  assert.throws(() => decompressLz4Frame(good), 'the C decoder stays unusable: why the client takes over for good');
});

test('what is not a whole frame is refused before the C decoder reads it', () => {
  const frame = clientCompress(events(50, 5));
  for (const bad of [Buffer.alloc(0), Buffer.from('not an lz4 frame'), frame.subarray(0, frame.length - 4), frame.subarray(0, 11)]) {
    assert.throws(() => lz4FrameBound(bad), Lz4FrameError);
  }
  const reserved = Buffer.from(frame);
  reserved[5] = 0x30; // block size id 3 is reserved
  assert.throws(() => lz4FrameBound(reserved), Lz4FrameError);
  const header = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x00]); // 4 MiB blocks
  const blocks = (count: number, size: number): Buffer =>
    Buffer.concat([header, ...Array.from({ length: count }, () => Buffer.concat([Buffer.from([size & 0xff, size >> 8, 0, 0]), Buffer.alloc(size)])), Buffer.alloc(4)]);
  // A one-byte compressed block restores at most 255 bytes: a small frame cannot reserve 4 MiB a block.
  assert.equal(lz4FrameBound(blocks(300, 1)), 300 * 255);
  assert.equal(lz4FrameBound(blocks(3, 20_000)), 3 * (4 << 20));
  assert.throws(() => lz4FrameBound(blocks(300, 20_000)), /more than 64 MiB/);
});
