// Owns the error policy: what inserter does about each error class — back off and retry, split the
// rows, isolate bad rows — and what happens when that is exhausted (dead-letter, pause the
// destination, drop, stop). Built-in defaults are what a careful operator would choose; the config's
// `errorPolicy` overrides them per route, then per destination, then for all. docs/errors.md is the prose.
import type { BackoffPolicy } from '../sink/retry.ts';
import { ErrorClasses, type ErrorClass } from './classes.ts';
import { InserterError } from './inserter-error.ts';
import type { ClassOverride, ClassOverrides, ErrorPolicyConfig, Fallback, PolicyAction } from './policy-schema.ts';

export type { Fallback, PolicyAction } from './policy-schema.ts';

export interface ClassPolicy {
  readonly errorClass: ErrorClass;
  /**
   * `retry`: back off with the same rows; `split`: smaller inserts first; `isolate`: bisect to the bad
   * rows; `bisect`: bisect while the failure follows the rows (a lone row that fails once other rows
   * landed is dead-lettered), else the failure is the destination's: back off, then `then`.
   */
  readonly action: PolicyAction;
  /** Backoff for retries (after a split/isolate, for a part that cannot be cut further); limits end it. */
  readonly backoff: BackoffPolicy;
  /** What happens once the retries are exhausted. */
  readonly then: Fallback;
  /** Probe interval (upper bound, jittered) while the destination is paused. */
  readonly pauseMs: number;
  /** Transient classes are reported only once they persist; the others at once. */
  readonly transient: boolean;
}

type Spec = Omit<ClassPolicy, 'errorClass' | 'backoff' | 'transient'> & BackoffPolicy;

const minute = 60_000;
const pause = 30_000;
const builtIn: Readonly<Record<ErrorClass, Spec>> = {
  [ErrorClasses.transientNetwork]: { action: 'retry', baseMs: 200, factor: 2, capMs: 30_000, maxElapsedMs: 5 * minute, then: 'pauseDestination', pauseMs: pause },
  // Never dead-letter: the table needs merges to catch up, and only waiting gives them time.
  [ErrorClasses.tooManyParts]: { action: 'retry', baseMs: 1_000, factor: 2, capMs: minute, maxElapsedMs: 10 * minute, then: 'pauseDestination', pauseMs: pause },
  // Waiting cannot help a block that spans too many partitions; a smaller block can.
  [ErrorClasses.tooManyPartitions]: { action: 'split', baseMs: 1_000, factor: 2, capMs: minute, maxElapsedMs: 10 * minute, then: 'pauseDestination', pauseMs: pause },
  [ErrorClasses.memoryLimit]: { action: 'split', baseMs: 1_000, factor: 2, capMs: minute, maxElapsedMs: 10 * minute, then: 'pauseDestination', pauseMs: pause },
  [ErrorClasses.overloaded]: { action: 'retry', baseMs: 500, factor: 2, capMs: minute, maxElapsedMs: 10 * minute, then: 'pauseDestination', pauseMs: pause },
  [ErrorClasses.replica]: { action: 'retry', baseMs: 500, factor: 2, capMs: 30_000, maxElapsedMs: 10 * minute, then: 'pauseDestination', pauseMs: pause },
  // Same rows, same token: the warehouse deduplicates whichever attempt landed first.
  [ErrorClasses.unknownInsertStatus]: { action: 'retry', baseMs: 200, factor: 2, capMs: 30_000, maxElapsedMs: 10 * minute, then: 'pauseDestination', pauseMs: pause },
  // A destination-wide configuration problem: pause and alert, never dead-letter.
  [ErrorClasses.authentication]: { action: 'retry', baseMs: 1_000, factor: 2, capMs: 10_000, maxAttempts: 3, then: 'pauseDestination', pauseMs: pause },
  [ErrorClasses.missingObject]: { action: 'retry', baseMs: 1_000, factor: 2, capMs: 30_000, maxAttempts: 5, then: 'pauseDestination', pauseMs: pause },
  // A table that cannot deduplicate by token: an operator's DDL fix (or `exactlyOnce: false` on the
  // route) is the cure. Pause and keep re-reading the table's settings; never dead-letter the rows.
  [ErrorClasses.noDeduplication]: { action: 'retry', baseMs: 1_000, factor: 2, capMs: 10_000, maxAttempts: 3, then: 'pauseDestination', pauseMs: pause },
  // Bisect to the bad rows; a lone bad row is not retried.
  [ErrorClasses.rowData]: { action: 'isolate', baseMs: 200, factor: 2, capMs: 1_000, maxAttempts: 1, then: 'deadLetter', pauseMs: pause },
  // A code of the warehouse's own that no class lists: bisect. A row the failure follows alone is
  // dead-lettered with the code and message; when no part lands either, it is the destination's:
  // back off, then pause. Never a stalled partition for a bad row, never everything dead-lettered.
  [ErrorClasses.unknownServerError]: { action: 'bisect', baseMs: 1_000, factor: 2, capMs: minute, maxElapsedMs: 5 * minute, then: 'pauseDestination', pauseMs: pause },
  // No code at all (a bug, an unexpected throw): not known to be about the rows, nor that it did not land.
  [ErrorClasses.unknown]: { action: 'retry', baseMs: 1_000, factor: 2, capMs: minute, maxElapsedMs: 5 * minute, then: 'pauseDestination', pauseMs: pause },
  // Decided by the router before any insert (documented here for completeness).
  [ErrorClasses.decode]: { action: 'retry', baseMs: 200, factor: 2, capMs: 1_000, maxAttempts: 1, then: 'deadLetter', pauseMs: pause },
  [ErrorClasses.oversized]: { action: 'retry', baseMs: 200, factor: 2, capMs: 1_000, maxAttempts: 1, then: 'deadLetter', pauseMs: pause },
  [ErrorClasses.unknownTeam]: { action: 'retry', baseMs: 200, factor: 2, capMs: 1_000, maxAttempts: 1, then: 'deadLetter', pauseMs: pause },
  [ErrorClasses.noDestination]: { action: 'retry', baseMs: 200, factor: 2, capMs: 1_000, maxAttempts: 1, then: 'deadLetter', pauseMs: pause },
  // Decided by the pipeline: a destination parked past its deadLetterAfterParkedMs.
  [ErrorClasses.destinationDown]: { action: 'retry', baseMs: 200, factor: 2, capMs: 1_000, maxAttempts: 1, then: 'deadLetter', pauseMs: pause },
};

const transientClasses = new Set<ErrorClass>([
  ErrorClasses.transientNetwork,
  ErrorClasses.tooManyParts,
  ErrorClasses.tooManyPartitions,
  ErrorClasses.memoryLimit,
  ErrorClasses.overloaded,
  ErrorClasses.replica,
  ErrorClasses.unknownInsertStatus,
]);

export class ErrorPolicy {
  readonly #config: ErrorPolicyConfig | undefined;
  readonly #cache = new Map<string, ClassPolicy>();

  constructor(config?: ErrorPolicyConfig) {
    this.#config = config;
  }

  /** The policy for `errorClass` on (route, destination): route override, destination override, defaults, built-in. */
  resolve(errorClass: ErrorClass, route: string, destination: string): ClassPolicy {
    const key = `${errorClass}\u0000${route}\u0000${destination}`;
    let policy = this.#cache.get(key);
    if (policy === undefined) {
      const layers: Array<ClassOverride | undefined> = [
        pick(this.#config?.defaults, errorClass),
        pick(this.#config?.destinations[destination], errorClass),
        pick(this.#config?.routes[route], errorClass),
      ];
      let spec: Spec = builtIn[errorClass];
      for (const layer of layers) if (layer !== undefined) spec = merge(spec, layer);
      const { action, then, pauseMs, baseMs, factor, capMs, maxAttempts, maxElapsedMs } = spec;
      const backoff: BackoffPolicy = { baseMs, factor, capMs: Math.max(capMs, baseMs), ...(maxAttempts === undefined ? {} : { maxAttempts }), ...(maxElapsedMs === undefined ? {} : { maxElapsedMs }) };
      policy = Object.freeze({ errorClass, action, backoff, then, pauseMs, transient: transientClasses.has(errorClass) });
      this.#cache.set(key, policy);
    }
    return policy;
  }
}

function pick(overrides: ClassOverrides | undefined, errorClass: ErrorClass): ClassOverride | undefined {
  return overrides?.[errorClass];
}

function merge(spec: Spec, layer: ClassOverride): Spec {
  const out: Record<string, unknown> = { ...spec };
  // Setting one limit replaces the other default limit, so `maxAttempts: 3` alone means three attempts.
  if (layer.maxAttempts !== undefined || layer.maxElapsedMs !== undefined) {
    delete out.maxAttempts;
    delete out.maxElapsedMs;
  }
  for (const [name, value] of Object.entries(layer)) if (value !== undefined) out[name] = value;
  return out as unknown as Spec;
}

/** An error policy of `then: stop` fired: the process stops without committing past the rows. */
export class PolicyStopError extends InserterError {
  readonly errorClass: ErrorClass;
  constructor(errorClass: ErrorClass, message: string, cause: unknown) {
    super('INSERTER_POLICY_STOP', `stopping (error policy for ${errorClass}): ${message}`, { cause, retryable: false });
    this.name = 'PolicyStopError';
    this.errorClass = errorClass;
  }
}
