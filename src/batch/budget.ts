// Owns the memory budget of one pipeline: bytes of consumed rows held in memory (open, re-forming
// and in-flight batches, held rows, dead letters being written) and of the insert bodies being sent
// (pipeline/attempt.ts), in total and per destination; and the bodies that queued batches are still to
// be sent as (Batch.bodyAllowance, their rows' size: not in memory yet, so not in those totals). The
// source waits while the total and those future bodies, less what parked destinations hold or will,
// are over `maxBufferedBytes`: it stops before the bodies are made, not after. A destination
// reserving bytes is reported (the lane control parks it if it is stuck and over its own budget or
// the shared one).
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
  /** Bodies still to be made for queued batches (their allowances), in total and per destination. */
  #pending = 0;
  readonly #pendingByDestination = new Map<string, number>();
  #parkedPending = 0;
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

  /** Bytes of the bodies queued batches are still to be sent as (not in memory yet). */
  get pending(): number {
    return this.#pending;
  }

  /** Whether the source must wait: the total and the bodies to come, less parked destinations' share, are over the limit. */
  get over(): boolean {
    return this.#total + this.#pending - this.#parkedHeld - this.#parkedPending > this.#limit;
  }

  /** The destination is parked: its bytes stop counting towards `over` until `unpark`. */
  park(destination: string): void {
    if (this.#parked.has(destination)) return;
    this.#parked.add(destination);
    this.#parkedHeld += this.heldBy(destination);
    this.#parkedPending += this.#pendingByDestination.get(destination) ?? 0;
    if (!this.over && this.#waiters.length > 0) this.wakeAll();
  }

  unpark(destination: string): void {
    if (!this.#parked.delete(destination)) return;
    this.#parkedHeld -= this.heldBy(destination);
    this.#parkedPending -= this.#pendingByDestination.get(destination) ?? 0;
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

  /** A batch is queued: the bodies it will be sent as count from now on (its rows' size: Batch.bodyAllowance). */
  expectBodies(batch: Allowance, destination: string): void {
    batch.bodyAllowance = batch.bytes;
    this.#changePending(batch.bodyAllowance, destination);
  }

  /** The batch's first body is being made: from now on its bodies are counted as they are (reserve). */
  bodiesStarted(batch: Allowance, destination: string): void {
    const allowance = batch.bodyAllowance;
    batch.bodyAllowance = 0;
    if (allowance !== 0) this.#changePending(-allowance, destination);
  }

  /** A queued batch's delivery ended (or it was dropped): its rows and what is left of its allowance leave the budget, once. */
  releaseBatch(batch: Allowance, destination: string): void {
    const bytes = batch.bytes;
    batch.bytes = 0;
    this.bodiesStarted(batch, destination);
    this.release(bytes, destination);
  }

  #changePending(bytes: number, destination: string): void {
    this.#pending += bytes;
    this.#pendingByDestination.set(destination, (this.#pendingByDestination.get(destination) ?? 0) + bytes);
    if (this.#parked.size > 0 && this.#parked.has(destination)) this.#parkedPending += bytes;
    if (bytes < 0 && !this.over && this.#waiters.length > 0) this.wakeAll();
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

/** What the budget reads and writes of a queued batch. */
interface Allowance {
  bytes: number;
  bodyAllowance: number;
}
