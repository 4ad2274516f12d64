// Owns the memory budget of one pipeline: bytes of consumed rows held in memory (open, re-forming
// and in-flight batches, held rows, dead letters being written) and of the insert bodies being sent
// (pipeline/attempt.ts), in total and per destination. The source waits while the total, less what
// parked destinations hold, is over `maxBufferedBytes`; a destination reserving bytes is reported
// (the lane control parks it if it is stuck and over its own budget or the shared one).
import type { Config } from '../config/load.ts';
import type { Metrics } from '../telemetry/metrics.ts';

export class MemoryBudget {
  readonly #limit: number;
  readonly #overBudget: (destination: string, held: number) => void;
  readonly #byDestination = new Map<string, number>();
  #total = 0;
  /** Parked destinations: what they hold only shrinks (nothing new of theirs is buffered), so the source does not wait on it. */
  readonly #parked = new Set<string>();
  #parkedHeld = 0;
  #waiters: Array<() => void> = [];

  constructor(config: Config, metrics: Metrics, overBudget: (destination: string, held: number) => void) {
    this.#limit = config.maxBufferedBytes;
    this.#overBudget = overBudget;
    // Read when scraped: the gauge is not set per reserved row.
    metrics.bufferedBytesReader = () => this.#total;
  }

  get total(): number {
    return this.#total;
  }

  /** Whether the source must wait: the total, less what parked destinations hold, is over the limit. */
  get over(): boolean {
    return this.#total - this.#parkedHeld > this.#limit;
  }

  /** The destination is parked: its bytes stop counting towards `over` until `unpark`. */
  park(destination: string): void {
    if (this.#parked.has(destination)) return;
    this.#parked.add(destination);
    this.#parkedHeld += this.heldBy(destination);
    if (!this.over && this.#waiters.length > 0) this.wakeAll();
  }

  unpark(destination: string): void {
    if (!this.#parked.delete(destination)) return;
    this.#parkedHeld -= this.heldBy(destination);
  }

  get byDestination(): ReadonlyMap<string, number> {
    return this.#byDestination;
  }

  heldBy(destination: string): number {
    return this.#byDestination.get(destination) ?? 0;
  }

  reserve(bytes: number, destination: string | undefined): void {
    this.#total += bytes;
    if (destination === undefined) return;
    if (this.#parked.size > 0 && this.#parked.has(destination)) this.#parkedHeld += bytes;
    const held = (this.#byDestination.get(destination) ?? 0) + bytes;
    this.#byDestination.set(destination, held);
    this.#overBudget(destination, held);
  }

  release(bytes: number, destination: string | undefined): void {
    this.#total -= bytes;
    if (destination !== undefined) {
      this.#byDestination.set(destination, (this.#byDestination.get(destination) ?? 0) - bytes);
      if (this.#parked.size > 0 && this.#parked.has(destination)) this.#parkedHeld -= bytes;
    }
    if (!this.over && this.#waiters.length > 0) this.wakeAll();
  }

  /** Resolves once the total is back under the limit (or wakeAll() at shutdown). */
  waitForDrain(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  wakeAll(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
