// Owns reading Kafka without the client's message stream (docs/design/kafka-fetch.md): the group
// membership stays the client's (joinGroup, heartbeats, rejoins), and records are read with
// consumer.fetch() — one Fetch per leader node at a time — and handed to the core straight from the
// parsed batches: no Message object, headers Map, bound commit or stream buffer per record.
// WORK IN PROGRESS (branch wip/kafka-fetch): classic group protocol only; not selected by default.
import { setTimeout as sleep } from 'node:timers/promises';
import { Consumer, type GroupAssignment } from '@platformatic/kafka';
import { InserterError } from '../errors/inserter-error.ts';
import { handleClientErrors } from './kafka-client-errors.ts';
import { kafkaClientOptions } from './kafka-connection.ts';
import { installLz4Decoder } from './kafka-lz4.ts';
import type { KafkaSourceOptions } from './kafka.ts';
import type { CommitPosition, PartitionRef, Source, SourceHandler, SourceRecord } from './types.ts';
import { partitionKey } from './types.ts';

/** What the client's public API gives below the stream (2.12.1), typed as this adapter reads it. */
interface ParsedRecord {
  readonly offsetDelta: number;
  readonly timestampDelta: bigint | number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Array<[Buffer, Buffer]>;
}
interface ParsedBatch {
  readonly firstOffset: bigint;
  readonly partitionLeaderEpoch: number;
  readonly producerId: bigint;
  readonly firstTimestamp: bigint;
  readonly lastOffsetDelta: number;
  readonly attributes: number;
  readonly records: readonly ParsedRecord[];
}
interface PartitionResponse {
  readonly partitionIndex: number;
  readonly records?: readonly ParsedBatch[] | null;
  readonly abortedTransactions?: ReadonlyArray<{ readonly producerId: bigint; readonly firstOffset: bigint }> | null;
}
interface FetchResponse {
  readonly responses: ReadonlyArray<{ readonly topicId: string; readonly partitions: readonly PartitionResponse[] }>;
}
interface TopicMetadata {
  readonly id: string;
  readonly partitions: ReadonlyArray<{ readonly leader: number; readonly leaderEpoch: number } | undefined>;
}
interface FetchClient {
  readonly topics: { track(topic: string): boolean };
  joinGroup(options: object): Promise<unknown>;
  metadata(options: { topics: string[]; forceUpdate?: boolean }): Promise<{ topics: Map<string, TopicMetadata> }>;
  fetch(options: object): Promise<FetchResponse>;
}

/** A control batch (transaction markers): never records of the topic. */
const IS_CONTROL = 0x20;
/** A batch written inside a transaction. */
const IS_TRANSACTIONAL = 0x10;
const noHeaders: SourceRecord['headers'] = Object.freeze([]);

export class KafkaFetchSource implements Source {
  readonly #options: KafkaSourceOptions;
  readonly #consumer: Consumer;
  readonly #client: FetchClient;
  #owned = new Map<string, PartitionRef>();
  /** The next offset to read of each owned partition whose position is known. */
  readonly #next = new Map<string, bigint>();
  /** The group's committed offset of each owned partition, read when it was assigned. */
  readonly #committedAtAssignment = new Map<string, Promise<bigint | undefined>>();
  /** Where an owned partition without a position resumes: the committed offset read at assignment, after a rewind or an error. */
  readonly #resumeFrom = new Map<string, Promise<bigint | undefined>>();
  /** Bumped by every assignment change and rewind: a response requested before it is not delivered. */
  #generation = 0;
  #forceMetadata = false;
  #closing: Promise<void> | undefined;

  constructor(options: KafkaSourceOptions) {
    if (options.groupProtocol === 'consumer') throw new InserterError('INSERTER_CONFIG_INVALID', 'the fetch path supports the classic group protocol only');
    this.#options = options;
    this.#consumer = new Consumer({
      clientId: options.clientId,
      groupId: options.groupId,
      ...kafkaClientOptions(options),
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: Math.min(3_000, Math.floor(options.sessionTimeoutMs / 3)),
      rebalanceTimeout: options.rebalanceTimeoutMs ?? Math.max(options.sessionTimeoutMs, 60_000),
      maxBytes: options.fetchMaxBytes,
      maxWaitTime: options.fetchMaxWaitMs,
      autocommit: false,
      retries: 10,
      retryDelay: 1_000,
    });
    this.#client = asFetchClient(this.#consumer);
    handleClientErrors(this.#consumer, (error) => options.onError?.(error, 0, error));
  }

  groupCoordinator(): number | null {
    return this.#consumer.coordinatorId;
  }

  async run(handler: SourceHandler, signal: AbortSignal): Promise<void> {
    await installLz4Decoder(this.#options.onDecoderFallback);
    const onJoin = (payload: { assignments?: GroupAssignment[] }): void => this.#applyAssignments(payload.assignments ?? this.#consumer.assignments ?? [], handler, true);
    this.#consumer.on('consumer:group:join', onJoin);
    try {
      for (const topic of this.#options.topics) this.#client.topics.track(topic);
      await this.#client.joinGroup({});
      this.#sync(handler);
      for (let failures = 0; !signal.aborted;) {
        try {
          await this.#round(handler, signal);
          failures = 0;
        } catch (error) {
          if (signal.aborted || this.#closing !== undefined) return;
          if (!isTransient(error)) throw error;
          failures++;
          this.#options.onError?.(error, failures, error);
          this.#forceMetadata = true;
          if (isOffsetOutOfRange(error)) await this.#clampToLogStart();
          else {
            // As the stream path restarts: start over from the committed positions (a record handed
            // over may not be tracked, e.g. its schema load failed), and tell the core.
            this.#generation++;
            for (const [key, ref] of this.#owned) this.#resumeFrom.set(key, this.#readCommitted(ref));
            this.#next.clear();
            handler.onReset();
          }
          await sleep(Math.min(10_000, 250 * 2 ** failures), undefined, { signal }).catch(() => undefined);
        }
      }
    } finally {
      this.#consumer.off('consumer:group:join', onJoin);
    }
  }

  /** One Fetch to each leader of owned partitions, then their records, in order per partition. */
  async #round(handler: SourceHandler, signal: AbortSignal): Promise<void> {
    const generation = this.#generation;
    await this.#resolvePositions();
    const topics = [...this.#options.topics];
    const metadata = await this.#client.metadata({ topics, forceUpdate: this.#forceMetadata });
    this.#forceMetadata = false;
    if (generation !== this.#generation) return;
    const byNode = new Map<number, Array<{ topicId: string; partitions: object[] }>>();
    const topicOf = new Map<string, string>();
    for (const [key, ref] of this.#owned) {
      const fetchOffset = this.#next.get(key);
      const topic = metadata.topics.get(ref.topic);
      const partition = topic?.partitions[ref.partition];
      if (fetchOffset === undefined || topic === undefined || partition === undefined) continue;
      topicOf.set(topic.id, ref.topic);
      let requests = byNode.get(partition.leader);
      if (requests === undefined) byNode.set(partition.leader, (requests = []));
      const epoch = partition.leaderEpoch;
      requests.push({ topicId: topic.id, partitions: [{ partition: ref.partition, fetchOffset, partitionMaxBytes: this.#options.fetchMaxBytes, currentLeaderEpoch: epoch, lastFetchedEpoch: epoch }] });
    }
    if (byNode.size === 0) {
      // Nothing owned (or no position yet): wait a little for an assignment.
      await sleep(Math.min(250, this.#options.fetchMaxWaitMs), undefined, { signal }).catch(() => undefined);
      return;
    }
    const responses = await Promise.all(
      [...byNode].map(([node, requests]) => this.#client.fetch({ node, topics: requests, maxBytes: this.#options.fetchMaxBytes, maxWaitTime: this.#options.fetchMaxWaitMs })),
    );
    for (const response of responses) {
      for (const topicResponse of response.responses) {
        const topic = topicOf.get(topicResponse.topicId);
        if (topic === undefined) continue;
        for (const { partitionIndex: partition, records: batches, abortedTransactions } of topicResponse.partitions) {
          if (batches === undefined || batches === null) continue;
          if (!(await this.#deliver(handler, signal, generation, topic, partition, batches, abortedTransactions ?? []))) return;
        }
      }
    }
  }

  /**
   * Hands a partition's batches to the core, its position following each record handed over; false
   * when a rewind or an assignment change made the rest stale. Records of aborted transactions are
   * skipped as Kafka's own consumer does (the client's filter misses some: review 2026-12-07i).
   */
  async #deliver(
    handler: SourceHandler,
    signal: AbortSignal,
    generation: number,
    topic: string,
    partition: number,
    batches: readonly ParsedBatch[],
    abortedTransactions: ReadonlyArray<{ readonly producerId: bigint; readonly firstOffset: bigint }>,
  ): Promise<boolean> {
    const key = partitionKey(topic, partition);
    const aborted = [...abortedTransactions].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
    const abortedProducers = new Set<bigint>();
    let nextAborted = 0;
    for (const batch of batches) {
      if (generation !== this.#generation || this.#closing !== undefined) return false;
      const from = this.#next.get(key);
      if (from === undefined) return true; // not requested (or no longer owned): skip this partition only
      const end = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n;
      while (nextAborted < aborted.length && (aborted[nextAborted] as { firstOffset: bigint }).firstOffset < end) abortedProducers.add((aborted[nextAborted++] as { producerId: bigint }).producerId);
      if ((batch.attributes & IS_CONTROL) !== 0) {
        if (isAbortMarker(batch)) abortedProducers.delete(batch.producerId);
        if (end > from) this.#next.set(key, end);
        continue;
      }
      if (end <= from) continue; // a batch read already
      if ((batch.attributes & IS_TRANSACTIONAL) !== 0 && abortedProducers.has(batch.producerId)) {
        this.#next.set(key, end);
        continue;
      }
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
        this.#next.set(key, offset + 1n);
        if (pending !== undefined) {
          await pending;
          if (generation !== this.#generation) return false;
        }
        if (signal.aborted || this.#closing !== undefined) return false;
      }
      this.#next.set(key, end);
    }
    return true;
  }

  /** Owned partitions without a position get the committed one (the log start where none). */
  async #resolvePositions(): Promise<void> {
    const generation = this.#generation;
    const missing = [...this.#owned].filter(([key]) => !this.#next.has(key));
    if (missing.length === 0) return;
    const starts = await this.#consumer.listOffsets({ topics: [...new Set(missing.map(([, ref]) => ref.topic))], timestamp: -2n });
    for (const [key, ref] of missing) {
      const read = this.#resumeFrom.get(key) ?? this.#readCommitted(ref);
      let committed: bigint | undefined;
      try {
        committed = await read;
      } catch (error) {
        // Never the log start instead: read it again next round.
        if (this.#resumeFrom.get(key) === read) this.#resumeFrom.set(key, this.#readCommitted(ref));
        throw error;
      }
      if (generation !== this.#generation || !this.#owned.has(key)) return;
      const start = starts.get(ref.topic)?.[ref.partition] ?? 0n;
      this.#next.set(key, committed !== undefined && committed >= 0n ? (committed > start ? committed : start) : start);
    }
  }

  /** After OFFSET_OUT_OF_RANGE: positions below the log start move to it (the stream's `earliest` fallback). */
  async #clampToLogStart(): Promise<void> {
    const topics = [...new Set([...this.#owned.values()].map((ref) => ref.topic))];
    if (topics.length === 0) return;
    const starts = await this.#consumer.listOffsets({ topics, timestamp: -2n }).catch(() => undefined);
    const ends = await this.#consumer.listOffsets({ topics }).catch(() => undefined);
    if (starts === undefined || ends === undefined) return;
    for (const [key, ref] of this.#owned) {
      const start = starts.get(ref.topic)?.[ref.partition];
      const end = ends.get(ref.topic)?.[ref.partition];
      const next = this.#next.get(key);
      // Out of range either way: the log start, as the stream's `earliest` fallback.
      if (start !== undefined && next !== undefined && (next < start || (end !== undefined && next > end))) this.#next.set(key, start);
    }
  }

  #sync(handler: SourceHandler): void {
    const assignments = this.#consumer.assignments;
    if (assignments !== null) this.#applyAssignments(assignments, handler, false);
  }

  /**
   * A join (`rejoined`) with the same partitions still resumes them from the committed positions, as
   * the client's stream does: another member may have owned and committed them meanwhile. The core
   * drops what it tracked already.
   */
  #applyAssignments(assignments: readonly GroupAssignment[], handler: SourceHandler, rejoined: boolean): void {
    const next = new Map<string, PartitionRef>();
    for (const { topic, partitions } of assignments) {
      for (const partition of partitions) next.set(partitionKey(topic, partition), { topic, partition });
    }
    const revoked = [...this.#owned].filter(([key]) => !next.has(key)).map(([, ref]) => ref);
    const assigned = [...next].filter(([key]) => !this.#owned.has(key)).map(([, ref]) => ref);
    if (revoked.length === 0 && assigned.length === 0) {
      if (!rejoined || next.size === 0) return;
      this.#generation++;
      for (const [key, ref] of this.#owned) this.#resumeFrom.set(key, this.#readCommitted(ref));
      this.#next.clear();
      return;
    }
    this.#owned = next;
    this.#generation++;
    for (const ref of revoked) {
      const key = partitionKey(ref.topic, ref.partition);
      this.#committedAtAssignment.delete(key);
      this.#resumeFrom.delete(key);
      this.#next.delete(key);
    }
    for (const ref of assigned) {
      const key = partitionKey(ref.topic, ref.partition);
      const read = this.#readCommitted(ref);
      this.#committedAtAssignment.set(key, read);
      this.#resumeFrom.set(key, read);
    }
    if (revoked.length > 0) handler.onRevoked(revoked);
    if (assigned.length > 0) handler.onAssigned(assigned);
  }

  /**
   * Every owned partition is read again from its committed position; `onSwitch` marks the moment.
   * A read that fails fails the rewind (never the log start instead); a partition assigned again
   * meanwhile keeps the position read at that assignment.
   */
  async rewind(onSwitch: () => void): Promise<void> {
    const owned = [...this.#owned];
    const before = new Map(owned.map(([key]) => [key, this.#committedAtAssignment.get(key)]));
    const committed = await Promise.all(owned.map(([, ref]) => this.#committed(ref)));
    this.#generation++;
    owned.forEach(([key], i) => {
      if (!this.#owned.has(key) || this.#committedAtAssignment.get(key) !== before.get(key)) return;
      this.#resumeFrom.set(key, Promise.resolve(committed[i]));
    });
    this.#next.clear(); // every position is resolved again from the committed one before the next fetch
    onSwitch();
  }

  /** The committed offset of a partition, a rejection kept from being unhandled (it is awaited later). */
  #readCommitted(ref: PartitionRef): Promise<bigint | undefined> {
    const read = this.#committed(ref);
    read.catch(() => undefined);
    return read;
  }

  async repairPosition(ref: PartitionRef): Promise<CommitPosition | undefined> {
    const atAssignment = await this.#committedAtAssignment.get(partitionKey(ref.topic, ref.partition))?.catch(() => undefined);
    if (atAssignment === undefined || atAssignment < 0n) return undefined;
    const now = await this.#committed(ref);
    return now !== undefined && now < atAssignment ? { ...ref, offset: atAssignment, epoch: -1 } : undefined;
  }

  async #committed(ref: PartitionRef): Promise<bigint | undefined> {
    const offsets = await this.#consumer.listCommittedOffsets({ topics: [{ topic: ref.topic, partitions: [ref.partition] }] });
    return offsets.get(ref.topic)?.[ref.partition];
  }

  async commit(positions: readonly CommitPosition[]): Promise<void> {
    if (positions.length === 0) return;
    try {
      await this.#consumer.commit({ offsets: positions.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.offset, leaderEpoch: p.epoch })) });
    } catch (cause) {
      throw new InserterError('INSERTER_SOURCE_COMMIT_FAILED', `offset commit failed: ${(cause as Error).message}`, { cause, retryable: true });
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#consumer.close();
    return this.#closing;
  }
}

/** An abort marker: a control batch whose record key says ABORT (type 0). */
function isAbortMarker(batch: ParsedBatch): boolean {
  const key = batch.records[0]?.key;
  return key !== undefined && key !== null && key.length >= 4 && key.readInt16BE(2) === 0;
}

/** The consumer as this adapter calls it: its promise forms, with the parsed response's shape. */
function asFetchClient(consumer: Consumer): FetchClient {
  const client: unknown = consumer;
  return client as FetchClient;
}

function isTransient(error: unknown): boolean {
  const e = error as { canRetry?: unknown; errors?: unknown[] } | undefined;
  if (e === undefined || e === null) return false;
  if (e.canRetry === false) return isOffsetOutOfRange(error);
  return !(Array.isArray(e.errors) && e.errors.some((inner) => (inner as { canRetry?: unknown }).canRetry === false && !isOffsetOutOfRange(inner)));
}

function isOffsetOutOfRange(error: unknown): boolean {
  const e = error as { apiCode?: unknown; errors?: unknown[]; message?: unknown } | undefined;
  if (e === undefined || e === null) return false;
  if (e.apiCode === 1 || (typeof e.message === 'string' && e.message.includes('OFFSET_OUT_OF_RANGE'))) return true;
  return Array.isArray(e.errors) && e.errors.some(isOffsetOutOfRange);
}
