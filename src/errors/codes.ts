// Owns the closed list of error codes: every InserterError carries one of these, and nothing else
// (the type checker enforces it). A code names what happened, stably, for logs, metrics, dead-letter
// headers and the admin API; an error class (classes.ts) is what the policy acts on. docs/errors.md
// is the prose.
import type { ErrorClass } from './classes.ts';

export const errorCodes = [
  // the process
  'INSERTER_ABORTED',
  'INSERTER_CONFIG_INVALID',
  'INSERTER_POLICY_STOP',
  // decoding a record (dead-lettered)
  'INSERTER_DECODE_EMPTY',
  'INSERTER_DECODE_OVERSIZED',
  'INSERTER_DECODE_NOT_OBJECT',
  'INSERTER_DECODE_BAD_JSON',
  'INSERTER_DECODE_BAD_TEAM',
  // encoding a row for its table (a typed encoder refuses what the warehouse would refuse: dead-lettered)
  'INSERTER_ENCODE_REJECTED',
  // routing a record (dead-lettered)
  'INSERTER_NO_TEAM',
  'INSERTER_UNKNOWN_TEAM',
  'INSERTER_DESTINATION_DOWN',
  // connecting to Kafka (the login or the broker's certificate refused: fatal at start)
  'INSERTER_KAFKA_AUTH',
  'INSERTER_KAFKA_TLS',
  // the source and the ledger
  'INSERTER_SOURCE_COMMIT_FAILED',
  'INSERTER_LEDGER_FENCED',
  'INSERTER_LEDGER_SAVE_FAILED',
  // an insert whose earlier attempt may have landed, refused after a schema change (docs/design/delivery.md §11)
  'INSERTER_DELIVERY_IN_DOUBT',
  // dead letters and the dlq commands
  'INSERTER_DLQ_FAILED',
  'INSERTER_DLQ_TOPIC_TOO_SMALL',
  'INSERTER_DLQ_USAGE',
  'INSERTER_DLQ_KAFKA',
  'INSERTER_DLQ_FENCED',
  // pauses and the control topic
  'INSERTER_CONTROL_ABORTED',
  'INSERTER_CONTROL_STREAM_CLOSED',
  'INSERTER_CONTROL_WRITE',
  'INSERTER_CONTROL_NOT_READY',
  'INSERTER_PAUSE_LIFTED',
  // the destinations source (one per DestinationsFailure)
  'INSERTER_DESTINATIONS_NETWORK',
  'INSERTER_DESTINATIONS_TIMEOUT',
  'INSERTER_DESTINATIONS_HTTP_STATUS',
  'INSERTER_DESTINATIONS_UNAUTHORIZED',
  'INSERTER_DESTINATIONS_TOO_LARGE',
  'INSERTER_DESTINATIONS_NOT_JSON',
  'INSERTER_DESTINATIONS_INVALID',
  'INSERTER_DESTINATIONS_UNKNOWN_DESTINATION',
  'INSERTER_DESTINATIONS_READ',
  'INSERTER_DESTINATIONS_REJECTED',
  // a dead-letter write that did not go through (retried with backoff; the record stays unresolved)
  'INSERTER_DLQ_TOPIC_MISSING',
  'INSERTER_DLQ_WRITE_TIMEOUT',
  'INSERTER_DLQ_REFUSED',
  // the start-up check of the dead-letter topics got no answer in time
  'INSERTER_DLQ_TOPIC_CHECK_FAILED',
  // decoding a Protobuf record (dead-lettered; decode/protobuf)
  'INSERTER_DECODE_BAD_MAGIC',
  'INSERTER_DECODE_BAD_MESSAGE_INDEX',
  'INSERTER_DECODE_UNKNOWN_SCHEMA',
  'INSERTER_DECODE_NOT_PROTOBUF',
  'INSERTER_DECODE_SCHEMA_INVALID',
  'INSERTER_DECODE_BAD_PROTOBUF',
  'INSERTER_DECODE_WRONG_TYPE',
  // the schema registry cannot answer (transient: the record waits, never dead-lettered)
  'INSERTER_SCHEMA_REGISTRY_UNAVAILABLE',
  // encoding a row typed: the warehouse would reject a value (dead-lettered as row data)
] as const;

/** A warehouse failure's code: one per error class. */
export type SinkErrorCode = `INSERTER_SINK_${Uppercase<ErrorClass>}`;

export type ErrorCode = (typeof errorCodes)[number] | SinkErrorCode;

export function sinkErrorCode(errorClass: ErrorClass): SinkErrorCode {
  // toUpperCase() of a class is, by construction, its Uppercase<> form.
  return `INSERTER_SINK_${errorClass.toUpperCase()}` as SinkErrorCode;
}
