// Hand-made LZ4 frames for the review of src/source/kafka-lz4.ts, and a way to run a scenario in a
// fresh process (the C decoder keeps one decompression context per process, which a failed frame
// leaves unusable, so every scenario that makes it fail gets its own process).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { compressionsAlgorithms } from '@platformatic/kafka';

/** The client's own codec, as it was before any install replaced its decoder (take it at import). */
export const clientCompress = compressionsAlgorithms.lz4.compressSync as (data: Buffer) => Buffer;
export const clientDecompress = compressionsAlgorithms.lz4.decompressSync as (data: Buffer) => Buffer;

const P1 = 2654435761;
const P2 = 2246822519;
const P3 = 3266489917;
const P4 = 668265263;
const P5 = 374761393;
const rotl = (x: number, r: number): number => ((x << r) | (x >>> (32 - r))) >>> 0;
const mul = (a: number, b: number): number => Math.imul(a, b) >>> 0;

/** xxHash32 (seed 0 unless given), as LZ4 frames use it for header, block and content checksums. */
export function xxh32(b: Uint8Array, seed = 0): number {
  const u32 = (k: number): number => ((b[k] as number) | ((b[k + 1] as number) << 8) | ((b[k + 2] as number) << 16) | ((b[k + 3] as number) << 24)) >>> 0;
  let i = 0;
  let h: number;
  if (b.length >= 16) {
    const round = (v: number, x: number): number => mul(rotl((v + mul(x, P2)) >>> 0, 13), P1);
    let v1 = (seed + P1 + P2) >>> 0;
    let v2 = (seed + P2) >>> 0;
    let v3 = seed >>> 0;
    let v4 = (seed - P1) >>> 0;
    for (; i + 16 <= b.length; i += 16) {
      v1 = round(v1, u32(i));
      v2 = round(v2, u32(i + 4));
      v3 = round(v3, u32(i + 8));
      v4 = round(v4, u32(i + 12));
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) >>> 0;
  } else {
    h = (seed + P5) >>> 0;
  }
  h = (h + b.length) >>> 0;
  for (; i + 4 <= b.length; i += 4) h = mul(rotl((h + mul(u32(i), P3)) >>> 0, 17), P4);
  for (; i < b.length; i++) h = mul(rotl((h + mul(b[i] as number, P5)) >>> 0, 11), P1);
  h = mul(h ^ (h >>> 15), P2);
  h = mul(h ^ (h >>> 13), P3);
  return (h ^ (h >>> 16)) >>> 0;
}

export function u32le(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

/** FLG 0x60: version 01, independent blocks; BD 0x70: 4 MiB blocks. The header checksum is computed. */
export interface Header {
  flg?: number;
  bd?: number;
  contentSize?: bigint;
  dictId?: number;
}

export function header(h: Header = {}): Buffer {
  let flg = h.flg ?? 0x60;
  if (h.contentSize !== undefined) flg |= 0x08;
  if (h.dictId !== undefined) flg |= 0x01;
  const parts: Buffer[] = [Buffer.from([flg, h.bd ?? 0x70])];
  if (h.contentSize !== undefined) {
    const c = Buffer.alloc(8);
    c.writeBigUInt64LE(h.contentSize);
    parts.push(c);
  }
  if (h.dictId !== undefined) parts.push(u32le(h.dictId));
  const descriptor = Buffer.concat(parts);
  return Buffer.concat([u32le(0x184d2204), descriptor, Buffer.from([(xxh32(descriptor) >>> 8) & 0xff])]);
}

export interface Block {
  data: Buffer;
  raw?: boolean;
  /** Written after the block (set FLG bit 4 yourself): 'good' for the right one. */
  checksum?: number | 'good';
}

/** A frame: header, blocks, then `end` (the end mark unless given: a content checksum follows it when FLG bit 2 is set). */
export function frame(h: Header, blocks: Block[], end: Buffer = u32le(0)): Buffer {
  const parts = [header(h)];
  for (const b of blocks) {
    parts.push(u32le(b.data.length | (b.raw === true ? 0x80000000 : 0)), b.data);
    if (b.checksum !== undefined) parts.push(u32le(b.checksum === 'good' ? xxh32(b.data) : b.checksum));
  }
  parts.push(end);
  return Buffer.concat(parts);
}

/** The blocks of the frame the client's compressor makes of `data` (independent, no checksums). */
export function clientBlocks(data: Buffer): Block[] {
  const f = clientCompress(data);
  const blocks: Block[] = [];
  for (let at = 7; ;) {
    const word = f.readUInt32LE(at);
    at += 4;
    if (word === 0) return blocks;
    const size = word & 0x7fffffff;
    blocks.push({ data: f.subarray(at, at + size), raw: (word & 0x80000000) !== 0 });
    at += size;
  }
}

function lengthBytes(v: number): number[] {
  if (v < 15) return [];
  const out: number[] = [];
  for (v -= 15; v >= 255; v -= 255) out.push(255);
  out.push(v);
  return out;
}

/** One LZ4 sequence: literals, then a match of `matchLength` (>= 4) bytes `offset` back. */
export function sequence(literals: Buffer, offset: number, matchLength: number): Buffer {
  const token = (Math.min(15, literals.length) << 4) | Math.min(15, matchLength - 4);
  return Buffer.concat([Buffer.from([token, ...lengthBytes(literals.length)]), literals, Buffer.from([offset & 0xff, offset >> 8, ...lengthBytes(matchLength - 4)])]);
}

/** The last sequence of a block: literals only. */
export function lastLiterals(literals: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(Math.min(15, literals.length) << 4) | 0, ...lengthBytes(literals.length)]), literals]);
}

/** A valid compressed block of exactly `size` bytes holding only literals (`fill`). */
export function literalBlock(size: number, fill: number): Buffer {
  for (let ext = 1; ext < size; ext++) {
    const block = lastLiterals(Buffer.alloc(size - 1 - ext, fill));
    if (block.length === size) return block;
  }
  throw new Error(`no literal block of ${size} bytes`);
}

export interface ChildResult {
  [key: string]: unknown;
}

/** Runs `lz4-child.ts <scenario>` in a fresh Node process (NODE_ENV=test exposes the C decoder's heap). */
export function inFreshProcess(scenario: string): ChildResult {
  const child = fileURLToPath(new URL('./lz4-child.ts', import.meta.url));
  const run = spawnSync(process.execPath, [child, scenario], { encoding: 'utf8', env: { ...process.env, NODE_ENV: 'test' }, timeout: 60_000 });
  if (run.status !== 0) throw new Error(`child ${scenario} exited ${run.status} (${run.signal}): ${run.stderr.slice(-2000)}`);
  return JSON.parse(run.stdout) as ChildResult;
}
