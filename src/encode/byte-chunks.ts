// Owns the in-memory body of a batch: rows appended into large reusable blocks instead of one
// Buffer per row, so a 100k-row batch is a handful of allocations. Row boundaries are kept so any
// contiguous sub-range of rows (for bisection) can be sent without copying.

export interface ByteSink {
  writeUtf8(text: string): void;
  writeBytes(bytes: Buffer): void;
}

const BLOCK_SIZE = 256 * 1024;

export class ByteChunks implements ByteSink {
  readonly #blocks: Buffer[] = [];
  #current: Buffer | undefined;
  #used = 0;
  #length = 0;

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

  writeBytes(bytes: Buffer): void {
    if (bytes.length > BLOCK_SIZE / 4) {
      // Large values (session recordings) are referenced, not copied.
      this.#seal();
      this.#blocks.push(bytes);
      this.#length += bytes.length;
      return;
    }
    this.#ensure(bytes.length);
    bytes.copy(this.#current as Buffer, this.#used);
    this.#used += bytes.length;
    this.#length += bytes.length;
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

  #ensure(bytes: number): void {
    if (this.#current !== undefined && this.#used + bytes <= this.#current.length) return;
    this.#seal();
    this.#current = Buffer.allocUnsafe(Math.max(BLOCK_SIZE, bytes));
    this.#used = 0;
  }

  #seal(): void {
    if (this.#current !== undefined && this.#used > 0) this.#blocks.push(this.#current.subarray(0, this.#used));
    this.#current = undefined;
    this.#used = 0;
  }
}
