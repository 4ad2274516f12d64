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
/**
 * A frame that may hold more goes to the client's decoder: the C decoder reserves the bound in its
 * WebAssembly heap, which never shrinks, and a Kafka record batch is rarely a tenth of this.
 */
const MAX_OUTPUT = 64 << 20;

/** A frame the C decoder must not get; never leaves this module's codec (the client's decoder takes the frame). */
export class Lz4FrameError extends Error {}

/**
 * The most bytes an LZ4 frame can decompress to, read from its headers without decompressing: each
 * compressed block at most the frame's maximum block size and 255 times its own size, an
 * uncompressed block its own size. Throws Lz4FrameError for what the C decoder must not get: a
 * buffer that is not one whole frame, and the frames it reads otherwise than Kafka's readers and
 * the client's decoder do (a dictionary id, a content size of 0, an empty stored block, which
 * they take for the end mark: review 2026-12-07c), frames with checksums (Kafka's producers write
 * none; a wrong one would leave the C decoder unusable) and frames that may hold more than 64 MiB.
 * The client's decoder gives those their verdict.
 */
export function lz4FrameBound(frame: Uint8Array): number {
  if (frame.length < 7 || readU32(frame, 0) !== FRAME_MAGIC) throw new Lz4FrameError('not an LZ4 frame');
  const flags = frame[4] as number;
  const blockMax = BLOCK_MAX_SIZE[((frame[5] as number) >> 4) & 7] ?? 0;
  if (blockMax === 0) throw new Lz4FrameError('LZ4 frame with a reserved block size');
  if ((flags & 0x01) !== 0) throw new Lz4FrameError('LZ4 frame with a dictionary id');
  // A wrong checksum would leave the C decoder's one context unusable; Kafka's producers write none.
  if ((flags & 0x14) !== 0) throw new Lz4FrameError('LZ4 frame with checksums');
  const contentSize = (flags & 0x08) !== 0;
  if (contentSize && frame.length >= 14 && readU32(frame, 6) === 0 && readU32(frame, 10) === 0) throw new Lz4FrameError('LZ4 frame with a content size of 0');
  // Header: magic, FLG, BD, [content size: 8], header checksum.
  let at = 6 + (contentSize ? 8 : 0) + 1;
  let bound = 0;
  for (;;) {
    if (at + 4 > frame.length) throw new Lz4FrameError('truncated LZ4 frame');
    const word = readU32(frame, at);
    at += 4;
    if (word === 0) return bound; // end mark
    if (word === UNCOMPRESSED_BLOCK) throw new Lz4FrameError('LZ4 frame with an empty stored block');
    const size = (word & ~UNCOMPRESSED_BLOCK) >>> 0;
    bound += (word & UNCOMPRESSED_BLOCK) !== 0 ? size : Math.min(blockMax, size * MAX_RATIO);
    if (bound > MAX_OUTPUT) throw new Lz4FrameError('LZ4 frame that may hold more than 64 MiB');
    at += size;
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
 * client's verdict, and `onFallback` (of the first call) is told once.
 */
export function installLz4Decoder(onFallback?: (error: unknown) => void): Promise<boolean> {
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
          } catch (error) {
            decoder = 'client';
            onFallback?.(error);
          }
        }
        return fallback(data);
      };
      return true;
    },
    () => false, // the module did not load: the client's own decoder stays
  );
  return installed;
}

function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] as number) | ((bytes[at + 1] as number) << 8) | ((bytes[at + 2] as number) << 16) | ((bytes[at + 3] as number) << 24)) >>> 0;
}
