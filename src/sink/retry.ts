// Owns retrying: exponential backoff with full jitter, an optional deadline and attempt cap, and an
// AbortSignal that ends the wait at once. Errors that say they are not retryable are rethrown
// immediately, so permanent failures never spin.
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError } from '../errors/inserter-error.ts';

export interface BackoffPolicy {
  readonly baseMs: number;
  readonly factor: number;
  readonly capMs: number;
  /** Give up after this many attempts (the last error is rethrown); unlimited when absent. */
  readonly maxAttempts?: number;
  /** Give up once this much time has passed since the first attempt. */
  readonly maxElapsedMs?: number;
}

export interface RetryHooks {
  /** Called before each wait; `attempt` counts failures so far. */
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  /** Decides per error whether to retry; defaults to the error's `retryable` flag. */
  readonly isRetryable?: (error: unknown) => boolean;
  readonly random?: () => number;
}

export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * policy.factor ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

export async function retry<T>(operation: (attempt: number) => Promise<T>, policy: BackoffPolicy, signal: AbortSignal, hooks: RetryHooks = {}): Promise<T> {
  const started = Date.now();
  const isRetryable = hooks.isRetryable ?? ((error: unknown) => (error as { retryable?: unknown }).retryable === true);
  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) throw new AbortedError('retry aborted', { cause: signal.reason });
    try {
      return await operation(attempt);
    } catch (error) {
      if (signal.aborted) throw new AbortedError('retry aborted', { cause: error });
      if (!isRetryable(error)) throw error;
      if (policy.maxAttempts !== undefined && attempt >= policy.maxAttempts) throw error;
      const delay = backoffDelay(policy, attempt, hooks.random);
      if (policy.maxElapsedMs !== undefined && Date.now() - started + delay > policy.maxElapsedMs) throw error;
      hooks.onRetry?.(error, attempt, delay);
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        throw new AbortedError('retry aborted', { cause: error });
      }
    }
  }
}
