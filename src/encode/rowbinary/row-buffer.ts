// Owns the scratch a typed row is built in before it joins the batch body: a growable Buffer with
// little-endian primitive writes (RowBinary's encodings). A row is built whole here first, so a value
// rejected halfway through leaves the batch body untouched; then it is copied in one move. Reused
// across rows: no allocation per row once it has grown to the largest row.

const INITIAL = 64 * 1024;
/** A scratch grown past this by one huge row is dropped again after it. */
const KEEP_MAX = 4 * 1024 * 1024;

export class RowBuffer {
  buf: Buffer = Buffer.allocUnsafe(INITIAL);
  pos = 0;

  reset(): void {
    if (this.buf.length > KEEP_MAX) this.buf = Buffer.allocUnsafe(INITIAL);
    this.pos = 0;
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(value: number): void {
    this.ensure(1);
    this.buf[this.pos++] = value;
  }

  u16(value: number): void {
    this.ensure(2);
    this.buf.writeUInt16LE(value & 0xffff, this.pos);
    this.pos += 2;
  }

  u32(value: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(value >>> 0, this.pos);
    this.pos += 4;
  }

  /** A 64-bit integer given as its low and high 32-bit halves (two's complement). */
  u64(lo: number, hi: number): void {
    this.ensure(8);
    this.buf.writeUInt32LE(lo >>> 0, this.pos);
    this.buf.writeUInt32LE(hi >>> 0, this.pos + 4);
    this.pos += 8;
  }

  /** A safe integer as 64 bits (two's complement). */
  i64(value: number): void {
    this.u64(value >>> 0, Math.floor(value / 4294967296) >>> 0);
  }

  f32(value: number): void {
    this.ensure(4);
    this.buf.writeFloatLE(value, this.pos);
    this.pos += 4;
  }

  f64(value: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  /** LEB128 unsigned varint (RowBinary's string and array lengths). */
  varUInt(value: number): void {
    this.ensure(10);
    let v = value;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  /** Bytes [start, end) of `source`. */
  bytes(source: Uint8Array, start: number, end: number): void {
    const n = end - start;
    this.ensure(n);
    // Short runs byte by byte; longer ones with Buffer.copy, which takes a range without making a
    // view object (subarray would, per call).
    if (n <= 32) {
      const buf = this.buf;
      for (let k = 0; k < n; k++) buf[this.pos + k] = source[start + k] as number;
    } else if (Buffer.isBuffer(source)) source.copy(this.buf, this.pos, start, end);
    else this.buf.set(source.subarray(start, end), this.pos);
    this.pos += n;
  }

  /** A RowBinary String: varint length, then the bytes [start, end) of `source`. */
  string(source: Uint8Array, start: number, end: number): void {
    this.varUInt(end - start);
    this.bytes(source, start, end);
  }

  /** A RowBinary String from JavaScript text (UTF-8). */
  text(value: string): void {
    const max = value.length * 3;
    this.ensure(max + 10);
    // Write after the longest possible length prefix, then move if the prefix is shorter.
    const lengthAt = this.pos;
    const prefix = varUIntSize(max);
    const written = this.buf.write(value, lengthAt + prefix, 'utf8');
    const actual = varUIntSize(written);
    if (actual !== prefix) this.buf.copy(this.buf, lengthAt + actual, lengthAt + prefix, lengthAt + prefix + written);
    this.varUInt(written);
    this.pos = lengthAt + actual + written;
  }

  /** Inserts `count` bytes at `at`, shifting what follows (for a length known only afterwards). */
  insertGap(at: number, count: number): void {
    this.ensure(count);
    this.buf.copy(this.buf, at + count, at, this.pos);
    this.pos += count;
  }
}

export function varUIntSize(value: number): number {
  let n = 1;
  let v = value;
  while (v >= 0x80) {
    n++;
    v = Math.floor(v / 128);
  }
  return n;
}

/** Writes the LEB128 varint of `value` at `at` (exactly varUIntSize(value) bytes). */
export function putVarUInt(buf: Buffer, at: number, value: number): void {
  let i = at;
  let v = value;
  while (v >= 0x80) {
    buf[i++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[i] = v;
}
