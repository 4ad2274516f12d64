// Review 2026-12-07c of src/source/kafka-lz4.ts: hand-made and generated frames through the installed decoder, compared with
// the client's own. Every frame here is one the C decoder accepts (a failure would turn it off for the rest of this file;
// those scenarios are in lz4-isolated.test.ts). Their names say what was wrong; the four findings here were fixed the same session (such frames go to the client's decoder).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { DynamicBuffer } from '@platformatic/dynamic-buffer';
import { compressionsAlgorithms } from '@platformatic/kafka';
import { installLz4Decoder, lz4Decoder, lz4FrameBound, Lz4FrameError } from '../../../src/source/kafka-lz4.ts';
import { type Block, clientBlocks, clientCompress, clientDecompress, frame, lastLiterals, sequence, u32le, xxh32 } from './lz4-frames.ts';

before(async () => {
  assert.equal(await installLz4Decoder(), true);
});

const installed = (f: Uint8Array): Buffer => compressionsAlgorithms.lz4.decompressSync(f as Buffer);
const data = Buffer.from('{"event":"$pageview","team_id":7,"distinct_id":"u-123"}\n'.repeat(30));

/** Both decoders' verdicts on a frame: the bytes, or 'throws'. */
function verdicts(f: Buffer): { client: string; installed: string } {
  const run = (decode: () => Buffer): string => {
    try {
      return decode().toString('hex');
    } catch {
      return 'throws';
    }
  };
  return { client: run(() => clientDecompress(f)), installed: run(() => installed(f)) };
}

test(
  'a 0x80000000 block header ends the frame for the client (and Kafka’s Java reader); the installed decoder reads on and returns more bytes',
  {
    /* fixed this session; was todo: lz4FrameBound and the C decoder take 0x80000000 as an empty stored block, the client decoder and Kafka’s KafkaLZ4BlockInputStream as the end mark: the same batch decodes to different bytes */
  },
  () => {
    const f = frame({}, [...clientBlocks(data), { data: Buffer.alloc(0), raw: true }, { data: Buffer.from('TAIL'), raw: true }]);
    assert.equal(clientDecompress(f).length, data.length);
    const v = verdicts(f);
    assert.equal(v.installed.length / 2, data.length, 'installed decoder output length');
    assert.equal(v.installed, v.client);
  },
);

test(
  'a frame with a dictionary id: the client refuses it (no dictionary), the installed decoder decodes it',
  {/* fixed this session; was todo: lz4FrameBound lets FLG bit 0 through and the C decoder decodes without the dictionary: a batch the client rejects is accepted */},
  () => {
    const f = frame({ dictId: 1234 }, clientBlocks(data));
    assert.throws(() => clientDecompress(f));
    assert.throws(() => installed(f));
  },
);

test(
  'a frame whose content size field says 0 but holds data: the client refuses it, the installed decoder decodes it',
  {/* fixed this session; was todo: the C decoder reads a content size of 0 as "unknown"; the client as a size that does not match */},
  () => {
    const f = frame({ contentSize: 0n }, clientBlocks(data));
    assert.throws(() => clientDecompress(f));
    assert.throws(() => installed(f));
  },
);

test(
  'lz4FrameBound accepts a frame whose content checksum (FLG bit 2) is cut off, so the C decoder fails on it and is off for good',
  {/* fixed this session; was todo: lz4FrameBound stops at the end mark without checking that the 4 content checksum bytes follow; it refuses every other truncation */},
  () => {
    const whole = frame({ flg: 0x64 }, clientBlocks(data), Buffer.concat([u32le(0), u32le(xxh32(data))]));
    assert.equal(Buffer.compare(installed(whole), data), 0);
    assert.throws(() => lz4FrameBound(whole.subarray(0, whole.length - 4)), Lz4FrameError);
  },
);

/** A deterministic generator, so a failing frame can be found again. */
function prng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return Math.floor((s / 2 ** 32) * n);
  };
}

test('control: valid frames of every descriptor (checksums, content size, linked blocks, block sizes, stored blocks) decode to the same bytes, within the bound', () => {
  const random = prng(2026_12_07);
  const chunk = (): Buffer => {
    const kind = random(3);
    if (kind === 0) return Buffer.alloc(1 + random(60_000), random(256));
    if (kind === 1) return Buffer.from(`{"team":${random(1000)},"n":${random(1e9)}}`.repeat(1 + random(800)));
    return Buffer.from(Array.from({ length: 1 + random(3_000) }, () => random(256)));
  };
  for (let run = 0; run < 150; run++) {
    const linked = random(2) === 1;
    const blockChecksums = random(2) === 1;
    const contentChecksum = random(2) === 1;
    const bd = [0x40, 0x50, 0x60, 0x70][random(4)] as number;
    const parts: Buffer[] = [];
    const blocks: Block[] = [];
    for (let i = 1 + random(4); i > 0; i--) {
      const c = chunk();
      if (c.length > 60_000 && bd === 0x40) continue;
      parts.push(c);
      blocks.push(random(4) === 0 ? { data: c, raw: true } : (clientBlocks(c)[0] as Block));
    }
    if (linked && parts.length > 0) {
      // A block that is one long match into the block before it: only valid in a linked frame.
      const last = parts[parts.length - 1] as Buffer;
      const back = Math.min(last.length, 1_000);
      const tail = Buffer.from('tail!');
      if (back >= 4) {
        blocks.push({ data: Buffer.concat([sequence(Buffer.alloc(0), back, back), lastLiterals(tail)]) });
        parts.push(Buffer.concat([last.subarray(last.length - back), tail]));
      }
    }
    const content = Buffer.concat(parts);
    if (content.length === 0) continue;
    const flg = 0x40 | (linked ? 0 : 0x20) | (blockChecksums ? 0x10 : 0) | (contentChecksum ? 0x04 : 0);
    const f = frame(
      { flg, bd, ...(random(2) === 1 ? { contentSize: BigInt(content.length) } : {}) },
      blocks.map((b) => (blockChecksums ? { ...b, checksum: 'good' as const } : b)),
      contentChecksum ? Buffer.concat([u32le(0), u32le(xxh32(content))]) : u32le(0),
    );
    if (blockChecksums || contentChecksum) {
      // Since the review, frames with checksums go to the client's decoder (a wrong one would leave the C decoder unusable).
      assert.throws(() => lz4FrameBound(f), /checksums/);
    } else {
      const bound = lz4FrameBound(f);
      assert.ok(bound >= content.length, `run ${run}: bound ${bound} < ${content.length}`);
    }
    assert.equal(Buffer.compare(clientDecompress(f), content), 0, `run ${run}: the client decodes it`);
    assert.equal(Buffer.compare(installed(f), content), 0, `run ${run}: the installed decoder decodes it`);
  }
  assert.equal(lz4Decoder(), 'wasm-lz4');
});

test('control: the 255x bound holds for LZ4’s densest blocks (a match grows 255 bytes per byte), linked or not', () => {
  for (const n of [1, 100, 5_000, 16_400]) {
    const block = Buffer.concat([sequence(Buffer.from('a'), 1, 4 + 15 + 255 * n + 254), lastLiterals(Buffer.from('zzzzz'))]);
    const f = frame({}, [{ data: block }]);
    const out = clientDecompress(f);
    assert.ok(out.length < 255 * block.length, `${out.length} bytes from ${block.length}`);
    assert.ok(lz4FrameBound(f) >= out.length);
    assert.equal(Buffer.compare(installed(f), out), 0);
  }
  // Linked: the second block needs no literal of its own, its match starts in the first block.
  const first = lastLiterals(Buffer.from('abcdefgh'));
  const second = Buffer.concat([sequence(Buffer.alloc(0), 1, 4 + 15 + 255 * 4_000 + 254), lastLiterals(Buffer.from('zzzzz'))]);
  const f = frame({ flg: 0x40 }, [{ data: first }, { data: second }]);
  const out = clientDecompress(f);
  assert.ok(out.length - 8 < 255 * second.length);
  assert.ok(lz4FrameBound(f) >= out.length);
  assert.equal(Buffer.compare(installed(f), out), 0);
});

test('control: bytes after the end mark (zeros, garbage, a second frame, a skippable frame) are ignored by both decoders alike', () => {
  const one = frame({}, clientBlocks(data));
  const tails = [Buffer.alloc(5), Buffer.from('garbage!'), one, Buffer.concat([u32le(0x184d2a50), u32le(4), Buffer.alloc(4)])];
  for (const tail of tails) {
    const f = Buffer.concat([one, tail]);
    assert.equal(lz4FrameBound(f), lz4FrameBound(one));
    assert.equal(Buffer.compare(installed(f), data), 0);
    assert.equal(Buffer.compare(clientDecompress(f), data), 0);
  }
});

test('control: what is not one standard frame gets the client’s verdict and leaves the C decoder on', () => {
  const one = frame({}, clientBlocks(data));
  const cases = [
    Buffer.concat([u32le(0x184d2a50), u32le(4), Buffer.alloc(4), one]), // skippable frame first
    Buffer.concat([u32le(0x184c2102), u32le(8), Buffer.from('12345678')]), // legacy frame
    Buffer.concat([one.subarray(0, 5), Buffer.from([0x30]), one.subarray(6)]), // reserved block size id
    one.subarray(0, one.length - 4), // no end mark: the client accepts it
    one.subarray(0, 20),
  ];
  for (const f of cases) assert.deepEqual(verdicts(f).installed, verdicts(f).client);
  assert.equal(lz4Decoder(), 'wasm-lz4');
});

test('control: what the client passes (DynamicBuffer.slice, in one chunk or across chunks) is a Buffer, so it reaches the C decoder', () => {
  const f = clientCompress(data);
  const chunks = [Buffer.from('head'), f.subarray(0, 30), f.subarray(30), Buffer.from('tail')];
  const across = new DynamicBuffer(chunks).slice(4, 4 + f.length);
  const inOne = new DynamicBuffer([Buffer.concat(chunks)]).slice(4, 4 + f.length);
  for (const slice of [across, inOne]) {
    assert.ok(slice instanceof Uint8Array);
    assert.equal(Buffer.compare(installed(slice), data), 0);
  }
  // A view at an odd offset of a larger buffer: the C decoder copies the view, not its whole ArrayBuffer.
  const padded = Buffer.concat([Buffer.alloc(3, 0xee), f, Buffer.alloc(5, 0xee)]);
  assert.equal(Buffer.compare(installed(padded.subarray(3, 3 + f.length)), data), 0);
});

test('control: installing concurrently wraps the client’s decoder once', async () => {
  const wrapped = compressionsAlgorithms.lz4.decompressSync;
  assert.deepEqual(await Promise.all([installLz4Decoder(), installLz4Decoder(), installLz4Decoder()]), [true, true, true]);
  assert.equal(compressionsAlgorithms.lz4.decompressSync, wrapped);
});

test('control: a match with offset 0 gives zeros in both decoders, never bytes of an earlier batch', () => {
  const secret = Buffer.from('SECRET-TENANT-42 card=4111111111111111 '.repeat(300));
  assert.equal(Buffer.compare(installed(frame({ bd: 0x40 }, clientBlocks(secret))), secret), 0);
  const f = frame({ bd: 0x40 }, [{ data: Buffer.concat([sequence(Buffer.from('abcd'), 0, 60), lastLiterals(Buffer.from('zzzzz'))]) }]);
  const v = verdicts(f);
  assert.equal(v.installed, v.client);
  assert.equal(v.installed, Buffer.concat([Buffer.from('abcd'), Buffer.alloc(60), Buffer.from('zzzzz')]).toString('hex'));
  assert.equal(lz4Decoder(), 'wasm-lz4', 'no frame in this file made the C decoder fail');
});
