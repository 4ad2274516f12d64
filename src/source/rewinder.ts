// Owns re-reading: every owned partition is read again from its committed position (after a pause
// is lifted, a parked destination recovers, a team lookup answers rows parked meanwhile, or a
// partition is owned again). One rewind at a time; requests while one runs make it run once more;
// a failed switch is tried again with backoff. Records that arrive between a request and its switch
// may come from a stale position, so they are reported stale and dropped.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/load.ts';
import { backoffDelay } from '../sink/retry.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Source } from './types.ts';

export class Rewinder {
  readonly #source: Source;
  readonly #config: Config;
  readonly #logger: Logger;
  readonly #stop: AbortSignal;
  readonly #hardStop: AbortSignal;
  readonly #track: (task: Promise<void>) => void;
  readonly #onSwitch: () => void;
  #running: Promise<void> | undefined;
  #again = false;
  #requested = 0;
  #switched = 0;

  constructor(parts: { source: Source; config: Config; logger: Logger; stop: AbortSignal; hardStop: AbortSignal; track: (task: Promise<void>) => void; onSwitch: () => void }) {
    this.#source = parts.source;
    this.#config = parts.config;
    this.#logger = parts.logger;
    this.#stop = parts.stop;
    this.#hardStop = parts.hardStop;
    this.#track = parts.track;
    this.#onSwitch = parts.onSwitch;
  }

  /** Whether the source can rewind at all (without it, pauses and parking cannot re-read). */
  get supported(): boolean {
    return this.#source.rewind !== undefined;
  }

  /** A rewind was requested and has not switched yet: what is read now may be stale. */
  get pending(): boolean {
    return this.#switched < this.#requested;
  }

  request(): void {
    const rewind = this.#source.rewind?.bind(this.#source);
    if (rewind === undefined) return;
    this.#requested++;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = (async () => {
      for (let failures = 0; !this.#stop.aborted;) {
        this.#again = false;
        const target = this.#requested;
        this.#logger.info('re-reading owned partitions from their committed positions');
        try {
          await rewind(() => {
            this.#switched = target;
            this.#onSwitch();
          }, this.#hardStop);
          failures = 0;
        } catch (error) {
          failures++;
          this.#logger.warn({ err: error, failures }, 're-reading from the committed positions failed; trying again');
          await sleep(backoffDelay(this.#config.retry, failures), undefined, { signal: this.#stop }).catch(() => undefined);
          continue;
        }
        if (!this.#again) break;
      }
    })().finally(() => {
      this.#running = undefined;
      // A request between the loop's last check and here found the rewind still running and only
      // set #again: run once more, or it is lost (pending forever, every record dropped as stale).
      if (this.#switched < this.#requested && !this.#stop.aborted) {
        this.#requested--;
        this.request();
      }
    });
    this.#track(this.#running);
  }
}
