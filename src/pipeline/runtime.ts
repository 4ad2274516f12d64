// Owns what the stages of one pipeline share: configuration and telemetry, the source and the
// ledger store, the destinations, the owned partitions and their state, the memory budget, the
// pauses and parked destinations, the inserts in flight, the two stop signals, and every
// background task (tracked, so shutdown can wait for them). Each stage (route/holds.ts,
// control/lane-control.ts, pipeline/lane-delivery.ts, ack/committer.ts, …) holds this runtime and
// is wired to the others only through the callbacks the coordinator (pipeline.ts) gives it.
import type { LedgerStore } from '../ack/ledger.ts';
import type { MemoryBudget } from '../batch/budget.ts';
import type { Config } from '../config/load.ts';
import type { DestinationDirectory } from '../route/destinations.ts';
import type { PartitionRef, Source } from '../source/types.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { Parking } from './parking.ts';
import type { PartitionState } from './partition-state.ts';
import { InflightRegistry } from './tracked-sink.ts';

export class PipelineRuntime {
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly source: Source;
  readonly ledgers: LedgerStore | undefined;
  readonly parking = new Parking();
  readonly inflight = new InflightRegistry();
  readonly partitions = new Map<string, PartitionState>();
  /** Stops reading and new work (close()). */
  readonly stop = new AbortController();
  /** Aborts deliveries and dead-letter waits: only on destroy() or when a shutdown deadline passes. */
  readonly hardStop = new AbortController();
  /**
   * What aborts ledger writes: the hard stop, except for the final commit of a close whose deadline
   * passed, which gets a bounded signal of its own (resolved positions are still worth writing).
   */
  saveSignal: AbortSignal = this.hardStop.signal;
  /** Partitions this process owns; undefined until the source reports an assignment. */
  owned: Map<string, PartitionRef> | undefined;
  directory!: DestinationDirectory;
  budget!: MemoryBudget;
  readonly #tasks = new Set<Promise<void>>();

  constructor(parts: { config: Config; logger: Logger; metrics: Metrics; source: Source; ledgers: LedgerStore | undefined }) {
    this.config = parts.config;
    this.logger = parts.logger;
    this.metrics = parts.metrics;
    this.source = parts.source;
    this.ledgers = parts.ledgers;
  }

  /** Owns a background task: it is awaited at shutdown and its failure is logged, never lost. */
  track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.then(
      () => this.#tasks.delete(task),
      (error: unknown) => {
        this.#tasks.delete(task);
        this.logger.error({ err: error }, 'pipeline task failed');
      },
    );
  }

  /** Waits until no tracked task is left (tasks may add tasks). */
  async settle(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  anyReplaying(): boolean {
    for (const state of this.partitions.values()) if (state.replaying > 0) return true;
    return false;
  }

  anyNeedsRewind(): boolean {
    for (const state of this.partitions.values()) if (state.needsRewind) return true;
    return false;
  }
}
