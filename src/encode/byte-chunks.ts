// Owns the in-memory body of a batch: rows appended into large reusable blocks instead of one
// Buffer per row, so a 100k-row batch is a handful of allocations. Row boundaries are kept so any
// contiguous sub-range of rows (for bisection) can be sent without copying. A body built on a
// BlockPool takes its blocks from it and gives them back on release (block-pool.ts).
import { BLOCK_SIZE, type BlockPool } from './block-pool.ts';

export interface ByteSink {
  writeUtf8(text: string): void;
  /**
   * Appends `bytes` from `start` (default 0) to its end; large ones are referenced, not copied: the
   * caller must not reuse them.
   */
  writeBytes(bytes: Buffer, start?: number): void;
  /** Appends a non-negative safe integer's decimal digits, zero-padded to `minDigits` (default 1). */
  writeDecimal(value: number, minDigits?: number): void;
  /**
   * Appends a copy of bytes [start, end) of `bytes`, which the caller may reuse at once (a typed
   * row built in a scratch). Optional: without it, writers copy and call writeBytes.
   */
  writeRange?(bytes: Buffer, start: number, end: number): void;
}

/** Writes up to this many bytes with a loop instead of a copy call, as RowBuffer.bytes does for short runs. */
const SHORT_COPY = 32;

export class ByteChunks implements ByteSink {
  readonly #blocks: Buffer[] = [];
  readonly #pool: BlockPool | undefined;
  /** The whole blocks taken from the pool (never a referenced value, a slice or an oversized block). */
  readonly #taken: Buffer[] = [];
  #current: Buffer | undefined;
  #used = 0;
  #length = 0;
  #released = false;

  /** Without a pool, blocks are allocated and left to the collector. */
  constructor(pool?: BlockPool) {
    this.#pool = pool;
  }

  get length(): number {
    return this.#length;
  }

  writeUtf8(text: string): void {
    // Metadata prefixes are short; utf8 length is at most 3 bytes per UTF-16 unit.
    const max = text.length * 3;
    if (max > BLOCK_SIZE) {
      this.writeBytes(Buffer.from(text, 'utf8'));
      return;
    }
    this.#ensure(max);
    const block = this.#current as Buffer;
    const written = block.write(text, this.#used, 'utf8');
    this.#used += written;
    this.#length += written;
  }

  writeBytes(bytes: Buffer, start = 0): void {
    const n = bytes.length - start;
    if (n <= 0) return;
    if (n > BLOCK_SIZE / 4) {
      // Large values (session recordings) are referenced, not copied.
      this.#seal();
      this.#blocks.push(start === 0 ? bytes : bytes.subarray(start));
      this.#length += n;
      return;
    }
    this.#ensure(n);
    const block = this.#current as Buffer;
    if (n <= SHORT_COPY) {
      // A metadata key or a comma: a loop is cheaper than a native copy call for a few bytes.
      for (let i = 0; i < n; i++) block[this.#used + i] = bytes[start + i] as number;
    } else bytes.copy(block, this.#used, start);
    this.#used += n;
    this.#length += n;
  }

  writeDecimal(value: number, minDigits = 1): void {
    let digits = 1;
    for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    if (digits < minDigits) digits = minDigits;
    this.#ensure(digits);
    const block = this.#current as Buffer;
    let rest = value;
    for (let at = this.#used + digits - 1; at >= this.#used; at--) {
      block[at] = 0x30 + (rest % 10);
      rest = Math.floor(rest / 10);
    }
    this.#used += digits;
    this.#length += digits;
  }

  writeRange(bytes: Buffer, start: number, end: number): void {
    const n = end - start;
    if (n <= 0) return;
    if (n > BLOCK_SIZE) {
      // One row larger than a block gets a block of its own.
      this.#seal();
      const copy = Buffer.allocUnsafe(n);
      bytes.copy(copy, 0, start, end);
      this.#blocks.push(copy);
      this.#length += n;
      return;
    }
    this.#ensure(n);
    bytes.copy(this.#current as Buffer, this.#used, start, end);
    this.#used += n;
    this.#length += n;
  }

  writeUInt8(value: number): void {
    this.#ensure(1);
    (this.#current as Buffer)[this.#used++] = value & 0xff;
    this.#length += 1;
  }

  writeVarUInt(value: number): void {
    this.#ensure(10);
    const block = this.#current as Buffer;
    let v = value;
    const start = this.#used;
    while (v >= 0x80) {
      block[this.#used++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    block[this.#used++] = v;
    this.#length += this.#used - start;
  }

  writeUInt32LE(value: number): void {
    this.#ensure(4);
    (this.#current as Buffer).writeUInt32LE(value >>> 0, this.#used);
    this.#used += 4;
    this.#length += 4;
  }

  writeInt64LE(value: number): void {
    this.#ensure(8);
    const block = this.#current as Buffer;
    block.writeUInt32LE(value >>> 0, this.#used);
    block.writeUInt32LE(Math.floor(value / 4294967296) >>> 0, this.#used + 4);
    this.#used += 8;
    this.#length += 8;
  }

  writeFloat64LE(value: number): void {
    this.#ensure(8);
    (this.#current as Buffer).writeDoubleLE(value, this.#used);
    this.#used += 8;
    this.#length += 8;
  }

  /** The bytes in [start, end) as a list of slices (no copy). */
  slice(start: number, end: number): Buffer[] {
    this.#seal();
    const out: Buffer[] = [];
    let position = 0;
    for (const block of this.#blocks) {
      const blockEnd = position + block.length;
      if (blockEnd > start && position < end) {
        out.push(block.subarray(Math.max(0, start - position), Math.min(block.length, end - position)));
      }
      position = blockEnd;
      if (position >= end) break;
    }
    return out;
  }

  /**
   * Gives the pool's blocks back: the body and every slice of it must not be read or written again
   * (its blocks go to other bodies). Referenced values are not the body's and are never given.
   * Idempotent; a body without a pool only forgets its blocks.
   */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#current = undefined;
    this.#used = 0;
    this.#length = 0;
    this.#blocks.length = 0;
    this.#pool?.give(this.#taken);
    this.#taken.length = 0;
  }

  #ensure(bytes: number): void {
    if (this.#current !== undefined && this.#used + bytes <= this.#current.length) return;
    this.#seal();
    if (this.#pool !== undefined && bytes <= BLOCK_SIZE) {
      this.#current = this.#pool.take();
      this.#taken.push(this.#current);
    } else {
      this.#current = Buffer.allocUnsafe(Math.max(BLOCK_SIZE, bytes));
    }
    this.#used = 0;
  }

  /** Ends the current block (every block change, large value and slice passes here). */
  #seal(): void {
    if (this.#released) throw new Error('ByteChunks: a released body was used again');
    if (this.#current !== undefined && this.#used > 0) this.#blocks.push(this.#current.subarray(0, this.#used));
    this.#current = undefined;
    this.#used = 0;
  }
}
