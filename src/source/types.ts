// Owns the bus-neutral source contract. The core sees ordered records per partition, learns of
// assignment changes, and hands back "everything below this position is resolved". Kafka commits
// that as a group offset; Pulsar would map it to a cumulative acknowledgement per partition.

export interface SourceRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  /** Milliseconds since the epoch (the record's create or log-append time). */
  readonly timestamp: bigint;
  readonly key: Buffer | undefined;
  readonly value: Buffer | undefined;
  readonly headers: ReadonlyArray<readonly [Buffer, Buffer]>;
  /** Opaque to the core; handed back on commit (Kafka's leader epoch). */
  readonly epoch: number;
}

export interface PartitionRef {
  readonly topic: string;
  readonly partition: number;
}

export interface CommitPosition extends PartitionRef {
  /** The next position to read: every record below it is resolved. */
  readonly offset: bigint;
  readonly epoch: number;
}

export interface SourceHandler {
  /** Called once per record, in order per partition. A returned promise applies backpressure. */
  onRecord(record: SourceRecord): void | Promise<void>;
  /** Partitions newly owned by this process. */
  onAssigned(partitions: readonly PartitionRef[]): void;
  /** Partitions no longer owned: their unfinished work must be abandoned, not committed. */
  onRevoked(partitions: readonly PartitionRef[]): void;
  /** The source starts over from the committed positions (it recovered from a failure). */
  onReset(): void;
}

export interface Source {
  /** Delivers records until close() or the signal fires. */
  run(handler: SourceHandler, signal: AbortSignal): Promise<void>;
  commit(positions: readonly CommitPosition[], signal?: AbortSignal): Promise<void>;
  /**
   * Re-reads every owned partition from its committed position. `onSwitch` runs synchronously at
   * the moment after which every record delivered comes from the committed positions, so the core
   * can reset its per-partition progress there. Sources that cannot rewind omit it (then pauses and
   * parked destinations hold their rows in memory instead).
   */
  rewind?(onSwitch: () => void, signal: AbortSignal): Promise<void>;
  /**
   * For an owned partition that nothing was read from since it was assigned: the position committed
   * when it was assigned, if the group's position is below it now (a previous owner's late commit
   * moved it back); undefined otherwise. Committing it again is safe. Optional.
   */
  repairPosition?(ref: PartitionRef, signal: AbortSignal): Promise<CommitPosition | undefined>;
  /** Stops fetching and leaves the group; idempotent. */
  close(): Promise<void>;
}

export function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}
