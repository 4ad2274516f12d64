// Owns the neutral contract of consumer lag as control uses it (status, metrics, the admin API): how
// far the group's committed position is behind the log end, per partition, and the polling every
// adapter shares. The adapters measure: source/kafka-lag.ts (log end minus committed offset) and
// source/pulsar-lag.ts (the subscription's backlog).
import type { Logger } from '../telemetry/logger.ts';

export interface LagSource {
  /** Starts polling (idempotent). */
  start(): void;
  /** Records behind the log end (from the log start where the group never committed); undefined before the first poll. */
  lag(topic: string, partition: number): number | undefined;
  close(): Promise<void>;
}

export interface LagPollerOptions {
  readonly intervalMs: number;
  readonly logger: Logger;
  /** Called after each successful poll (e.g. to export the owned partitions' lag). */
  readonly onPoll?: () => void;
}

/**
 * Polls an adapter's measurement every `intervalMs` from start() until close(): one measurement at
 * a time (a poll already running is joined); a failed one is logged and the last one kept. close()
 * ends a running poll's requests, waits for it, then closes the adapter's client.
 */
export abstract class LagPoller implements LagSource {
  readonly #options: LagPollerOptions;
  readonly #closer = new AbortController();
  #lag = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #lastPollAt = 0;

  constructor(options: LagPollerOptions) {
    this.#options = options;
  }

  /** Every partition's lag, keyed `topic:partition` (lagKey); requests end when `signal` fires. */
  protected abstract measure(signal: AbortSignal): Promise<Map<string, number>>;

  /** What the warning of a failed poll says was not measured. */
  protected abstract readonly what: string;

  /** Closes the adapter's own client, after the last poll ended. */
  protected closeClient(): Promise<void> {
    return Promise.resolve();
  }

  start(): void {
    if (this.#timer !== undefined || this.#closing !== undefined) return;
    void this.poll();
    this.#timer = setInterval(() => void this.poll(), this.#options.intervalMs);
    this.#timer.unref();
  }

  lag(topic: string, partition: number): number | undefined {
    return this.#lag.get(lagKey(topic, partition));
  }

  get lastPollAt(): number {
    return this.#lastPollAt;
  }

  /** One measurement of every partition (a poll already running is joined). */
  poll(): Promise<void> {
    this.#polling ??= (async () => {
      try {
        const next = await this.measure(this.#closer.signal);
        if (this.#closing !== undefined) return;
        this.#lag = next;
        this.#lastPollAt = Date.now();
        this.#options.onPoll?.();
      } catch (error) {
        if (this.#closing === undefined) this.#options.logger.warn({ err: error }, `${this.what} not measured`);
      } finally {
        this.#polling = undefined;
      }
    })();
    return this.#polling;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#closer.abort();
      await this.#polling;
      await this.closeClient();
    })();
    return this.#closing;
  }
}

export function lagKey(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}
