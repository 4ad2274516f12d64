// Owns the reuse of batch bodies' blocks: a bounded stack of idle 256 KiB Buffers that a body takes
// instead of allocating and gives back once nothing can read it any more (pipeline/deliver.ts, after
// its insert landed). Every new ArrayBuffer counts toward V8's external-memory limit, which starts a
// full collection per ~64 MiB allocated (docs/benchmarks.md, "Garbage collection"); the bodies were
// ~40 % of those bytes, so reusing their blocks saves full collections rather than the copy.

/** The size of a body block: large enough that a batch is a handful of them, small enough to reuse. */
export const BLOCK_SIZE = 256 * 1024;

/**
 * Idle blocks kept by default: 128 MiB, half the default `maxBufferedBytes` (256 MiB), which bounds the
 * rows the bodies encode. A 300k-event drain held at most 112 MiB of bodies at once (448 blocks), so
 * the pool allocates only up to that peak; at 64 MiB it dropped and reallocated a third of its blocks
 * (docs/benchmarks.md, "Reused body blocks").
 */
export const DEFAULT_POOL_BYTES = 128 * 1024 * 1024;

/**
 * Idle blocks, bounded. The pool only keeps blocks it handed out, and hands one out only when it has
 * none idle, so the blocks alive (in bodies + idle) never exceed the most that bodies held at once;
 * the bound caps what stays resident after such a peak. Blocks beyond it are left to the collector.
 */
export class BlockPool {
  readonly #idle: Buffer[] = [];
  /** Blocks handed out and not given back: only these are taken back, each once. */
  readonly #out = new WeakSet<Buffer>();
  #capacity: number;
  #allocated = 0;
  #reused = 0;

  constructor(capacityBytes: number = DEFAULT_POOL_BYTES) {
    this.#capacity = Math.max(0, Math.floor(capacityBytes / BLOCK_SIZE));
  }

  /** A block of BLOCK_SIZE bytes, not zero-filled: an idle one, else a new one. */
  take(): Buffer {
    const block = this.#idle.pop();
    if (block !== undefined) {
      this.#reused++;
      this.#out.add(block);
      return block;
    }
    this.#allocated++;
    const fresh = Buffer.allocUnsafe(BLOCK_SIZE);
    this.#out.add(fresh);
    return fresh;
  }

  /**
   * Takes back blocks `take` returned, which no one may read or write any more. Anything else (a
   * slice, a referenced value, a block given back already) is ignored; blocks over the bound are
   * left to the collector.
   */
  give(blocks: readonly Buffer[]): void {
    for (const block of blocks) {
      if (!this.#out.delete(block)) continue;
      if (this.#idle.length < this.#capacity) this.#idle.push(block);
    }
  }

  /** Changes the bound (bytes of idle blocks), dropping idle blocks above it. */
  setCapacity(bytes: number): void {
    this.#capacity = Math.max(0, Math.floor(bytes / BLOCK_SIZE));
    if (this.#idle.length > this.#capacity) this.#idle.length = this.#capacity;
  }

  /** Bytes of idle blocks held (resident memory no body uses). */
  get idleBytes(): number {
    return this.#idle.length * BLOCK_SIZE;
  }

  /** The bound on idle bytes. */
  get capacityBytes(): number {
    return this.#capacity * BLOCK_SIZE;
  }

  /** Blocks allocated since start (each a new ArrayBuffer) and blocks handed out again. */
  get stats(): { readonly allocated: number; readonly reused: number } {
    return { allocated: this.#allocated, reused: this.#reused };
  }
}

/** The process's pool of batch-body blocks (encodeRange takes from it; the delivery gives back). */
export const bodyBlocks = new BlockPool();
