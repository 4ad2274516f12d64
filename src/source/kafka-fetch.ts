// Owns reading Kafka without the client's message stream (docs/design/kafka-fetch.md): the group
// membership stays the client's (joinGroup, heartbeats, rejoins), and records are read with
// consumer.fetch() — one loop per leader node, so a failing broker stalls only the partitions it
// leads — and handed to the core straight from the parsed batches: no Message object, headers Map,
// bound commit or stream buffer per record. Deliveries of all loops are serialized: the core sees
// one record at a time, in order per partition. Classic group protocol only.
import { setTimeout as sleep } from 'node:timers/promises';
import { Consumer, type GroupAssignment } from '@platformatic/kafka';
import { InserterError } from '../errors/inserter-error.ts';
import { handleClientErrors } from './kafka-client-errors.ts';
import { kafkaClientOptions } from './kafka-connection.ts';
import { FetchPositions } from './kafka-fetch-positions.ts';
import { AbortedFilter, batchEnd, isControl, isOffsetOutOfRange, isTransient, type FetchResponse, type FetchTopic, type ParsedBatch, type PartitionResponse } from './kafka-fetch-response.ts';
import { installLz4Decoder } from './kafka-lz4.ts';
import type { KafkaSourceOptions } from './kafka.ts';
import type { CommitPosition, PartitionRef, Source, SourceHandler, SourceRecord } from './types.ts';
import { partitionKey } from './types.ts';

interface TopicMetadata {
  readonly id: string;
  readonly partitions: ReadonlyArray<{ readonly leader: number; readonly leaderEpoch: number } | undefined>;
}
/** The consumer's public methods this adapter calls, with the parsed response's shape. */
interface FetchClient {
  readonly topics: { track(topic: string): boolean };
  joinGroup(options: object): Promise<unknown>;
  metadata(options: { topics: string[]; forceUpdate?: boolean }): Promise<{ topics: Map<string, TopicMetadata> }>;
  fetch(options: { node: number; topics: FetchTopic[]; maxBytes: number; maxWaitTime: number }): Promise<FetchResponse>;
}
interface Leader {
  readonly node: number;
  readonly epoch: number;
  readonly topicId: string;
}
interface FetchLoop {
  done: Promise<void>;
}

const noHeaders: SourceRecord['headers'] = Object.freeze([]);
/** How long to wait before asking again for a leader the metadata does not name yet. */
const leaderlessRetryMs = 250;
const backoffMs = (failures: number): number => Math.min(10_000, 250 * 2 ** failures);

export class KafkaFetchSource implements Source {
  readonly #options: KafkaSourceOptions;
  readonly #consumer: Consumer;
  readonly #client: FetchClient;
  readonly #positions: FetchPositions;
  /** The leader of each owned partition, from the last metadata read. */
  readonly #leaders = new Map<string, Leader>();
  readonly #topicOf = new Map<string, string>();
  /** The running loop of each leader node. */
  readonly #loops = new Map<number, FetchLoop>();
  #forceMetadata = false;
  /** Deliveries (and resets) one at a time, in the order the responses arrived. */
  #serial: Promise<unknown> = Promise.resolve();
  #woken = false;
  #wakeUp: (() => void) | undefined;
  #fatal: { error: unknown } | undefined;
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
    const client: unknown = this.#consumer;
    this.#client = client as FetchClient;
    this.#positions = new FetchPositions(this.#consumer);
    handleClientErrors(this.#consumer, (error) => options.onError?.(error, 0, error));
  }

  groupCoordinator(): number | null {
    return this.#consumer.coordinatorId;
  }

  /**
   * Joins the group, then keeps one fetch loop running per leader node with partitions to read:
   * resolves positions, reads leaders, starts loops, and waits until something changes (an
   * assignment, a rewind, a reset, a loop ending or failing).
   */
  async run(handler: SourceHandler, signal: AbortSignal): Promise<void> {
    await installLz4Decoder(this.#options.onDecoderFallback);
    const onJoin = (payload: { assignments?: GroupAssignment[] }): void => this.#applyAssignments(payload.assignments ?? this.#consumer.assignments ?? [], handler, true);
    const loops = new AbortController();
    const stopLoops = (): void => {
      loops.abort();
      this.#wake();
    };
    signal.addEventListener('abort', stopLoops, { once: true });
    this.#consumer.on('consumer:group:join', onJoin);
    try {
      for (const topic of this.#options.topics) this.#client.topics.track(topic);
      await this.#client.joinGroup({});
      this.#sync(handler);
      for (let failures = 0; !signal.aborted && this.#closing === undefined;) {
        if (this.#fatal !== undefined) throw this.#fatal.error;
        this.#woken = false;
        let leaderless: boolean;
        try {
          await this.#positions.resolve();
          leaderless = await this.#readLeaders();
          failures = 0;
        } catch (error) {
          if (signal.aborted || this.#closing !== undefined) return;
          if (!isTransient(error)) throw error;
          this.#options.onError?.(error, ++failures, error);
          this.#forceMetadata = true;
          await sleep(backoffMs(failures), undefined, { signal }).catch(() => undefined);
          continue;
        }
        for (const [key, leader] of this.#leaders) {
          if (this.#positions.next.has(key) && !this.#loops.has(leader.node)) this.#startLoop(leader.node, handler, loops.signal);
        }
        await this.#waitForWake(leaderless ? leaderlessRetryMs : undefined);
      }
    } finally {
      stopLoops();
      signal.removeEventListener('abort', stopLoops);
      this.#consumer.off('consumer:group:join', onJoin);
      await Promise.all([...this.#loops.values()].map((loop) => loop.done));
    }
  }

  #startLoop(node: number, handler: SourceHandler, signal: AbortSignal): void {
    const loop: FetchLoop = { done: Promise.resolve() };
    this.#loops.set(node, loop);
    loop.done = this.#fetchLoop(node, loop, handler, signal);
  }

  /**
   * Fetches from one leader node, then hands the response over, until the node leads nothing with
   * a position. A failed fetch is retried with a backoff here, without touching other nodes'
   * partitions: the positions are those after the last record handed over.
   */
  async #fetchLoop(node: number, loop: FetchLoop, handler: SourceHandler, signal: AbortSignal): Promise<void> {
    try {
      for (let failures = 0; !signal.aborted && this.#closing === undefined;) {
        const generation = this.#positions.generation;
        const topics = this.#requestFor(node);
        if (topics === undefined) return;
        let failure: unknown;
        try {
          const response = await this.#client.fetch({ node, topics, maxBytes: this.#options.fetchMaxBytes, maxWaitTime: this.#options.fetchMaxWaitMs });
          failure = await this.#serially(() => this.#deliverResponse(handler, signal, generation, response));
        } catch (error) {
          failure = error;
          this.#forceMetadata = true; // a moved leader, a restarted broker
          if (isOffsetOutOfRange(error) && !signal.aborted) await this.#serially(() => this.#moveIntoLog(handler));
        }
        if (failure === undefined) {
          failures = 0;
          continue;
        }
        if (signal.aborted || this.#closing !== undefined) return;
        if (!isTransient(failure)) {
          this.#fatal ??= { error: failure };
          return;
        }
        this.#options.onError?.(failure, ++failures, failure);
        this.#wake();
        await sleep(backoffMs(failures), undefined, { signal }).catch(() => undefined);
      }
    } catch (error) {
      this.#fatal ??= { error };
    } finally {
      if (this.#loops.get(node) === loop) this.#loops.delete(node);
      this.#wake();
    }
  }

  /** The Fetch request for one node: its owned partitions with a position; undefined when none. */
  #requestFor(node: number): FetchTopic[] | undefined {
    let topics: Map<string, FetchTopic> | undefined;
    for (const [key, leader] of this.#leaders) {
      const fetchOffset = this.#positions.next.get(key);
      const ref = this.#positions.owned.get(key);
      if (leader.node !== node || fetchOffset === undefined || ref === undefined) continue;
      topics ??= new Map();
      let topic = topics.get(leader.topicId);
      if (topic === undefined) topics.set(leader.topicId, (topic = { topicId: leader.topicId, partitions: [] }));
      const epoch = leader.epoch;
      topic.partitions.push({ partition: ref.partition, fetchOffset, partitionMaxBytes: this.#options.fetchMaxBytes, currentLeaderEpoch: epoch, lastFetchedEpoch: epoch });
    }
    return topics === undefined ? undefined : [...topics.values()];
  }

  /**
   * Hands a response over; returns the handler's failure, after starting over from the committed
   * positions (a record handed over may not be tracked, e.g. its schema load failed), as the stream
   * path restarts.
   */
  async #deliverResponse(handler: SourceHandler, signal: AbortSignal, generation: number, response: FetchResponse): Promise<unknown> {
    try {
      for (const topicResponse of response.responses) {
        const topic = this.#topicOf.get(topicResponse.topicId);
        if (topic === undefined) continue;
        for (const partition of topicResponse.partitions) {
          if (!(await this.#deliver(handler, signal, generation, topic, partition))) return undefined;
        }
      }
      return undefined;
    } catch (error) {
      if (generation === this.#positions.generation && this.#closing === undefined) this.#reset(handler);
      return error;
    }
  }

  /**
   * Hands a partition's batches to the core, its position following each record handed over; false
   * when a rewind, a reset or an assignment change made the rest stale.
   */
  async #deliver(handler: SourceHandler, signal: AbortSignal, generation: number, topic: string, response: PartitionResponse): Promise<boolean> {
    const batches: readonly ParsedBatch[] | null | undefined = response.records;
    if (batches === undefined || batches === null) return true;
    const partition = response.partitionIndex;
    const key = partitionKey(topic, partition);
    const positions = this.#positions;
    const next = positions.next;
    const aborted = response.abortedTransactions;
    const filter = aborted === undefined || aborted === null || aborted.length === 0 ? undefined : new AbortedFilter(aborted);
    for (const batch of batches) {
      if (generation !== positions.generation || this.#closing !== undefined) return false;
      const from = next.get(key);
      if (from === undefined) return true; // not requested (or no longer owned): skip this partition only
      const end = batchEnd(batch);
      if (filter !== undefined ? filter.skips(batch, end) : isControl(batch)) {
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
        if (pending !== undefined) {
          await pending;
          if (generation !== positions.generation) return false;
        }
        if (signal.aborted || this.#closing !== undefined) return false;
      }
      next.set(key, end); // past a compacted batch's removed last records
    }
    return true;
  }

  /** Starts over from the committed positions and tells the core (it forgets its in-memory progress). */
  #reset(handler: SourceHandler): void {
    this.#positions.startOver();
    handler.onReset();
    this.#wake();
  }

  /** After OFFSET_OUT_OF_RANGE: into the log's bounds; a truncated log (positions above its end) starts over. */
  async #moveIntoLog(handler: SourceHandler): Promise<void> {
    if (await this.#positions.moveIntoLog()) this.#reset(handler);
  }

  /** The leader of every owned partition; true when one has none known yet (asked again soon). */
  async #readLeaders(): Promise<boolean> {
    const forceUpdate = this.#forceMetadata;
    this.#forceMetadata = false;
    const metadata = await this.#client.metadata({ topics: [...this.#options.topics], forceUpdate });
    this.#leaders.clear();
    let leaderless = false;
    for (const [key, ref] of this.#positions.owned) {
      const topic = metadata.topics.get(ref.topic);
      const partition = topic?.partitions[ref.partition];
      if (topic === undefined || partition === undefined || partition.leader < 0) {
        leaderless = true;
        continue;
      }
      this.#topicOf.set(topic.id, ref.topic);
      this.#leaders.set(key, { node: partition.leader, epoch: partition.leaderEpoch, topicId: topic.id });
    }
    if (leaderless) this.#forceMetadata = true;
    return leaderless;
  }

  #serially<T>(task: () => Promise<T>): Promise<T> {
    const turn = this.#serial.then(task);
    this.#serial = turn.catch(() => undefined);
    return turn;
  }

  #wake(): void {
    this.#woken = true;
    this.#wakeUp?.();
  }

  /** Until #wake() (or `ms`); at once when woken since the supervisor's round began. */
  async #waitForWake(ms: number | undefined): Promise<void> {
    if (this.#woken) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.#wakeUp = resolve;
      if (ms !== undefined) timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.#wakeUp = undefined;
  }

  #sync(handler: SourceHandler): void {
    const assignments = this.#consumer.assignments;
    if (assignments !== null) this.#applyAssignments(assignments, handler, false);
  }

  #applyAssignments(assignments: readonly GroupAssignment[], handler: SourceHandler, rejoined: boolean): void {
    const generation = this.#positions.generation;
    const change = this.#positions.assign(assignments, rejoined);
    if (change !== undefined) {
      for (const ref of change.revoked) this.#leaders.delete(partitionKey(ref.topic, ref.partition));
      if (change.revoked.length > 0) handler.onRevoked(change.revoked);
      if (change.assigned.length > 0) handler.onAssigned(change.assigned);
    }
    if (this.#positions.generation !== generation) this.#wake();
  }

  /** Every owned partition is read again from its committed position; `onSwitch` marks the moment. */
  async rewind(onSwitch: () => void): Promise<void> {
    await this.#positions.rewind();
    onSwitch();
    this.#wake();
  }

  repairPosition(ref: PartitionRef): Promise<CommitPosition | undefined> {
    return this.#positions.repair(ref);
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
    this.#wake();
    return this.#closing;
  }
}
