// Owns the contract between the pause registry and its durable home: an ordered, compacted log of
// keyed records that every replica reads from the beginning and then follows, seeing its own writes.
// The Kafka implementation is source/kafka-control-log.ts; tests use an in-memory one.

export interface ControlRecord {
  readonly key: string;
  /** undefined: a tombstone (the key was deleted). */
  readonly value: string | undefined;
  readonly offset: bigint;
  /** Milliseconds since the epoch, as stamped by the writer. */
  readonly timestamp: number;
}

export interface ControlLog {
  /**
   * Delivers every record from the beginning of the log, then each new one, in order, until close().
   * Resolves once every record that existed when it was called has been delivered (caught up).
   */
  follow(onRecord: (record: ControlRecord) => void, signal: AbortSignal): Promise<void>;
  /** Writes a record (undefined value: a tombstone); resolves with its offset once acknowledged. */
  append(key: string, value: string | undefined, signal: AbortSignal): Promise<bigint>;
  /** Milliseconds since the follower last heard from the log (a fetch answered), for readiness. */
  silenceMs(): number;
  /** Stops following and releases the clients; idempotent. */
  close(): Promise<void>;
}
