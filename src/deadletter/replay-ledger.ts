// Owns what a dead-letter replay records, and what it needs of the ledger it records in: the entry
// of each replayed dead letter (keyed by `<dlq topic>/<partition>/<offset>`), written together with
// the records a replay re-produces. The Kafka ledger (a compacted topic, one transaction per write)
// is source/kafka-dlq-replay-ledger.ts; unit tests use an in-memory one.

export interface LedgerEntry {
  readonly to: 'original' | 'destination';
  /** `pending`: a destination insert under `token` may have happened; `done`: it did, or the record was re-produced. */
  readonly state: 'pending' | 'done';
  readonly at: string;
  readonly token?: string;
  readonly destination?: string;
  readonly table?: string;
  /** For `original`: the topic/partition it was re-produced to. */
  readonly target?: string;
  /** The record it stands for (`originalKey`): a second dead letter of the same record is not replayed again. */
  readonly original?: string;
}

/** A record a replay writes with its ledger entries (all or nothing): a dead letter re-produced to where it came from. */
export interface Message {
  readonly topic: string;
  readonly partition?: number;
  readonly key?: Buffer;
  readonly value?: Buffer;
  readonly timestamp?: bigint;
  readonly headers?: Map<Buffer, Buffer>;
}

/** What replays need of the ledger (ReplayLedger over Kafka; an in-memory one in unit tests). */
export interface LedgerView {
  readonly entries: ReadonlyMap<string, LedgerEntry>;
  recordedFor(original: string): string | undefined;
  write(entries: ReadonlyArray<readonly [string, LedgerEntry | null]>, records?: readonly Message[]): Promise<void>;
}
