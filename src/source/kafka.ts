// Owns consuming from Kafka with @platformatic/kafka: group membership, assignment diffs, manual
// offset commits. Nothing is auto-committed: offsets move only when the core says records are resolved.
import { setTimeout as sleep } from 'node:timers/promises';
import { Consumer, type GroupAssignment, type Message, type MessagesStream } from '@platformatic/kafka';
import { InserterError } from '../errors/inserter-error.ts';
import { handleClientErrors } from './kafka-client-errors.ts';
import { kafkaClientOptions, type KafkaConnection } from './kafka-connection.ts';
import { installLz4Decoder } from './kafka-lz4.ts';
import type { CommitPosition, PartitionRef, Source, SourceHandler, SourceRecord } from './types.ts';
import { partitionKey } from './types.ts';

export interface KafkaSourceOptions {
  brokers: readonly string[];
  /** TLS and SASL (source/kafka-connection.ts); none: plaintext. */
  connection?: KafkaConnection;
  clientId: string;
  groupId: string;
  topics: readonly string[];
  fetchMaxBytes: number;
  fetchMaxWaitMs: number;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs?: number;
  groupProtocol?: 'classic' | 'consumer';
  /** Told about each failed attempt to resume after the broker went away. */
  onError?: (error: unknown, attempt: number, cause: unknown) => void;
  /** Told once if LZ4 batches go to the Kafka client's own, slower decoder from then on (source/kafka-lz4.ts). */
  onDecoderFallback?: (error: unknown) => void;
}

export class KafkaSource implements Source {
  readonly #options: KafkaSourceOptions;
  readonly #consumer: Consumer;
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  #owned = new Map<string, PartitionRef>();
  /** The group's committed offset of each owned partition, read when it was assigned. */
  readonly #committedAtAssignment = new Map<string, Promise<bigint | undefined>>();
  #closing: Promise<void> | undefined;

  constructor(options: KafkaSourceOptions) {
    this.#options = options;
    const group =
      options.groupProtocol === 'consumer'
        ? { groupProtocol: 'consumer' as const, rebalanceTimeout: options.rebalanceTimeoutMs ?? Math.max(options.sessionTimeoutMs, 60_000) }
        : {
            sessionTimeout: options.sessionTimeoutMs,
            heartbeatInterval: Math.min(3_000, Math.floor(options.sessionTimeoutMs / 3)),
            rebalanceTimeout: options.rebalanceTimeoutMs ?? Math.max(options.sessionTimeoutMs, 60_000),
          };
    this.#consumer = new Consumer({
      clientId: options.clientId,
      groupId: options.groupId,
      ...kafkaClientOptions(options),
      ...group,
      maxBytes: options.fetchMaxBytes,
      maxWaitTime: options.fetchMaxWaitMs,
      autocommit: false,
      // Ride out a broker restart inside the client before the stream has to be rebuilt.
      retries: 10,
      retryDelay: 1_000,
    });
    handleClientErrors(this.#consumer, (error) => options.onError?.(error, 0, error));
  }

  /** The group coordinator's node id once the consumer found it (ledger transactions commit positions there). */
  groupCoordinator(): number | null {
    return this.#consumer.coordinatorId;
  }

  async run(handler: SourceHandler, signal: AbortSignal): Promise<void> {
    await installLz4Decoder(this.#options.onDecoderFallback); // never rejects: without it the client's own decoder stays
    const onJoin = (payload: { assignments?: GroupAssignment[] }): void => this.#applyAssignments(payload.assignments ?? this.#consumer.assignments ?? [], handler);
    this.#consumer.on('consumer:group:join', onJoin);
    // With the KIP-848 protocol assignments change without a join event: follow consumer.assignments.
    const follow = setInterval(() => this.#sync(handler), 250);
    this.#stream = await this.#consume();
    // Stopping fetches keeps the group membership, so resolved positions can still be committed.
    const stop = (): void => void this.#stream?.close().catch(() => undefined);
    signal.addEventListener('abort', stop, { once: true });
    try {
      while (!signal.aborted) {
        const stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> = this.#stream;
        try {
          await this.#deliver(stream, handler, signal);
        } catch (error) {
          if (stream !== this.#stream) continue; // the old stream of a rewind
          if (signal.aborted || !isTransient(error)) throw error;
          // The broker went away (a restart, a network fault): start over from the committed
          // positions once it answers again. Nothing was committed past what is resolved.
          await this.#restart(handler, error, signal);
          continue;
        }
        if (stream === this.#stream) break; // ended without a replacement: closed
      }
    } finally {
      clearInterval(follow);
      signal.removeEventListener('abort', stop);
      this.#consumer.off('consumer:group:join', onJoin);
    }
  }

  /**
   * Hands every message of `stream` to the handler until the stream ends, fails, is replaced by a
   * rewind or the signal fires. Messages already buffered are read synchronously (no promise per
   * record); the loop waits only when the buffer is empty or the handler applies backpressure. The
   * stream's events are listened to for the whole call, so an error while the handler applies
   * backpressure is kept and thrown, never left unhandled.
   */
  async #deliver(stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>, handler: SourceHandler, signal: AbortSignal): Promise<void> {
    const events = new StreamEvents(stream);
    try {
      let lastTopic = '';
      let lastPartition = -1;
      let owned = this.#owned;
      for (;;) {
        if (stream !== this.#stream) return; // replaced by a rewind: its remaining records are stale
        if (events.error !== undefined) throw events.error;
        const message = stream.read() as Message<Buffer, Buffer, Buffer, Buffer> | null;
        if (message === null) {
          if (stream.errored !== null) throw stream.errored;
          if (events.ended || stream.readableEnded || stream.destroyed) return;
          await events.next();
          continue;
        }
        // Ownership is checked once per run of records of an owned partition (until the owned set
        // changes); a record of a partition not (yet) owned checks again, as every record did.
        if (message.partition !== lastPartition || message.topic !== lastTopic || owned !== this.#owned) {
          const key = partitionKey(message.topic, message.partition);
          if (!this.#owned.has(key)) this.#sync(handler);
          owned = this.#owned;
          const known = owned.has(key);
          lastTopic = known ? message.topic : '';
          lastPartition = known ? message.partition : -1;
        }
        const pending = handler.onRecord(toRecord(message));
        if (pending !== undefined) await pending;
        if (signal.aborted) return;
      }
    } finally {
      events.close();
    }
  }

  async #restart(handler: SourceHandler, cause: unknown, signal: AbortSignal): Promise<void> {
    for (let attempt = 1; !signal.aborted; attempt++) {
      await sleep(Math.min(10_000, 250 * 2 ** attempt), undefined, { signal }).catch(() => undefined);
      if (signal.aborted) return;
      try {
        const next = await this.#consume();
        this.#stream = next;
        handler.onReset();
        return;
      } catch (error) {
        this.#options.onError?.(error, attempt, cause);
      }
    }
  }

  /**
   * Opens a second stream on the same group member (no rejoin: the topics stay tracked), which
   * starts at the committed positions, switches to it, then closes the old one.
   */
  async rewind(onSwitch: () => void): Promise<void> {
    const next = await this.#consume();
    const old = this.#stream;
    this.#stream = next;
    onSwitch();
    await old?.close().catch(() => undefined);
  }

  #consume(): Promise<MessagesStream<Buffer, Buffer, Buffer, Buffer>> {
    return this.#consumer.consume({
      topics: [...this.#options.topics],
      mode: 'committed',
      fallbackMode: 'earliest',
      autocommit: false,
      maxBytes: this.#options.fetchMaxBytes,
      maxWaitTime: this.#options.fetchMaxWaitMs,
    });
  }

  #sync(handler: SourceHandler): void {
    const assignments = this.#consumer.assignments;
    if (assignments !== null) this.#applyAssignments(assignments, handler);
  }

  #applyAssignments(assignments: readonly GroupAssignment[], handler: SourceHandler): void {
    const next = new Map<string, PartitionRef>();
    for (const { topic, partitions } of assignments) {
      for (const partition of partitions) next.set(partitionKey(topic, partition), { topic, partition });
    }
    const revoked = [...this.#owned].filter(([key]) => !next.has(key)).map(([, ref]) => ref);
    const assigned = [...next].filter(([key]) => !this.#owned.has(key)).map(([, ref]) => ref);
    this.#owned = next;
    for (const ref of revoked) this.#committedAtAssignment.delete(partitionKey(ref.topic, ref.partition));
    for (const ref of assigned) {
      const committed = this.#committed(ref).catch(() => undefined);
      this.#committedAtAssignment.set(partitionKey(ref.topic, ref.partition), committed);
    }
    if (revoked.length > 0) handler.onRevoked(revoked);
    if (assigned.length > 0) handler.onAssigned(assigned);
  }

  async repairPosition(ref: PartitionRef): Promise<CommitPosition | undefined> {
    const atAssignment = await this.#committedAtAssignment.get(partitionKey(ref.topic, ref.partition));
    if (atAssignment === undefined || atAssignment < 0n) return undefined;
    const now = await this.#committed(ref);
    return now !== undefined && now < atAssignment ? { ...ref, offset: atAssignment, epoch: -1 } : undefined;
  }

  #committed(ref: PartitionRef): Promise<bigint | undefined> {
    return committedOffset(this.#consumer, ref);
  }

  commit(positions: readonly CommitPosition[]): Promise<void> {
    return commitPositions(this.#consumer, positions);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        await this.#stream?.close();
      } finally {
        await this.#consumer.close();
      }
    })();
    return this.#closing;
  }
}

/** What a message stream said while a #deliver loop reads it: more to read, its end, its error. */
class StreamEvents {
  readonly #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>;
  error: Error | undefined;
  ended = false;
  #wake: (() => void) | undefined;
  readonly #onReadable = (): void => this.#signal();
  readonly #onEnd = (): void => {
    this.ended = true;
    this.#signal();
  };
  readonly #onError = (error: Error): void => {
    this.error ??= error;
    this.#signal();
  };

  constructor(stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>) {
    this.#stream = stream;
    stream.on('readable', this.#onReadable);
    stream.on('end', this.#onEnd);
    stream.on('close', this.#onEnd);
    stream.on('error', this.#onError);
  }

  /** Resolves at the stream's next event. */
  next(): Promise<void> {
    return new Promise((resolve) => (this.#wake = resolve));
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  close(): void {
    this.#stream.off('readable', this.#onReadable);
    this.#stream.off('end', this.#onEnd);
    this.#stream.off('close', this.#onEnd);
    this.#stream.off('error', this.#onError);
    this.#signal();
  }
}

/** Errors the client may recover from by reconnecting; everything else stops the source. */
function isTransient(error: unknown): boolean {
  const e = error as { canRetry?: unknown; errors?: unknown[] } | undefined;
  if (e === undefined || e === null) return false;
  if (e.canRetry === false) return false;
  return !(Array.isArray(e.errors) && e.errors.some((inner) => (inner as { canRetry?: unknown }).canRetry === false));
}

const noHeaders: SourceRecord['headers'] = Object.freeze([]);

function toRecord(message: Message<Buffer, Buffer, Buffer, Buffer>): SourceRecord {
  return {
    topic: message.topic,
    partition: message.partition,
    offset: message.offset,
    timestamp: message.timestamp,
    key: message.key ?? undefined,
    value: message.value ?? undefined,
    // Most records have none: a shared empty list, so a held record does not keep one of its own.
    headers: message.headerEntries.length === 0 ? noHeaders : message.headerEntries,
    epoch: message.leaderEpoch,
  };
}

/** The group's committed offset of one partition (-1 when none), as the consumer reads it. */
export async function committedOffset(consumer: Pick<Consumer, 'listCommittedOffsets'>, ref: PartitionRef): Promise<bigint | undefined> {
  const offsets = await consumer.listCommittedOffsets({ topics: [{ topic: ref.topic, partitions: [ref.partition] }] });
  return offsets.get(ref.topic)?.[ref.partition];
}

/** Commits positions for the consumer's group; a failure is retryable (the core commits again). */
export async function commitPositions(consumer: Consumer, positions: readonly CommitPosition[]): Promise<void> {
  if (positions.length === 0) return;
  try {
    await consumer.commit({ offsets: positions.map((p) => ({ topic: p.topic, partition: p.partition, offset: p.offset, leaderEpoch: p.epoch })) });
  } catch (cause) {
    throw new InserterError('INSERTER_SOURCE_COMMIT_FAILED', `offset commit failed: ${(cause as Error).message}`, { cause, retryable: true });
  }
}
