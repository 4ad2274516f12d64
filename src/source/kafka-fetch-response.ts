// Owns what the fetch path reads of the client's parsed Fetch responses (@platformatic/kafka 2.12.1,
// public API below the message stream): their shapes as this adapter reads them, handing a
// partition's batches over as SourceRecords, the aborted-transaction filter by Kafka's own consumer
// rules, and the classification of the client's fetch errors (retry, move into the log, or fail).
import type { SourceHandler, SourceRecord } from './types.ts';

export interface ParsedRecord {
  readonly offsetDelta: number;
  readonly timestampDelta: bigint | number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Array<[Buffer, Buffer]>;
}

export interface ParsedBatch {
  readonly firstOffset: bigint;
  readonly partitionLeaderEpoch: number;
  readonly producerId: bigint;
  readonly firstTimestamp: bigint;
  readonly lastOffsetDelta: number;
  readonly attributes: number;
  readonly records: readonly ParsedRecord[];
}

export interface AbortedTransaction {
  readonly producerId: bigint;
  readonly firstOffset: bigint;
}

export interface PartitionResponse {
  readonly partitionIndex: number;
  readonly records?: readonly ParsedBatch[] | null;
  readonly abortedTransactions?: readonly AbortedTransaction[] | null;
}

export interface FetchResponse {
  readonly responses: ReadonlyArray<{ readonly topicId: string; readonly partitions: readonly PartitionResponse[] }>;
}

/** One partition of a Fetch request. */
export interface FetchPartition {
  readonly partition: number;
  readonly fetchOffset: bigint;
  readonly partitionMaxBytes: number;
  readonly currentLeaderEpoch: number;
  readonly lastFetchedEpoch: number;
}

export interface FetchTopic {
  readonly topicId: string;
  readonly partitions: FetchPartition[];
}

const noHeaders: SourceRecord['headers'] = Object.freeze([]);

/**
 * Hands one partition's batches to the handler, its position (`next.get(key)`) following each
 * record handed over, and past each batch (a compacted batch's removed tail, control batches);
 * records below the position are skipped (a batch starting before it, a response requested before
 * another one was handed over). False when `stale()` says the rest must not be handed over: it is
 * asked before each batch, and after each record (after its backpressure).
 */
export async function handOver(handler: SourceHandler, next: Map<string, bigint>, key: string, topic: string, response: PartitionResponse, stale: () => boolean): Promise<boolean> {
  const batches = response.records;
  if (batches === undefined || batches === null) return true;
  const partition = response.partitionIndex;
  const aborted = response.abortedTransactions;
  const filter = aborted === undefined || aborted === null || aborted.length === 0 ? undefined : new AbortedFilter(aborted);
  for (const batch of batches) {
    if (stale()) return false;
    const from = next.get(key);
    if (from === undefined) return true; // not requested (or no longer owned): skip this partition only
    const end = batchEnd(batch);
    if (filter !== undefined ? filter.skips(batch, end) : (batch.attributes & IS_CONTROL) !== 0) {
      if (end > from) next.set(key, end);
      continue;
    }
    if (end <= from) continue; // a batch read already
    const epoch = batch.partitionLeaderEpoch;
    for (const r of batch.records) {
      const offset = batch.firstOffset + BigInt(r.offsetDelta);
      if (offset < from) continue; // a batch starts before the requested offset
      const record: SourceRecord = {
        topic,
        partition,
        offset,
        timestamp: batch.firstTimestamp + BigInt(r.timestampDelta),
        key: r.key ?? undefined,
        value: r.value ?? undefined,
        headers: r.headers.length === 0 ? noHeaders : r.headers,
        epoch,
      };
      const pending = handler.onRecord(record);
      next.set(key, offset + 1n);
      if (pending !== undefined) await pending;
      if (stale()) return false;
    }
    next.set(key, end);
  }
  return true;
}

/** A control batch (transaction markers): never records of the topic. */
const IS_CONTROL = 0x20;
/** A batch written inside a transaction. */
const IS_TRANSACTIONAL = 0x10;

/** The end of a batch: the offset after its last one (a compacted batch keeps its last offset). */
export function batchEnd(batch: ParsedBatch): bigint {
  return batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n;
}

/**
 * Kafka's consumer rules for `read_committed` (the client's own filter keeps one aborted range per
 * producer id, so a producer's earlier aborts would be delivered: review 2026-12-07i). Fed every
 * batch of one partition's response in offset order: a producer is aborted from the first offset of
 * one of the response's aborted transactions until its abort marker; its transactional batches in
 * between are skipped. Control batches are never records.
 */
export class AbortedFilter {
  readonly #aborted: readonly AbortedTransaction[];
  readonly #producers = new Set<bigint>();
  #next = 0;

  constructor(aborted: readonly AbortedTransaction[]) {
    this.#aborted = aborted.length > 1 ? [...aborted].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0)) : aborted;
  }

  /** True when the batch holds no records to deliver (a control batch, or an aborted transaction's). */
  skips(batch: ParsedBatch, end: bigint): boolean {
    for (let a = this.#aborted[this.#next]; a !== undefined && a.firstOffset < end; a = this.#aborted[++this.#next]) this.#producers.add(a.producerId);
    if ((batch.attributes & IS_CONTROL) !== 0) {
      if (isAbortMarker(batch)) this.#producers.delete(batch.producerId);
      return true;
    }
    return (batch.attributes & IS_TRANSACTIONAL) !== 0 && this.#producers.has(batch.producerId);
  }
}

/** An abort marker: a control batch whose record key says ABORT (type 0). An empty one (compacted) is not. */
function isAbortMarker(batch: ParsedBatch): boolean {
  const key = batch.records[0]?.key;
  return key !== undefined && key !== null && key.length >= 4 && key.readInt16BE(2) === 0;
}

/** The client retries these itself first; after that the fetch path retries with a backoff. */
export function isTransient(error: unknown): boolean {
  const e = error as { canRetry?: unknown; errors?: unknown[] } | undefined;
  if (e === undefined || e === null) return false;
  if (isLeaderless(error)) return true;
  if (e.canRetry === false) return isOffsetOutOfRange(error);
  return !(Array.isArray(e.errors) && e.errors.some((inner) => (inner as { canRetry?: unknown }).canRetry === false && !isOffsetOutOfRange(inner)));
}

export function isOffsetOutOfRange(error: unknown): boolean {
  const e = error as { apiCode?: unknown; errors?: unknown[]; message?: unknown } | undefined;
  if (e === undefined || e === null) return false;
  if (e.apiCode === 1 || (typeof e.message === 'string' && e.message.includes('OFFSET_OUT_OF_RANGE'))) return true;
  return Array.isArray(e.errors) && e.errors.some(isOffsetOutOfRange);
}

/**
 * The client routes a fetch by its own metadata; a partition without a leader there (its broker
 * just died) rejects with a UserError it does not retry (review 2026-12-07k finding 3). A leader is
 * elected again: the fetch path retries it.
 */
function isLeaderless(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown; errors?: unknown[] } | undefined;
  if (e === undefined || e === null) return false;
  if (e.code === 'PLT_KFK_USER' && typeof e.message === 'string' && e.message.startsWith('Cannot find broker with node id')) return true;
  return Array.isArray(e.errors) && e.errors.some(isLeaderless);
}

/** The partition's leader moved (the client refreshes its metadata before retrying). */
export function isLeaderMoved(error: unknown): boolean {
  const e = error as { apiId?: unknown; errors?: unknown[] } | undefined;
  if (e === undefined || e === null) return false;
  if (e.apiId === 'NOT_LEADER_OR_FOLLOWER' || e.apiId === 'FENCED_LEADER_EPOCH' || e.apiId === 'LEADER_NOT_AVAILABLE') return true;
  return Array.isArray(e.errors) && e.errors.some(isLeaderMoved);
}
