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
import { FetchLeaders, type Metadata } from './kafka-fetch-leaders.ts';
import { FetchPositions } from './kafka-fetch-positions.ts';
import { handOver, isLeaderMoved, isOffsetOutOfRange, isTransient, type FetchResponse, type FetchTopic } from './kafka-fetch-response.ts';
import { installLz4Decoder } from './kafka-lz4.ts';
import { untilAborted } from './until-aborted.ts';
import { commitPositions, type KafkaSourceOptions } from './kafka.ts';
import type { CommitPosition, PartitionRef, Source, SourceHandler } from './types.ts';
import { partitionKey } from './types.ts';

/** The consumer's public methods this adapter calls, with the parsed response's shape. */
interface FetchClient {
  readonly topics: { track(topic: string): boolean };
  joinGroup(options: object): Promise<unknown>;
  metadata(options: { topics: string[]; forceUpdate?: boolean }): Promise<Metadata>;
  fetch(options: { node: number; topics: FetchTopic[]; maxBytes: number; maxWaitTime: number }): Promise<FetchResponse>;
}
interface FetchLoop {
  done: Promise<void>;
}

/** How long to wait before asking again for a leader the metadata does not name yet. */
const leaderlessRetryMs = 250;
const backoffMs = (failures: number): number => Math.min(10_000, 250 * 2 ** failures);
/** The client's own retry delay; a fetch to a moved leader is retried soon, with fresh metadata. */
const retryDelayMs = (_client: unknown, operation: string, _attempt: number, _retries: number, error: unknown): number => (operation === 'fetch' && isLeaderMoved(error) ? 100 : 1_000);
const noop = (): void => undefined;

export class KafkaFetchSource implements Source {
  readonly #options: KafkaSourceOptions;
  readonly #consumer: Consumer;
  readonly #client: FetchClient;
  readonly #positions: FetchPositions;
  readonly #leaders = new FetchLeaders();
  /** The running loop of each leader node. */
  readonly #loops = new Map<number, FetchLoop>();
  #forceMetadata = false;
  /** Deliveries (and resets) one at a time, in the order the responses arrived. */
  #serial: Promise<unknown> = Promise.resolve();
  /** Handler failures in a row, for the whole source (each one resets every partition), and where the last one was. */
  #handlerFailures = 0;
  #failedAt: { readonly key: string; readonly next: bigint } | undefined;
  #woken = false;
  #wakeUp: (() => void) | undefined;
  /** Aborted by the run's signal, close() or a fatal error: every loop and wait of the run ends. */
  #halt = new AbortController();
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
      retryDelay: retryDelayMs,
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
    const halt = (this.#halt = new AbortController());
    const onAbort = (): void => this.#stop();
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted || this.#closing !== undefined) halt.abort();
    // A run starts afresh: a new handler is told what it owns, a failure of an earlier run is not its own.
    this.#fatal = undefined;
    this.#handlerFailures = 0;
    this.#failedAt = undefined;
    this.#positions.forget();
    this.#leaders.clear();
    const onJoin = (payload: { assignments?: GroupAssignment[] }): void => this.#applyAssignments(payload.assignments ?? this.#consumer.assignments ?? [], handler, true);
    this.#consumer.on('consumer:group:join', onJoin);
    try {
      await installLz4Decoder(this.#options.onDecoderFallback);
      await this.#supervise(handler, halt.signal);
    } catch (error) {
      if (!halt.signal.aborted) throw error;
    } finally {
      this.#stop();
      signal.removeEventListener('abort', onAbort);
      this.#consumer.off('consumer:group:join', onJoin);
      await Promise.all([...this.#loops.values()].map((loop) => loop.done));
    }
    const fatal = this.#failure();
    if (fatal !== undefined) throw fatal.error;
  }

  #failure(): { error: unknown } | undefined {
    return this.#fatal;
  }

  /**
   * Positions are resolved in the background, each partition on its own (FetchPositions); every
   * round starts the loops of the partitions that have a position and a leader, whatever the others.
   */
  async #supervise(handler: SourceHandler, halt: AbortSignal): Promise<void> {
    if (halt.aborted) return; // never join for a run that already ended
    for (const topic of this.#options.topics) this.#client.topics.track(topic);
    await untilAborted(this.#client.joinGroup({}), halt, 'joining the group');
    this.#sync(handler);
    const settled = (error: unknown, attempt: number): void => {
      if (error !== undefined && !halt.aborted) {
        if (!isTransient(error)) return this.#fail(error);
        this.#options.onError?.(error, attempt, error);
      }
      this.#wake();
    };
    for (let failures = 0, leaderless = false; !halt.aborted;) {
      this.#woken = false;
      const retryIn = this.#positions.resolveMissing(settled, backoffMs);
      try {
        leaderless = this.#readLeaders(await untilAborted(this.#metadata(leaderless), halt, 'reading metadata'));
        failures = 0;
      } catch (error) {
        if (halt.aborted) return;
        if (!isTransient(error)) throw error;
        this.#options.onError?.(error, ++failures, error);
        this.#forceMetadata = true;
        await sleep(backoffMs(failures), undefined, { signal: halt }).catch(noop);
        continue;
      }
      for (const node of this.#leaders.nodesToRead(this.#positions.next)) if (!this.#loops.has(node)) this.#startLoop(node, handler, halt);
      const wait = leaderless ? leaderlessRetryMs : undefined;
      await this.#waitForWake(retryIn === undefined ? wait : Math.min(retryIn, wait ?? retryIn));
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
   * partitions: the positions are those after the last record handed over. Each request is built
   * from the client's current leaders, so that a moved partition never makes it mixed.
   */
  async #fetchLoop(node: number, loop: FetchLoop, handler: SourceHandler, signal: AbortSignal): Promise<void> {
    try {
      for (let failures = 0; !signal.aborted;) {
        let failure: unknown;
        let attempt: number;
        let refs: readonly PartitionRef[] = [];
        let generation = this.#positions.generation;
        try {
          this.#readLeaders(await untilAborted(this.#metadata(false), signal, 'reading metadata'));
          generation = this.#positions.generation;
          const request = this.#leaders.requestFor(node, this.#positions.owned, this.#positions.next, this.#options.fetchMaxBytes);
          if (request === undefined) return;
          refs = request.refs;
          const response = await untilAborted(
            this.#client.fetch({ node, topics: request.topics, maxBytes: this.#options.fetchMaxBytes, maxWaitTime: this.#options.fetchMaxWaitMs }),
            signal,
            'fetching',
          );
          failure = await this.#serially(() => this.#deliverResponse(handler, signal, generation, response));
          attempt = this.#handlerFailures;
          if (failure === undefined) failures = 0;
        } catch (error) {
          if (signal.aborted) return;
          failure = error;
          attempt = ++failures;
          this.#forceMetadata = true; // a moved leader, a restarted broker
          if (isOffsetOutOfRange(error)) await this.#moveIntoLog(handler, signal, generation, refs);
        }
        if (failure === undefined || signal.aborted) continue;
        if (!isTransient(failure)) return this.#fail(failure);
        this.#options.onError?.(failure, attempt, failure);
        this.#wake();
        await sleep(backoffMs(attempt), undefined, { signal }).catch(noop);
      }
    } catch (error) {
      if (!signal.aborted) this.#fail(error);
    } finally {
      if (this.#loops.get(node) === loop) this.#loops.delete(node);
      this.#wake();
    }
  }

  /**
   * Hands a response over. A handler failure is returned after starting over from the committed
   * positions — always, even when an assignment change came meanwhile: the record that failed may
   * not be tracked (e.g. its schema load failed) while its partition's position is past it.
   */
  async #deliverResponse(handler: SourceHandler, signal: AbortSignal, generation: number, response: FetchResponse): Promise<unknown> {
    const positions = this.#positions;
    const stale = (): boolean => generation !== positions.generation || signal.aborted || this.#closing !== undefined;
    let key = '';
    try {
      for (const topicResponse of response.responses) {
        const topic = this.#leaders.topicOf(topicResponse.topicId);
        if (topic === undefined) continue;
        for (const partition of topicResponse.partitions) {
          key = partitionKey(topic, partition.partitionIndex);
          const handed = await handOver(handler, positions.next, key, topic, partition, stale);
          if (!handed) return undefined;
          this.#passedFailure(key);
        }
      }
      return undefined;
    } catch (error) {
      // The failures in a row end only when this partition reads past where it failed: another
      // partition's records say nothing of it.
      const at = positions.next.get(key);
      if (this.#failedAt?.key !== key || at === undefined || at > this.#failedAt.next) this.#failedAt = at === undefined ? undefined : { key, next: at };
      this.#handlerFailures++;
      if (this.#closing === undefined && !signal.aborted) this.#reset(handler);
      return error;
    }
  }

  #passedFailure(key: string): void {
    const failed = this.#failedAt;
    if (failed === undefined || failed.key !== key) return;
    const at = this.#positions.next.get(key);
    if (at === undefined || at <= failed.next) return;
    this.#failedAt = undefined;
    this.#handlerFailures = 0;
  }

  /** Starts over from the committed positions and tells the core (it forgets its in-memory progress). */
  #reset(handler: SourceHandler): void {
    this.#positions.startOver();
    handler.onReset();
    this.#wake();
  }

  /**
   * After OFFSET_OUT_OF_RANGE on one leader's partitions: into the log; a truncated log starts
   * over. The bounds are read outside the delivery queue (raced with the halt), then applied in
   * it unless the request is stale or the run ends.
   */
  async #moveIntoLog(handler: SourceHandler, signal: AbortSignal, generation: number, refs: readonly PartitionRef[]): Promise<void> {
    const bounds = await untilAborted(this.#positions.logBoundsOf(refs), signal, 'reading log bounds').catch(() => undefined);
    if (bounds === undefined) return;
    await this.#serially(() => {
      const stale = generation !== this.#positions.generation || signal.aborted || this.#closing !== undefined;
      if (!stale && this.#positions.moveIntoLog(refs, bounds)) this.#reset(handler);
      return Promise.resolve();
    });
  }

  /** The client's metadata: its cache, refreshed when a fetch failed since (or `force`). */
  #metadata(force: boolean): Promise<Metadata> {
    const forceUpdate = force || this.#forceMetadata;
    this.#forceMetadata = false;
    return this.#client.metadata({ topics: [...this.#options.topics], forceUpdate });
  }

  /** The leaders from the client's metadata; true when a partition has none (asked again soon). */
  #readLeaders(metadata: Metadata): boolean {
    return this.#leaders.read(metadata, this.#positions.owned, (node) => {
      if (!this.#loops.has(node)) this.#wake(); // the supervisor starts its loop
    });
  }

  #serially<T>(task: () => Promise<T>): Promise<T> {
    const turn = this.#serial.then(task);
    this.#serial = turn.catch(noop);
    return turn;
  }

  #wake(): void {
    this.#woken = true;
    this.#wakeUp?.();
  }

  /** Until #wake(), `ms` or the halt; at once when woken since the supervisor's round began. */
  async #waitForWake(ms: number | undefined): Promise<void> {
    if (this.#woken || this.#halt.signal.aborted) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.#wakeUp = resolve;
      if (ms !== undefined) timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.#wakeUp = undefined;
  }

  #fail(error: unknown): void {
    this.#fatal ??= { error };
    this.#stop();
  }

  #stop(): void {
    this.#halt.abort();
    this.#wake();
  }

  #sync(handler: SourceHandler): void {
    const assignments = this.#consumer.assignments;
    if (assignments !== null) this.#applyAssignments(assignments, handler, false);
  }

  #applyAssignments(assignments: readonly GroupAssignment[], handler: SourceHandler, rejoined: boolean): void {
    const generation = this.#positions.generation;
    const change = this.#positions.assign(assignments, rejoined);
    if (change !== undefined) {
      for (const ref of change.revoked) {
        const key = partitionKey(ref.topic, ref.partition);
        this.#leaders.forget(key);
        if (this.#failedAt?.key === key) {
          // Its failures in a row can no longer end by reading past them.
          this.#failedAt = undefined;
          this.#handlerFailures = 0;
        }
      }
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

  commit(positions: readonly CommitPosition[]): Promise<void> {
    return commitPositions(this.#consumer, positions);
  }

  close(): Promise<void> {
    this.#closing ??= this.#consumer.close();
    this.#stop();
    return this.#closing;
  }
}
