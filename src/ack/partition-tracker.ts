// Owns the commit watermark of one partition: the lowest position below which every record is
// resolved (in its warehouse, in the dead-letter topic, or deliberately skipped). Records are
// grouped in arrival order into small chunks with a pending count, so tracking costs O(1) per
// record and batches resolve in any order. The watermark never passes an unresolved record.

export class AckChunk {
  /** Offset of the last record in this chunk (inclusive). */
  lastOffset = -1n;
  pending = 0;
  size = 0;
}

const CHUNK_RECORDS = 512;

export class PartitionTracker {
  readonly #chunks: AckChunk[] = [];
  #head = 0;
  #committable: bigint;
  /** Offset of the last record tracked (kept instead of the next one: no BigInt made per record). */
  #last: bigint | undefined;
  #epoch = -1;
  #start: bigint;
  /** The next record starts a new chunk (cut()). */
  #cut = false;

  constructor(start?: bigint) {
    this.#committable = start ?? -1n;
    this.#start = this.#committable;
  }

  /**
   * The position reading began at (the first record tracked; -1 before any): committing it would
   * say nothing this tracker resolved, and could move the group's position back under a newer
   * owner's (committer.ts).
   */
  get start(): bigint {
    return this.#start;
  }

  /** Offset expected next; records below it were seen already (a re-delivery after a rejoin). */
  get nextOffset(): bigint | undefined {
    return this.#last === undefined ? undefined : this.#last + 1n;
  }

  /** Whether a record at `offset` was tracked already (it is below `nextOffset`). */
  seen(offset: bigint): boolean {
    return this.#last !== undefined && offset <= this.#last;
  }

  get epoch(): number {
    return this.#epoch;
  }

  /** Registers a record as seen and returns its chunk; call `hold(chunk)` for each unresolved part. */
  track(offset: bigint, epoch: number): AckChunk {
    if (this.#last === undefined && this.#committable < 0n) this.#committable = this.#start = offset;
    this.#last = offset;
    this.#epoch = epoch;
    let chunk = this.#chunks[this.#chunks.length - 1];
    if (chunk === undefined || chunk.size >= CHUNK_RECORDS || this.#chunks.length === this.#head || this.#cut) {
      chunk = new AckChunk();
      this.#chunks.push(chunk);
      this.#cut = false;
    }
    chunk.lastOffset = offset;
    chunk.size++;
    return chunk;
  }

  /**
   * The next record starts a new chunk. Called when a batch is taken for delivery: the records read
   * before it can then resolve apart from those read after it, so a partition whose open batch never
   * empties (a trickle of records) moves its position batch by batch, not every 512 records.
   */
  cut(): void {
    this.#cut = true;
  }

  /**
   * The position to commit: just past the newest resolved prefix. The newest chunk counts only when
   * nothing in it is pending, which is safe because its records are all tracked already.
   */
  committable(): bigint {
    while (this.#head < this.#chunks.length) {
      const chunk = this.#chunks[this.#head] as AckChunk;
      if (chunk.pending > 0) break;
      this.#committable = chunk.lastOffset + 1n;
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#chunks.length) {
      this.#chunks.splice(0, this.#head);
      this.#head = 0;
    }
    return this.#committable;
  }

  /**
   * What committable() would return, without closing the chunks it passes: for read-only views
   * (status). Closing a chunk starts the next record in a new one, so a view that closed chunks
   * would change where the position can move to next.
   */
  peekCommittable(): bigint {
    let position = this.#committable;
    for (let i = this.#head; i < this.#chunks.length; i++) {
      const chunk = this.#chunks[i] as AckChunk;
      if (chunk.pending > 0) break;
      position = chunk.lastOffset + 1n;
    }
    return position;
  }

  /** Number of records seen but not yet resolved, for status and tests. */
  unresolved(): number {
    let sum = 0;
    for (let i = this.#head; i < this.#chunks.length; i++) sum += (this.#chunks[i] as AckChunk).pending;
    return sum;
  }
}

/** Records resolved together (one batch's rows, one dead-letter write) as counts per chunk. */
export class AckSet {
  readonly #chunks: AckChunk[] = [];
  readonly #counts: number[] = [];

  add(chunk: AckChunk): void {
    chunk.pending++;
    const last = this.#chunks.length - 1;
    if (last >= 0 && this.#chunks[last] === chunk) {
      this.#counts[last] = (this.#counts[last] as number) + 1;
      return;
    }
    this.#chunks.push(chunk);
    this.#counts.push(1);
  }

  /** Marks every record of the set resolved. Idempotent. */
  resolve(): void {
    for (let i = 0; i < this.#chunks.length; i++) (this.#chunks[i] as AckChunk).pending -= this.#counts[i] as number;
    this.#chunks.length = 0;
    this.#counts.length = 0;
  }
}
