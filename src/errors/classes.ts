// Owns the error classes the policy acts on. A class is the coarse meaning of a failure ("the
// warehouse is overloaded", "this row can never be inserted"); the sink's classifier maps each
// protocol-level error (ClickHouse code, HTTP status, network condition) onto exactly one class.

export const ErrorClasses = {
  transientNetwork: 'transient_network',
  tooManyParts: 'too_many_parts',
  tooManyPartitions: 'too_many_partitions',
  memoryLimit: 'memory_limit',
  overloaded: 'overloaded',
  replica: 'replica',
  unknownInsertStatus: 'unknown_insert_status',
  authentication: 'authentication',
  missingObject: 'missing_object',
  /** The table cannot deduplicate inserts by token (engine or window), so exactly-once is refused. */
  noDeduplication: 'no_deduplication',
  rowData: 'row_data',
  /**
   * The warehouse rejected the insert with a code of its own that no other class lists: about the
   * rows or about the destination, which bisecting the rows tells apart (policy action `bisect`).
   */
  unknownServerError: 'unknown_server_error',
  decode: 'decode',
  oversized: 'oversized',
  unknownTeam: 'unknown_team',
  noDestination: 'no_destination',
  destinationDown: 'destination_down',
  unknown: 'unknown',
} as const;

export type ErrorClass = (typeof ErrorClasses)[keyof typeof ErrorClasses];
