// Owns the dead-letter contract the core writes through — why a record could not become a row, and
// where rows that cannot be delivered go — and the header names of a dead letter on the bus (read
// back by the `dlq` commands and `verify`). The Kafka writer is source/kafka-dead-letter-writer.ts.
import type { ErrorCode } from '../errors/codes.ts';
import type { SourceRecord } from '../source/types.ts';

export interface DeadLetterReason {
  readonly errorClass: string;
  readonly code: ErrorCode;
  readonly message: string;
  readonly route?: string;
  readonly destination?: string;
  readonly table?: string;
  readonly team?: number;
  readonly attempts?: number;
  readonly serverCode?: number;
  readonly firstFailure?: Date;
  /** The row may also be in the warehouse (ledger.ts PartReason.mayHaveLanded): header `x-inserter-may-have-landed`. */
  readonly mayHaveLanded?: boolean;
}

export const deadLetterHeader = {
  class: 'x-inserter-error-class',
  code: 'x-inserter-error-code',
  serverCode: 'x-inserter-clickhouse-code',
  message: 'x-inserter-error-message',
  route: 'x-inserter-route',
  destination: 'x-inserter-destination',
  table: 'x-inserter-table',
  team: 'x-inserter-team',
  attempts: 'x-inserter-attempts',
  firstFailure: 'x-inserter-first-failure',
  lastFailure: 'x-inserter-last-failure',
  topic: 'x-inserter-original-topic',
  partition: 'x-inserter-original-partition',
  offset: 'x-inserter-original-offset',
  timestamp: 'x-inserter-original-timestamp',
  /** Written without its value (refused as too large): the value's size in bytes; the value is left in the source topic. */
  valueOmitted: 'x-inserter-value-omitted',
  /** Written without its key and original headers too: what was left out; they are left in the source topic. */
  keyHeadersOmitted: 'x-inserter-key-headers-omitted',
  /**
   * `true`: refused after a schema change while an earlier insert of it, whose outcome is unknown,
   * may have landed (docs/design/delivery.md §11). Check the table before replaying it.
   */
  mayHaveLanded: 'x-inserter-may-have-landed',
} as const;

/** The headers of a dead letter written without parts of the record (the dead-letter topic refused it as too large). */
export const omittedHeader = { value: deadLetterHeader.valueOmitted, keyHeaders: deadLetterHeader.keyHeadersOmitted } as const;

/** Where rows that cannot be delivered go; a write resolves only once the record is durable there. */
export interface DeadLetterSink {
  write(topic: string, record: SourceRecord, reason: DeadLetterReason, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
