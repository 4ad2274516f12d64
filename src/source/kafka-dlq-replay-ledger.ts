// Owns the Kafka replay ledger (the adapter of deadletter/replay-ledger.ts): a compacted topic
// `<groupId>.inserter-dlq-replays` keyed by a dead letter's
// `<dlq topic>/<partition>/<offset>`, saying what was (or is being) replayed and how. Every write is
// a Kafka transaction of one transactional producer per group, so a write can carry the replayed
// records with it (all or nothing), and a newer replay fences an older one still running.
import { Admin, GenericError, Producer } from '@platformatic/kafka';
import { DlqFencedError, DlqKafkaError } from '../deadletter/dlq-errors.ts';
import type { LedgerEntry, LedgerView, Message } from '../deadletter/replay-ledger.ts';
import { kafkaClientOptions } from './kafka-connection.ts';
import { readTopic, topicExists, type KafkaAccess } from './kafka-dlq-reader.ts';

type Transaction = Awaited<ReturnType<Producer<Buffer, Buffer, Buffer, Buffer>['beginTransaction']>>;

export const replayLedgerTopic = (groupId: string): string => `${groupId}.inserter-dlq-replays`;

export class ReplayLedger implements LedgerView {
  readonly topic: string;
  readonly #kafka: KafkaAccess;
  readonly #groupId: string;
  readonly #timeoutMs: number;
  readonly #entries = new Map<string, LedgerEntry>();
  readonly #byOriginal = new Map<string, string>();
  #producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined;
  #tx: Transaction | undefined;

  constructor(kafka: KafkaAccess, groupId: string, timeoutMs: number) {
    this.#kafka = kafka;
    this.#groupId = groupId;
    this.#timeoutMs = timeoutMs;
    this.topic = replayLedgerTopic(groupId);
  }

  get entries(): ReadonlyMap<string, LedgerEntry> {
    return this.#entries;
  }

  /** The dead letter recorded for this original record (by `originalKey`), if any. */
  recordedFor(original: string): string | undefined {
    return this.#byOriginal.get(original);
  }

  #set(key: string, entry: LedgerEntry | null): void {
    const old = this.#entries.get(key);
    if (old?.original !== undefined && this.#byOriginal.get(old.original) === key) this.#byOriginal.delete(old.original);
    if (entry === null) {
      this.#entries.delete(key);
      return;
    }
    this.#entries.set(key, entry);
    if (entry.original !== undefined) this.#byOriginal.set(entry.original, key);
  }

  /**
   * Loads the ledger. With `write`, first creates the topic if missing and initialises the
   * transactional producer, which fences (and aborts the open transaction of) any older replay of
   * this group: what is read afterwards is final, no older replay can add to it.
   */
  async open(write: boolean): Promise<void> {
    try {
      if (write) {
        await this.#ensureTopic();
        this.#producer = new Producer({
          clientId: `${this.#kafka.clientId}-dlq-replay`,
          ...kafkaClientOptions(this.#kafka),
          idempotent: true,
          acks: -1,
          transactionalId: `${this.#groupId}.inserter-dlq-replay`,
          timeout: 30_000,
          // -1/-1 asks for the id as a new producer (bumping the epoch); the client's default 0/0 is
          // rejected as PRODUCER_FENCED once the transactional id has been used before (2.12.1).
          producerId: -1n,
          producerEpoch: -1,
        });
        this.#tx = await this.#producer.beginTransaction();
      } else if (!(await topicExists(this.#kafka, this.topic))) {
        return;
      }
      await readTopic(this.#kafka, this.topic, { timeoutMs: this.#timeoutMs }, (r) => {
        const key = r.key?.toString('utf8');
        if (key === undefined) return;
        this.#set(key, r.value === undefined || r.value.length === 0 ? null : (JSON.parse(r.value.toString('utf8')) as LedgerEntry));
      });
    } catch (error) {
      throw wrap(error, `opening the replay ledger ${this.topic}`);
    }
  }

  /** In one transaction: `records` (re-produced dead letters) and the ledger entries (null deletes one). */
  async write(entries: ReadonlyArray<readonly [string, LedgerEntry | null]>, records: readonly Message[] = []): Promise<void> {
    const producer = this.#producer;
    if (producer === undefined) throw new DlqKafkaError('the replay ledger was opened read-only');
    let tx = this.#tx;
    this.#tx = undefined;
    try {
      tx ??= await producer.beginTransaction();
    } catch (error) {
      throw wrap(error, 'beginning a transaction');
    }
    const messages: Message[] = [...records];
    for (const [key, entry] of entries) messages.push({ topic: this.topic, partition: 0, key: Buffer.from(key), ...(entry === null ? {} : { value: Buffer.from(JSON.stringify(entry)) }) });
    try {
      await tx.send({ messages });
      await tx.commit();
    } catch (error) {
      // A commit that failed may have been half-sent: abort, so neither records nor entries count.
      await tx.abort().catch(() => undefined);
      throw wrap(error, `writing ${messages.length} record(s) in a transaction`);
    }
    for (const [key, entry] of entries) this.#set(key, entry);
  }

  async close(): Promise<void> {
    await this.#tx?.cancel().catch(() => undefined);
    this.#tx = undefined;
    await this.#producer?.close().catch(() => undefined);
  }

  async #ensureTopic(): Promise<void> {
    const admin = new Admin({ clientId: `${this.#kafka.clientId}-dlq-admin`, ...kafkaClientOptions(this.#kafka) });
    try {
      if ((await admin.listTopics()).includes(this.topic)) return;
      await admin.createTopics({ topics: [this.topic], partitions: 1, replicas: -1, configs: [{ name: 'cleanup.policy', value: 'compact' }] }).catch((error: unknown) => {
        if (findKafkaError(error, 'apiId', 'TOPIC_ALREADY_EXISTS') === undefined) throw error;
      });
    } finally {
      await admin.close();
    }
  }
}

function wrap(error: unknown, what: string): Error {
  if (error instanceof DlqFencedError || error instanceof DlqKafkaError) return error;
  if ((findKafkaError(error, 'producerFenced', true) ?? findKafkaError(error, 'apiId', 'PRODUCER_FENCED')) !== undefined) return new DlqFencedError({ cause: error });
  return new DlqKafkaError(`${what} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

function findKafkaError(error: unknown, property: string, value: unknown): GenericError | undefined {
  if (!(error instanceof Error) || !GenericError.isGenericError(error)) return undefined;
  return (error as GenericError).findBy(property, value) ?? undefined;
}
