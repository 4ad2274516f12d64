// Owns the error vocabulary: every error inserter raises or wraps is an InserterError with a stable
// `code`, a `retryable` flag and the original `cause`. Third-party errors are classified at the edge
// that speaks their protocol (sink/clickhouse/classify.ts, source/kafka.ts), never in the core.
// Codes come from one closed list (codes.ts).
import type { ErrorCode } from './codes.ts';

export interface InserterErrorOptions {
  cause?: unknown;
  retryable?: boolean;
  details?: Readonly<Record<string, string | number | boolean | undefined>>;
}

export class InserterError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, string | number | boolean | undefined>>;

  constructor(code: ErrorCode, message: string, options: InserterErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'InserterError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }
}

/** Configuration is invalid; `issues` names every field at fault. Never retryable. */
export class ConfigError extends InserterError {
  readonly issues: readonly string[];
  constructor(issues: readonly string[], options: InserterErrorOptions = {}) {
    super('INSERTER_CONFIG_INVALID', `invalid configuration:\n  - ${issues.join('\n  - ')}`, options);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** A message that cannot become a row (not JSON, not an object, too large, no team). Dead-lettered. */
export class DecodeError extends InserterError {
  constructor(code: ErrorCode, message: string, options: InserterErrorOptions = {}) {
    super(code, message, { ...options, retryable: false });
    this.name = 'DecodeError';
  }
}

/** The operation was given up because its AbortSignal fired (shutdown, rebalance). */
export class AbortedError extends InserterError {
  constructor(message = 'operation aborted', options: InserterErrorOptions = {}) {
    super('INSERTER_ABORTED', message, { ...options, retryable: false });
    this.name = 'AbortedError';
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A row the typed encoder cannot write because the warehouse would reject one of its values (its
 * message says what the warehouse would say: column, value excerpt, why). The delivery treats it as
 * a row-data rejection of that row: isolated and dead-lettered. Never retryable.
 */
export class EncodeError extends InserterError {
  constructor(code: ErrorCode, message: string, options: InserterErrorOptions = {}) {
    super(code, message, { ...options, retryable: false });
    this.name = 'EncodeError';
  }
}
