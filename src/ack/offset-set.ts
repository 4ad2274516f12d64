// Owns a set of source offsets kept as sorted runs [start, end), and its compact wire form. The
// ledger names exactly the records an intent covers, and which records of a route are resolved,
// with these sets: a batch of one lane is a few runs (the lane's rows interleave with other lanes'
// in the partition), and a route's resolved records above the committed position are mostly one run
// with holes where records are still unresolved. Encoded as base64 of unsigned LEB128 varints:
// first start, then (length, gap to the next start)…, so 100k scattered offsets take ~2–3 bytes each.

export class OffsetSet {
  /** Run starts (inclusive) and ends (exclusive), sorted, non-overlapping, non-adjacent. */
  readonly #starts: number[] = [];
  readonly #ends: number[] = [];
  #count = 0;

  /** Builds a set from offsets in ascending order (the order a sorted batch holds them). */
  static fromSorted(offsets: Iterable<bigint>): OffsetSet {
    const set = new OffsetSet();
    for (const offset of offsets) set.add(offset);
    return set;
  }

  /** The offsets of records in ascending order (a sorted batch's), without an array of them. */
  static fromRecords(records: ReadonlyArray<{ readonly offset: bigint }>): OffsetSet {
    const set = new OffsetSet();
    for (let i = 0; i < records.length; i++) set.add((records[i] as { readonly offset: bigint }).offset);
    return set;
  }

  static decode(text: string | undefined): OffsetSet {
    const set = new OffsetSet();
    if (text === undefined || text === '') return set;
    const bytes = Buffer.from(text, 'base64');
    const cursor = { at: 0 };
    let start = readVarint(bytes, cursor);
    while (cursor.at < bytes.length) {
      const length = readVarint(bytes, cursor);
      set.#starts.push(start);
      set.#ends.push(start + length);
      set.#count += length;
      if (cursor.at >= bytes.length) break;
      start = start + length + readVarint(bytes, cursor);
    }
    return set;
  }

  encode(): string {
    const bytes: number[] = [];
    for (let i = 0; i < this.#starts.length; i++) {
      const start = this.#starts[i] as number;
      writeVarint(bytes, i === 0 ? start : start - (this.#ends[i - 1] as number));
      writeVarint(bytes, (this.#ends[i] as number) - start);
    }
    return Buffer.from(bytes).toString('base64');
  }

  /** Number of offsets in the set. */
  get size(): number {
    return this.#count;
  }

  get runs(): number {
    return this.#starts.length;
  }

  /** Lowest offset, or -1 when empty. */
  get first(): bigint {
    return this.#starts.length === 0 ? -1n : BigInt(this.#starts[0] as number);
  }

  /** Highest offset, or -1 when empty. */
  get last(): bigint {
    return this.#ends.length === 0 ? -1n : BigInt((this.#ends[this.#ends.length - 1] as number) - 1);
  }

  has(offset: bigint): boolean {
    const n = this.#starts.length;
    if (n === 0) return false;
    const x = Number(offset);
    if (x >= (this.#ends[n - 1] as number) || x < (this.#starts[0] as number)) return false;
    const i = this.#runAtOrBefore(x);
    return i >= 0 && x < (this.#ends[i] as number);
  }

  add(offset: bigint): void {
    const x = Number(offset);
    if (!Number.isSafeInteger(x) || x < 0) throw new RangeError(`offset ${offset} cannot be tracked`);
    const n = this.#starts.length;
    // The common case: appending in ascending order.
    if (n === 0 || x > (this.#ends[n - 1] as number)) {
      this.#starts.push(x);
      this.#ends.push(x + 1);
      this.#count++;
      return;
    }
    if (x === this.#ends[n - 1]) {
      this.#ends[n - 1] = x + 1;
      this.#count++;
      return;
    }
    const i = this.#runAtOrBefore(x);
    if (i >= 0 && x < (this.#ends[i] as number)) return; // present
    this.#count++;
    const joinsPrevious = i >= 0 && this.#ends[i] === x;
    const joinsNext = i + 1 < n && this.#starts[i + 1] === x + 1;
    if (joinsPrevious && joinsNext) {
      this.#ends[i] = this.#ends[i + 1] as number;
      this.#starts.splice(i + 1, 1);
      this.#ends.splice(i + 1, 1);
    } else if (joinsPrevious) {
      this.#ends[i] = x + 1;
    } else if (joinsNext) {
      this.#starts[i + 1] = x;
    } else {
      this.#starts.splice(i + 1, 0, x);
      this.#ends.splice(i + 1, 0, x + 1);
    }
  }

  addAll(other: OffsetSet): void {
    for (let i = 0; i < other.#starts.length; i++) this.#addRun(other.#starts[i] as number, other.#ends[i] as number);
  }

  /** Adds [start, end), merging every run it overlaps or touches. */
  #addRun(start: number, end: number): void {
    // First run whose end reaches start, last run whose start is at or before end.
    let first = this.#runAtOrBefore(start);
    if (first < 0 || (this.#ends[first] as number) < start) first++;
    const last = this.#runAtOrBefore(end);
    if (first > last) {
      this.#starts.splice(first, 0, start);
      this.#ends.splice(first, 0, end);
      this.#count += end - start;
      return;
    }
    const mergedStart = Math.min(start, this.#starts[first] as number);
    const mergedEnd = Math.max(end, this.#ends[last] as number);
    let covered = 0;
    for (let i = first; i <= last; i++) covered += (this.#ends[i] as number) - (this.#starts[i] as number);
    this.#starts.splice(first, last - first + 1, mergedStart);
    this.#ends.splice(first, last - first + 1, mergedEnd);
    this.#count += mergedEnd - mergedStart - covered;
  }

  /** Forgets every offset below `offset`. Returns whether anything was removed. */
  removeBelow(offset: bigint): boolean {
    const x = Number(offset);
    let drop = 0;
    let removed = 0;
    while (drop < this.#starts.length && (this.#ends[drop] as number) <= x) {
      removed += (this.#ends[drop] as number) - (this.#starts[drop] as number);
      drop++;
    }
    this.#starts.splice(0, drop);
    this.#ends.splice(0, drop);
    if (this.#starts.length > 0 && (this.#starts[0] as number) < x) {
      removed += x - (this.#starts[0] as number);
      this.#starts[0] = x;
    }
    this.#count -= removed;
    return removed > 0;
  }

  *[Symbol.iterator](): Iterator<bigint> {
    for (let i = 0; i < this.#starts.length; i++) {
      for (let x = this.#starts[i] as number; x < (this.#ends[i] as number); x++) yield BigInt(x);
    }
  }

  /** Index of the last run starting at or before x, or -1. */
  #runAtOrBefore(x: number): number {
    let lo = 0;
    let hi = this.#starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#starts[mid] as number) <= x) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }
}

function writeVarint(out: number[], value: number): void {
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

function readVarint(bytes: Buffer, cursor: { at: number }): number {
  let value = 0;
  let scale = 1;
  for (;;) {
    const byte = bytes[cursor.at++];
    if (byte === undefined) throw new RangeError('truncated offset set');
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return value;
    scale *= 0x80;
  }
}
