// Owns how the Kafka client decompresses LZ4 record batches. The client's own decoder (LZ4 in
// WebAssembly, @platformatic/wasm-utils) runs at ~0.6 GB/s here and is the largest single cost of a
// pass-through drain; LZ4's reference C decoder compiled to WebAssembly (@foxglove/wasm-lz4) runs at
// ~1.0 GB/s on the same frames (docs/benchmarks.md, "Session 11"). The client looks its codecs up
// in a table it exports (`compressionsAlgorithms`); this module puts the faster decoder in that table
// once per process. Compression (the producers') stays the client's.
import decompress from '@foxglove/wasm-lz4';
import { compressionsAlgorithms } from '@platformatic/kafka';

const FRAME_MAGIC = 0x184d2204;
/** Maximum block size by the frame's BD byte (bits 4–6); 0–3 are reserved. */
const BLOCK_MAX_SIZE = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20] as const;
const UNCOMPRESSED_BLOCK = 0x80000000;
/**
 * LZ4 writes at least one byte per 255 it restores (a match's length grows by 255 per extra byte), so
 * a small hostile frame cannot make the decoder reserve a block's maximum for every byte it holds.
 */
const MAX_RATIO = 255;
/** A frame that says it holds more is refused: the decoder's memory is 32-bit, and no record batch is that large. */
const MAX_OUTPUT = 1 << 30;

export class Lz4FrameError extends Error {
  readonly code = 'INSERTER_LZ4_FRAME';
}

/**
 * The most bytes an LZ4 frame can decompress to, read from its headers without decompressing: each
 * compressed block at most the frame's maximum block size and 255 times its own size, an
 * uncompressed block its own size.
 * Throws Lz4FrameError for a buffer that is not a whole frame.
 */
export function lz4FrameBound(frame: Uint8Array): number {
  if (frame.length < 7 || readU32(frame, 0) !== FRAME_MAGIC) throw new Lz4FrameError('not an LZ4 frame');
  const flags = frame[4] as number;
  const blockMax = BLOCK_MAX_SIZE[((frame[5] as number) >> 4) & 7] ?? 0;
  if (blockMax === 0) throw new Lz4FrameError('LZ4 frame with a reserved block size');
  // Header: magic, FLG, BD, [content size: 8], [dictionary id: 4], header checksum.
  let at = 6 + ((flags & 0x08) !== 0 ? 8 : 0) + ((flags & 0x01) !== 0 ? 4 : 0) + 1;
  const blockChecksum = (flags & 0x10) !== 0 ? 4 : 0;
  let bound = 0;
  for (;;) {
    if (at + 4 > frame.length) throw new Lz4FrameError('truncated LZ4 frame');
    const word = readU32(frame, at);
    at += 4;
    if (word === 0) return bound; // end mark
    const size = (word & ~UNCOMPRESSED_BLOCK) >>> 0;
    bound += (word & UNCOMPRESSED_BLOCK) !== 0 ? size : Math.min(blockMax, size * MAX_RATIO);
    if (bound > MAX_OUTPUT) throw new Lz4FrameError('LZ4 frame of more than 1 GiB');
    at += size + blockChecksum;
  }
}

/** Decompresses one LZ4 frame (as Kafka compresses a record batch) with the C decoder. */
export function decompressLz4Frame(frame: Uint8Array): Buffer {
  return decompress(frame, lz4FrameBound(frame));
}

let installed: Promise<boolean> | undefined;
let decoder: 'wasm-lz4' | 'client' = 'client';

/** Which decoder the Kafka client's LZ4 codec uses now. */
export function lz4Decoder(): 'wasm-lz4' | 'client' {
  return decoder;
}

/**
 * Makes the Kafka client decompress LZ4 record batches with `decompressLz4Frame`, once per process
 * (resolves true), or leaves its own decoder when its codec table is not what this was written
 * against or the decoder's WebAssembly did not load (resolves false).
 *
 * The client's decoder stays behind it: for what is not a Buffer holding one standard frame, and for
 * good once the C decoder has failed on a frame — it keeps one decompression context, which a failed
 * frame leaves unusable for every later one (@foxglove/wasm-lz4 1.0.2). That frame then gets the
 * client's verdict.
 */
export function installLz4Decoder(): Promise<boolean> {
  installed ??= decompress.isLoaded.then(
    () => {
      const codec = (compressionsAlgorithms as Record<string, { decompressSync?: unknown } | undefined>).lz4;
      const own = codec?.decompressSync;
      if (codec === undefined || typeof own !== 'function') return false;
      const fallback = own as (data: unknown) => Buffer;
      decoder = 'wasm-lz4';
      codec.decompressSync = (data: unknown): Buffer => {
        if (decoder === 'wasm-lz4' && data instanceof Uint8Array) {
          let bound: number;
          try {
            bound = lz4FrameBound(data);
          } catch {
            return fallback(data); // not one standard frame: the client decides
          }
          try {
            return decompress(data, bound);
          } catch {
            decoder = 'client';
          }
        }
        return fallback(data);
      };
      return true;
    },
    () => false,
  ); // the module did not load: the client's own decoder stays
  return installed;
}

function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] as number) | ((bytes[at + 1] as number) << 8) | ((bytes[at + 2] as number) << 16) | ((bytes[at + 3] as number) << 24)) >>> 0;
}
