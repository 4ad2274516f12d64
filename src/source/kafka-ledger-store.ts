// Owns keeping partition ledgers in a compacted Kafka topic: the ledger of source partition p of any
// topic is one record (key `group/topic/p`) in ledger partition p, so a load reads one partition's
// tail, not every ledger. Kafka is already the durable, replicated system the pipeline depends on,
// so exactly-once adds no database. Each owned partition writes its ledger through its own
// transactional producer (`transactional.id` = `<group>/ledger/<topic>/<partition>`): taking a
// partition over initialises that id, which fences the previous owner — a stalled process that
// lost the partition can no longer record an intent, so it can no longer insert — and aborts what it
// had open. A load then reads the newest committed record of its key (kafka-ledger-reader.ts). A
// commit writes the ledger and the partition's group position in one transaction, so a fenced owner
// can never move the position (docs/design/delivery.md §4).
import { Producer, type Consumer, type Message } from '@platformatic/kafka';
import type { LedgerJson, LedgerStore } from '../ack/ledger.ts';
import type { CommitPosition } from './types.ts';
import { InserterError } from '../errors/inserter-error.ts';
import { retry, type BackoffPolicy } from '../sink/retry.ts';
import { handleClientErrors } from './kafka-client-errors.ts';
import { kafkaClientOptions, type KafkaConnection } from './kafka-connection.ts';
import { readNewestCommitted } from './kafka-ledger-reader.ts';
import { ensureStateTopic } from './kafka-topics.ts';

const SAVE_TIMEOUT_MS = 15_000;
/** Compaction needs closed segments: without a segment age the active one grows for a week. */
const TOPIC_CONFIGS = [
  { name: 'cleanup.policy', value: 'compact' },
  { name: 'segment.ms', value: String(60 * 60 * 1000) },
];

/**
 * This process no longer holds the partition's ledger: a newer owner initialised its producer
 * (`fenced`), or this process gave the producer up (revoked, or a write failed and left its
 * transaction state unknown). Recording anything more needs a takeover (load) first.
 */
export class LedgerFencedError extends InserterError {
  readonly fenced: boolean;
  constructor(topic: string, partition: number, cause: unknown, fenced: boolean) {
    super(
      'INSERTER_LEDGER_FENCED',
      fenced ? `ledger of ${topic}/${partition} was taken over by a newer owner` : `ledger producer of ${topic}/${partition} given up: ${(cause as Error | undefined)?.message ?? String(cause)}`,
      { cause, retryable: false },
    );
    this.name = 'LedgerFencedError';
    this.fenced = fenced;
  }
}

export interface KafkaLedgerStoreOptions {
  brokers: readonly string[];
  /** TLS and SASL (source/kafka-connection.ts); none: plaintext. */
  connection?: KafkaConnection;
  clientId: string;
  groupId: string;
  topic: string;
  retry: BackoffPolicy;
  /**
   * The group coordinator's node id (the consumer found it to join): where a position committed in
   * a ledger transaction is sent. Without it, positions are committed by the source.
   */
  groupCoordinator?: () => number | null;
  /**
   * A position the group coordinator did not take (its ledger was written alone): told at most once
   * a minute, with the count since the last report. Positions that never move mean re-reads.
   */
  onPositionNotCommitted?: (report: { topic: string; partition: number; refused: number; cause: unknown }) => void;
}

/** How often refused positions are reported (onPositionNotCommitted). */
const REFUSED_REPORT_MS = 60_000;

type LedgerProducer = Producer<Buffer, Buffer, Buffer, Buffer>;

/** A position committed in a ledger transaction: the next offset to read, and where the group lives. */
interface TransactionOffsets {
  offset: bigint;
  coordinator: number;
}

export class KafkaLedgerStore implements LedgerStore {
  readonly #options: KafkaLedgerStoreOptions;
  readonly #producers = new Map<string, Promise<LedgerProducer>>();
  /** Partitions the ledger topic is known to have; grown to the highest source partition + 1. */
  #partitions = 0;
  #ensuring: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #refused = 0;
  #refusedReportedAt = Number.NEGATIVE_INFINITY;

  constructor(options: KafkaLedgerStoreOptions) {
    this.#options = options;
    const coordinator = options.groupCoordinator;
    this.commit = coordinator === undefined ? undefined : (position, ledger, signal) => this.#commit(coordinator, position, ledger, signal);
  }

  #key(topic: string, partition: number): string {
    return `${this.#options.groupId}/${topic}/${partition}`;
  }

  /**
   * Takes the partition over — a fresh producer whose initialisation fences any previous owner and
   * aborts what it had open — then reads the last committed ledger. The only place a producer is
   * initialised: every takeover is followed by a read, so the taker always knows every intent
   * recorded before it.
   */
  async load(topic: string, partition: number, signal: AbortSignal): Promise<LedgerJson | undefined> {
    await this.#ensureTopic(partition, signal);
    await this.release(topic, partition);
    await this.#acquire(topic, partition, signal);
    const read = {
      brokers: this.#options.brokers,
      connection: this.#options.connection,
      clientId: `${this.#options.clientId}-ledger-reader`,
      topic: this.#options.topic,
      partition,
      key: Buffer.from(this.#key(topic, partition)),
    };
    const value = await retry(() => readNewestCommitted(read, signal), this.#options.retry, signal, { isRetryable: () => true });
    const text = value?.toString();
    return text === undefined || text === '' ? undefined : (JSON.parse(text) as LedgerJson);
  }

  /**
   * Writes the ledger with the producer the last load initialised, once. Never initialises one:
   * doing so after losing the partition would fence its new owner and put this process's view over
   * the new owner's. A failed write gives the producer up — after a fence, a broker restart or a
   * timeout its transaction state is not known — and fails with LedgerFencedError: the caller must
   * take the partition over again (load, which reads the ledger) before recording anything more.
   */
  save(topic: string, partition: number, ledger: LedgerJson, signal: AbortSignal): Promise<void> {
    return this.#save(topic, partition, ledger, signal, undefined);
  }

  async #save(topic: string, partition: number, ledger: LedgerJson, signal: AbortSignal, offsets: TransactionOffsets | undefined): Promise<void> {
    const key = this.#key(topic, partition);
    const held = this.#producers.get(key);
    if (held === undefined) throw new LedgerFencedError(topic, partition, new Error('the ledger producer was given up'), false);
    const producer = await held;
    signal.throwIfAborted();
    const message = { topic: this.#options.topic, partition, key: Buffer.from(key), value: Buffer.from(JSON.stringify(ledger)) };
    try {
      await withTimeout(this.#write(producer, message, topic, partition, offsets), SAVE_TIMEOUT_MS, 'ledger write');
    } catch (error) {
      // The position's coordinator moved, and the transaction was aborted cleanly: the producer is
      // still good for writing the ledger alone.
      if (error instanceof PositionNotCommitted) throw error;
      await this.#drop(key, held);
      throw error instanceof LedgerFencedError ? error : new LedgerFencedError(topic, partition, error, false);
    }
  }

  /**
   * Writes the ledger and commits the partition's position in one transaction
   * (`TxnOffsetCommit`): the position is applied only if the transaction commits, and never from a
   * producer a newer owner fenced. No group generation is sent (-1, no member id: Kafka takes a
   * transactional offset commit from a non-member), so a rebalance never aborts the write; the
   * producer's fence alone decides who may move the position. Fails like `save`.
   */
  readonly commit: ((position: CommitPosition, ledger: LedgerJson, signal: AbortSignal) => Promise<boolean>) | undefined;

  async #commit(groupCoordinator: () => number | null, position: CommitPosition, ledger: LedgerJson, signal: AbortSignal): Promise<boolean> {
    const coordinator = groupCoordinator();
    // Not known now (the consumer forgets it after a coordinator error and finds it again): the
    // ledger alone, so a lane sharing this write is not failed for a position; committed later.
    if (coordinator !== null) {
      try {
        await this.#save(position.topic, position.partition, ledger, signal, { offset: position.offset, coordinator });
        return true;
      } catch (error) {
        if (!(error instanceof PositionNotCommitted)) throw error;
        this.#reportRefused(position, error.cause);
      }
    }
    await this.#save(position.topic, position.partition, ledger, signal, undefined);
    return false;
  }

  #reportRefused(position: CommitPosition, cause: unknown): void {
    this.#refused++;
    const now = performance.now();
    if (this.#options.onPositionNotCommitted === undefined || now - this.#refusedReportedAt < REFUSED_REPORT_MS) return;
    this.#refusedReportedAt = now;
    this.#options.onPositionNotCommitted({ topic: position.topic, partition: position.partition, refused: this.#refused, cause });
    this.#refused = 0;
  }

  /** Gives the partition up (after a revocation); the next owner fences this process anyway. */
  async release(topic: string, partition: number): Promise<void> {
    const key = this.#key(topic, partition);
    const producer = this.#producers.get(key);
    if (producer !== undefined) await this.#drop(key, producer);
  }

  /** Closes this producer, and forgets it if it is still the partition's current one. */
  async #drop(key: string, producer: Promise<LedgerProducer>): Promise<void> {
    if (this.#producers.get(key) === producer) this.#producers.delete(key);
    await producer.then((p) => p.close()).catch(() => undefined);
  }

  async #write(
    producer: LedgerProducer,
    message: { topic: string; partition: number; key: Buffer; value: Buffer },
    topic: string,
    partition: number,
    offsets: TransactionOffsets | undefined,
  ): Promise<void> {
    const tx = await producer.beginTransaction();
    try {
      await tx.send({ messages: [message] });
      if (offsets !== undefined) {
        const groupId = this.#options.groupId;
        const consumer = { groupId, generationId: -1, memberId: '', coordinatorId: offsets.coordinator };
        try {
          // The client reads only the group id of a consumer, and of a message its position and group.
          await tx.addConsumer({ groupId } as unknown as Consumer);
          await tx.addOffset({ topic, partition, offset: offsets.offset - 1n, metadata: { consumer } } as unknown as Message);
        } catch (error) {
          // The position refused for any reason but a fence (the coordinator moved or loading, the
          // group not authorised, a server error): abort cleanly and let the caller write the ledger
          // alone. Every ledger write carries the position, so failing the write would fail the
          // batch's intent, and the partition would be taken over again, write after write (review
          // 2026-12-07a, finding 1).
          if (
            !isFenced(error) &&
            (await tx.abort().then(
              () => true,
              () => false,
            ))
          )
            throw new PositionNotCommitted(error);
          throw error;
        }
      }
      await tx.commit();
    } catch (error) {
      if (error instanceof PositionNotCommitted) throw error;
      if (isFenced(error)) throw new LedgerFencedError(topic, partition, error, true);
      await tx.abort().catch(() => undefined);
      throw error;
    }
  }

  /** The partition's transactional producer (initialised once per load): initialising fences older owners. */
  #acquire(topic: string, partition: number, signal: AbortSignal): Promise<LedgerProducer> {
    const key = this.#key(topic, partition);
    let producer = this.#producers.get(key);
    if (producer === undefined) {
      producer = retry(
        async () => {
          const p: LedgerProducer = new Producer({
            clientId: `${this.#options.clientId}-ledger`,
            ...kafkaClientOptions(this.#options),
            idempotent: true,
            acks: -1,
            transactionalId: `${this.#options.groupId}/ledger/${topic}/${partition}`,
            // A fresh id/epoch makes InitProducerId take the transactional id over from any owner.
            producerId: -1n,
            producerEpoch: -1,
            retries: 50,
            retryDelay: 20,
          });
          handleClientErrors(p);
          try {
            const tx = await p.beginTransaction(); // InitProducerId: fences the previous owner
            await tx.cancel();
            return p;
          } catch (error) {
            await p.close().catch(() => undefined);
            throw error;
          }
        },
        this.#options.retry,
        signal,
        { isRetryable: () => true },
      );
      this.#producers.set(key, producer);
      const current = producer;
      current.catch(() => {
        if (this.#producers.get(key) === current) this.#producers.delete(key);
      });
    }
    return producer;
  }

  /** The ledger topic exists with a partition for this source partition (one grow at a time). */
  async #ensureTopic(partition: number, signal: AbortSignal): Promise<void> {
    while (partition >= this.#partitions) {
      if (this.#ensuring === undefined) {
        const { brokers, connection, topic, retry: policy } = this.#options;
        const wanted = Math.max(partition + 1, this.#partitions);
        this.#ensuring = ensureStateTopic({ brokers, connection, clientId: `${this.#options.clientId}-ledger`, topic, configs: TOPIC_CONFIGS, partitions: wanted, retry: policy }, signal)
          .then((count) => {
            this.#partitions = Math.max(this.#partitions, count);
          })
          .finally(() => {
            this.#ensuring = undefined;
          });
      }
      await this.#ensuring;
    }
  }

  close(): Promise<void> {
    this.#closing ??= Promise.allSettled([...this.#producers.values()].map((p) => p.then((producer) => producer.close()))).then(() => undefined);
    return this.#closing;
  }
}

/** The group coordinator refused or could not take the position; its transaction was aborted cleanly. */
class PositionNotCommitted extends Error {
  constructor(cause: unknown) {
    super('the group coordinator did not take the position', { cause });
    this.name = 'PositionNotCommitted';
  }
}

function isFenced(error: unknown, depth = 0): boolean {
  if (error === null || typeof error !== 'object' || depth > 5) return false;
  const e = error as { message?: unknown; apiId?: unknown; errors?: unknown; cause?: unknown };
  const text = `${typeof e.message === 'string' ? e.message : ''} ${typeof e.apiId === 'string' ? e.apiId : ''}`;
  if (/PRODUCER_FENCED|INVALID_PRODUCER_EPOCH|fences the current one|newer producer/i.test(text)) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => isFenced(inner, depth + 1))) return true;
  return isFenced(e.cause, depth + 1);
}

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
