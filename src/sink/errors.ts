// Owns the warehouse-neutral failure of a sink call: its error class (src/errors/classes.ts), the
// warehouse's own code when it gave one, and the row it named. Each sink adapter classifies its
// client's errors into this (sink/clickhouse/classify.ts for ClickHouse); the core and the error
// policy only ever see this class.
import { ErrorClasses, type ErrorClass } from '../errors/classes.ts';
import { sinkErrorCode } from '../errors/codes.ts';
import { InserterError } from '../errors/inserter-error.ts';

/** Classes a retry can cure; everything else needs a split, a fix or a dead-letter. */
const retryable = new Set<ErrorClass>([
  ErrorClasses.transientNetwork,
  ErrorClasses.tooManyParts,
  ErrorClasses.overloaded,
  ErrorClasses.replica,
  ErrorClasses.unknownInsertStatus,
  ErrorClasses.memoryLimit,
  ErrorClasses.authentication,
  ErrorClasses.missingObject,
  ErrorClasses.noDeduplication,
  ErrorClasses.unknownServerError,
  ErrorClasses.unknown,
]);

export class WarehouseError extends InserterError {
  readonly errorClass: ErrorClass;
  /** The warehouse's own error code (ClickHouse exception code), when it gave one. */
  readonly serverCode: number | undefined;
  /** The failing row the warehouse named, 1-based within the insert, when it named one. */
  readonly row: number | undefined;
  constructor(errorClass: ErrorClass, message: string, serverCode: number | undefined, cause: unknown, row?: number) {
    super(sinkErrorCode(errorClass), message, { cause, retryable: retryable.has(errorClass) });
    this.name = 'WarehouseError';
    this.errorClass = errorClass;
    this.serverCode = serverCode;
    this.row = row;
  }
}

/** A sink's failure as it is, or anything else (a bug, an unexpected throw) as class `unknown`. */
export function asWarehouseError(error: unknown): WarehouseError {
  if (error instanceof WarehouseError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new WarehouseError(ErrorClasses.unknown, message.slice(0, 1000), undefined, error);
}

/**
 * Socket-level error codes of Node and undici that mean the request got no answer: the same for
 * every warehouse reached over HTTP, so each adapter's classifier starts from these.
 */
export const socketErrorCodes: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
]);
