// Owns noticing when a retried insert may fall outside its table's deduplication window. Only an
// attempt whose outcome is unknown (network error, timeout, UNKNOWN_STATUS_OF_INSERT) may have
// landed; its token must still be remembered when the same batch is sent again. ClickHouse forgets
// a token after `windowBlocks` newer inserts into the table, or (Replicated/Shared) after
// `windowSeconds`. This watch counts the time since the first uncertain attempt and this process's
// own inserts into the table since (a lower bound: other processes insert too) and, once a retry is
// past either bound, logs a warning and counts it: the rows may land twice. It cannot prevent it —
// not retrying would lose the rows if the first attempt did not land.
import { ErrorClasses, type ErrorClass } from '../../errors/classes.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { Metrics } from '../../telemetry/metrics.ts';
import type { Deduplication, TableRef } from '../types.ts';

/** Classes whose failed attempt may nevertheless have been written by the server. */
const uncertain = new Set<ErrorClass>([ErrorClasses.transientNetwork, ErrorClasses.unknownInsertStatus, ErrorClasses.unknown]);
/** Tokens followed at once; the oldest is forgotten beyond it (abandoned batches never succeed). */
const MAX_TRACKED = 10_000;

interface Pending {
  readonly since: number;
  readonly insertsBefore: number;
  warned: boolean;
}

export interface WindowWatchOptions {
  readonly destinationId: string;
  readonly logger?: Logger | undefined;
  readonly metrics?: Metrics | undefined;
  readonly now?: () => number;
}

export class DedupWindowWatch {
  readonly #options: WindowWatchOptions;
  readonly #now: () => number;
  readonly #windows = new Map<string, Deduplication>();
  readonly #inserts = new Map<string, number>();
  readonly #pending = new Map<string, Pending>();

  constructor(options: WindowWatchOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The table's deduplication as last read with its schema. */
  learn(table: TableRef, deduplication: Deduplication | undefined): void {
    if (deduplication === undefined) return;
    this.#windows.set(key(table), deduplication);
    this.#options.metrics?.tableDeduplicates.set({ destination: this.#options.destinationId, table: key(table) }, deduplication.byToken ? 1 : 0);
  }

  /** Before an attempt: true (and warned once per token) when a retry is past the table's window. */
  beforeAttempt(table: TableRef, token: string): boolean {
    const pending = this.#pending.get(token);
    const window = this.#windows.get(key(table));
    if (pending === undefined || window === undefined) return false;
    const elapsedMs = this.#now() - pending.since;
    const insertsSince = (this.#inserts.get(key(table)) ?? 0) - pending.insertsBefore;
    const pastSeconds = window.windowSeconds !== undefined && window.windowSeconds > 0 && elapsedMs > window.windowSeconds * 1000;
    const pastBlocks = window.windowBlocks !== undefined && window.windowBlocks > 0 && insertsSince >= window.windowBlocks;
    if (!pastSeconds && !pastBlocks) return false;
    if (!pending.warned) {
      pending.warned = true;
      this.#options.metrics?.dedupWindowExceeded.inc({ destination: this.#options.destinationId, table: key(table) });
      this.#options.logger?.warn(
        {
          destination: this.#options.destinationId,
          table: key(table),
          token,
          elapsedMs,
          insertsSince,
          windowSeconds: window.windowSeconds,
          windowBlocks: window.windowBlocks,
          setting: window.setting,
        },
        'retrying an insert whose earlier attempt may have landed, outside the table\'s deduplication window: its rows may be inserted twice (raise the window, see docs/operations.md "Deduplication window")',
      );
    }
    return true;
  }

  succeeded(table: TableRef, token: string): void {
    this.#inserts.set(key(table), (this.#inserts.get(key(table)) ?? 0) + 1);
    this.#pending.delete(token);
  }

  failed(table: TableRef, token: string, errorClass: ErrorClass): void {
    if (!uncertain.has(errorClass) || this.#pending.has(token)) return;
    if (this.#pending.size >= MAX_TRACKED) {
      const oldest = this.#pending.keys().next();
      if (oldest.done !== true) this.#pending.delete(oldest.value);
    }
    this.#pending.set(token, { since: this.#now(), insertsBefore: this.#inserts.get(key(table)) ?? 0, warned: false });
  }
}

function key(table: TableRef): string {
  return `${table.database}.${table.table}`;
}
