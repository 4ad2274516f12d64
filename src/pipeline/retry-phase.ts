// Owns one retry phase of a range: the same rows under the same token, backed off while they fail
// with the class the policy resolved, each retry logged, counted and reported. What happens after
// the phase (split, dead-letter, pause, stop) is the Deliverer's.
import type { ClassPolicy } from '../errors/policy.ts';
import { AbortedError } from '../errors/inserter-error.ts';
import { WarehouseError } from '../sink/errors.ts';
import { retry, type BackoffPolicy } from '../sink/retry.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { Range } from './delivery-range.ts';
import { tableName } from './failure-report.ts';

/** How a retry phase ended: landed (no failure), or the failure that ended it, after `attempts` attempts. */
export interface Phase {
  readonly failure: WarehouseError | undefined;
  readonly attempts: number;
}

export interface PhaseSteps {
  readonly attempt: (range: Range) => Promise<WarehouseError | undefined>;
  readonly report: (error: unknown, range: Range, attempts: number) => void;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

/**
 * Retries the range while it fails with `policy`'s class; the first attempt is the failure in hand.
 * `stop` ends the retries early (the failure in hand is returned) once it holds; `before` runs
 * before every retry (a `bisect` probe).
 */
export async function retryPhase(
  range: Range,
  first: WarehouseError,
  policy: ClassPolicy,
  backoff: BackoffPolicy,
  attemptsSoFar: number,
  steps: PhaseSteps,
  stop?: () => boolean,
  before?: () => Promise<unknown>,
): Promise<Phase> {
  let attempts = attemptsSoFar;
  try {
    await retry(
      async (n) => {
        if (n === 1) throw first;
        attempts++;
        await before?.();
        const failure = await steps.attempt(range);
        if (failure !== undefined) throw failure;
      },
      backoff,
      range.signal,
      {
        isRetryable: (error) => error instanceof WarehouseError && error.errorClass === policy.errorClass && stop?.() !== true,
        onRetry: (error, attempt, delayMs) => {
          const cls = policy.errorClass;
          steps.metrics.retries.inc({ destination: range.lane.destination.id, class: cls });
          steps.logger.warn(
            { destination: range.lane.destination.id, table: tableName(range.lane), class: cls, attempt: attemptsSoFar + attempt - 1, delayMs, rows: range.to - range.from, err: error },
            'insert failed; backing off',
          );
          steps.report(error, range, attemptsSoFar + attempt - 1);
        },
      },
    );
    return { failure: undefined, attempts };
  } catch (error) {
    if (error instanceof AbortedError || range.signal.aborted) throw error;
    if (error instanceof WarehouseError) return { failure: error, attempts };
    throw error;
  }
}
