// Owns pausing destinations: while an error policy of `then: pauseDestination` holds a destination,
// its owner (the failing range) keeps probing it and every other insert to that destination waits
// here, so a broken destination is not hammered and nothing behind it is dead-lettered.
import { AbortedError } from '../errors/inserter-error.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { WarehouseError } from '../sink/errors.ts';

interface Pause {
  readonly owner: object;
  readonly errorClass: string;
  readonly since: number;
  readonly released: Promise<void>;
  readonly release: () => void;
}

export class DestinationGates {
  readonly #paused = new Map<string, Pause>();
  readonly #metrics: Metrics;
  readonly #logger: Logger;

  constructor(metrics: Metrics, logger: Logger) {
    this.#metrics = metrics;
    this.#logger = logger;
  }

  isPaused(destination: string): boolean {
    return this.#paused.has(destination);
  }

  /** Pauses `destination` for `owner`; false when someone else holds it already (then `owner` waits like the rest). */
  pause(destination: string, owner: object, failure: WarehouseError): boolean {
    if (this.#paused.has(destination)) return false;
    let release = (): void => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    this.#paused.set(destination, { owner, errorClass: failure.errorClass, since: Date.now(), released, release });
    this.#metrics.destinationPaused.set({ destination, class: failure.errorClass }, 1);
    this.#logger.error(
      { destination, class: failure.errorClass, code: failure.serverCode, err: failure },
      'destination paused: its inserts wait while the failing batch is retried slowly; nothing is dead-lettered',
    );
    return true;
  }

  resume(destination: string, owner: object): void {
    const pause = this.#paused.get(destination);
    if (pause === undefined || pause.owner !== owner) return;
    this.#paused.delete(destination);
    this.#metrics.destinationPaused.set({ destination, class: pause.errorClass }, 0);
    this.#logger.info({ destination, class: pause.errorClass, pausedMs: Date.now() - pause.since }, 'destination resumed');
    pause.release();
  }

  /** Waits while `destination` is paused by another owner. */
  async wait(destination: string, self: object, signal: AbortSignal): Promise<void> {
    for (;;) {
      const pause = this.#paused.get(destination);
      if (pause === undefined || pause.owner === self) return;
      if (signal.aborted) throw new AbortedError('waiting for a paused destination aborted');
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => reject(new AbortedError('waiting for a paused destination aborted'));
        signal.addEventListener('abort', onAbort, { once: true });
        void pause.released.then(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      });
    }
  }
}
