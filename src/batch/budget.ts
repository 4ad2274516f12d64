// Owns the memory budget of one pipeline: bytes of consumed rows held in memory (open, re-forming
// and in-flight batches, held rows, dead letters being written) and of the insert bodies being sent
// (pipeline/attempt.ts), in total and per destination. The
// source waits while the total is over `maxBufferedBytes`; a destination over its own budget is
// reported (the lane control parks it if it is failing).
import type { Config } from '../config/load.ts';
import type { Metrics } from '../telemetry/metrics.ts';

export class MemoryBudget {
  readonly #limit: number;
  readonly #overBudget: (destination: string, held: number) => void;
  readonly #byDestination = new Map<string, number>();
  #total = 0;
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

  get over(): boolean {
    return this.#total > this.#limit;
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
    const held = (this.#byDestination.get(destination) ?? 0) + bytes;
    this.#byDestination.set(destination, held);
    this.#overBudget(destination, held);
  }

  release(bytes: number, destination: string | undefined): void {
    this.#total -= bytes;
    if (destination !== undefined) this.#byDestination.set(destination, (this.#byDestination.get(destination) ?? 0) - bytes);
    if (this.#total <= this.#limit && this.#waiters.length > 0) this.wakeAll();
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
