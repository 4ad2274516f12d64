// One scenario of lz4-isolated.test.ts, in a fresh process: `node lz4-child.ts <scenario>` prints a JSON object.
import decompress from '@foxglove/wasm-lz4';
import { compressionsAlgorithms } from '@platformatic/kafka';
import { installLz4Decoder, lz4Decoder, lz4FrameBound } from '../../../src/source/kafka-lz4.ts';
import { clientBlocks, clientCompress, clientDecompress, frame, literalBlock, u32le } from './lz4-frames.ts';

const data = Buffer.from('{"event":"$pageview","team_id":42,"properties":{"$current_url":"https://example.com/a"}}\n'.repeat(40));
const good = clientCompress(data);

function outcome(decode: () => Buffer, expected?: Buffer): string {
  try {
    const out = decode();
    return expected === undefined ? `ok ${out.length}` : out.equals(expected) ? 'same bytes' : `other bytes (${out.length})`;
  } catch (e) {
    return `throws: ${(e as Error).message.slice(0, 80)}`;
  }
}

/** A frame's bound, or why the C decoder does not get it (the client's decoder does). */
function boundOf(f: Buffer): number | string {
  try {
    return lz4FrameBound(f);
  } catch (e) {
    return `refused: ${(e as Error).message}`;
  }
}

/** The C decoder's WebAssembly heap in MiB (its module is exposed under NODE_ENV=test). */
function heapMiB(): number {
  const module = (decompress as unknown as { __module?: { HEAPU8: Uint8Array } }).__module;
  return module === undefined ? -1 : module.HEAPU8.length >> 20;
}

/** Decodes `count` frames with the client's own decoder until it fails on a good frame: how many it took, or -1. */
function breakClient(bad: Buffer, count: number): number {
  for (let i = 1; i <= count; i++) {
    try {
      compressionsAlgorithms.lz4.decompressSync(bad);
    } catch {
      // rejected, as it should be
    }
    if (i % 50 === 0 && !outcome(() => clientDecompress(good), data).startsWith('same')) return i;
  }
  return -1;
}

const scenarios: Record<string, () => Record<string, unknown>> = {
  /** A frame every Kafka reader decodes (0x80000000 ends it for the client and for Kafka's Java reader), with a tail after it the C decoder fails on. */
  'pseudo-end-mark': () => {
    const f = frame({}, [...clientBlocks(data), { data: Buffer.alloc(0), raw: true }, { data: Buffer.alloc(24, 0xff) }]);
    const decode = compressionsAlgorithms.lz4.decompressSync;
    return { bound: boundOf(f), client: outcome(() => clientDecompress(f), data), installed: outcome(() => decode(f), data), decoder: lz4Decoder() };
  },
  /** A wrong content checksum (Kafka's broker does not check it), then more of them, then a good frame. */
  'content-checksum': () => {
    const bad = frame({ flg: 0x64 }, clientBlocks(data), Buffer.concat([u32le(0), u32le(12345)]));
    const first = outcome(() => compressionsAlgorithms.lz4.decompressSync(bad));
    const decoder = lz4Decoder();
    const brokenAfter = breakClient(bad, 1_000);
    return { first, decoder, brokenAfter, goodAfter: outcome(() => compressionsAlgorithms.lz4.decompressSync(good), data) };
  },
  /** While the C decoder is healthy: 2,000 batches that are not LZ4 frames (the client's decoder gets them), then a good frame. */
  'junk-while-healthy': () => {
    const brokenAfter = breakClient(Buffer.from('not an LZ4 frame at all'), 3_000);
    return { brokenAfter, goodAfter: outcome(() => compressionsAlgorithms.lz4.decompressSync(good), data), decoder: lz4Decoder() };
  },
  /**
   * Two valid frames of 4 MiB blocks, each compressed block holding only literals: A (256 blocks of 16,449 bytes, 4.2 MB, bound
   * 1 GiB) then B (256 blocks of 32,768 bytes, 8.4 MB, bound 1 GiB).
   */
  heap: () => {
    const make = (size: number, fill: number): Buffer =>
      frame(
        {},
        Array.from({ length: 256 }, () => ({ data: literalBlock(size, fill) })),
      );
    const a = make(16_449, 0x41);
    const b = make(32_768, 0x42);
    const heapBefore = heapMiB();
    const decode = compressionsAlgorithms.lz4.decompressSync;
    const resultA = outcome(() => decode(a), clientDecompress(a));
    const heapAfterA = heapMiB();
    const resultB = outcome(() => decode(b), clientDecompress(b));
    return {
      sizes: [a.length, b.length],
      bounds: [boundOf(a), boundOf(b)],
      heapBefore,
      heapAfterA,
      resultA,
      resultB,
      decoder: lz4Decoder(),
      rssMiB: process.memoryUsage().rss >> 20,
    };
  },
};

const scenario = scenarios[process.argv[2] ?? ''];
if (scenario === undefined) throw new Error(`unknown scenario ${process.argv[2]}`);
await installLz4Decoder();
process.stdout.write(JSON.stringify(scenario()));
