// Owns keeping partition ledgers in Pulsar: the ledger of a source partition is the newest valid
// record of its own ledger topic (pulsar-ledger-log.ts), written through a WebSocket producer whose
// name is the partition's lease. The broker lets one producer of a name be connected to a topic at a
// time, so taking a partition over (load) waits until the previous owner's producer is gone — closed,
// or its connection ended by the broker's idle timeout when the process stalled — and from then on
// that owner cannot write. The WebSocket producer has no ExclusiveWithFencing access mode (the
// broker's 4.0 WebSocket API takes none), so the lease replaces it. One hole stays: the broker's
// own client inside the WebSocket service reconnects a producer whose topic moved, and may publish a
// write of the old owner after the new owner's takeover. Every record names the record it follows,
// and every write is checked to follow it directly: such a write is refused by its writer (fenced,
// so it inserts nothing) and skipped by every later load. A takeover waiting for the lease ends when
// the partition is given up (release) or the store closes, and never registers a lease after that.
// docs/design/pulsar.md, "The ledger".
import { randomUUID } from 'node:crypto';
import type { LedgerJson, LedgerStore } from '../ack/ledger.ts';
import type { Secret } from '../config/secret.ts';
import { AbortedError, ConfigError, InserterError } from '../errors/inserter-error.ts';
import { retry, type BackoffPolicy } from '../sink/retry.ts';
import { PulsarAdmin, pulsarUrlIssue } from './pulsar-admin.ts';
import { follows, readNewest, type EntryId, type LedgerEnvelope } from './pulsar-ledger-log.ts';
import { decodeMessageId, entryText } from './pulsar-message-id.ts';
import { openWithRetry, type PulsarSocket } from './pulsar-socket.ts';
import { untilAborted } from './until-aborted.ts';

const SAVE_TIMEOUT_MS = 15_000;
const DEFAULT_RETRY: BackoffPolicy = { baseMs: 200, factor: 2, capMs: 5_000 };

/**
 * This process no longer holds the partition's ledger: another owner wrote to it (`fenced`), or
 * this process gave the producer up (revoked, the connection ended, or a write failed and its
 * outcome is not known). Recording anything more needs a takeover (load) first.
 */
export class PulsarLedgerFencedError extends InserterError {
  readonly fenced: boolean;
  constructor(topic: string, partition: number, cause: unknown, fenced: boolean) {
    super(
      'INSERTER_LEDGER_FENCED',
      fenced ? `ledger of ${topic}/${partition} was written by a newer owner` : `ledger of ${topic}/${partition} given up: ${(cause as Error | undefined)?.message ?? String(cause)}`,
      {
        cause,
        retryable: false,
      },
    );
    this.name = 'PulsarLedgerFencedError';
    this.fenced = fenced;
  }
}

export interface PulsarLedgerStoreOptions {
  readonly url: string;
  readonly tenant: string;
  readonly namespace: string;
  readonly token?: Secret;
  readonly subscription: string;
  /** Ledger topics are named `<topic>.<source topic>.<partition>`; default `<subscription>.inserter-ledger`. */
  readonly topic?: string;
  /** Backoff while a takeover waits for the previous owner's producer, or the broker. */
  readonly retry?: BackoffPolicy;
  /** Retention of each ledger topic (time unlimited, so the broker never deletes it as inactive). Default 1024 MB. */
  readonly retentionSizeInMB?: number;
  readonly keepaliveMs?: number;
  /** A takeover is waiting (the previous owner still holds the lease, or the broker is away). */
  readonly onWaiting?: (report: { topic: string; partition: number; attempt: number; error: unknown }) => void;
}

interface Held {
  readonly producer: PulsarSocket;
  readonly owner: string;
  readonly ledgerTopic: string;
  /** The last record this owner wrote (every write must follow it directly). */
  last: EntryId;
  gone: boolean;
  /** Writes of this partition one after another (each must follow the previous). */
  chain: Promise<unknown>;
  readonly receipts: Map<string, { resolve: (id: EntryId) => void; reject: (error: Error) => void }>;
}

export class PulsarLedgerStore implements LedgerStore {
  readonly #options: PulsarLedgerStoreOptions;
  readonly #admin: PulsarAdmin;
  readonly #held = new Map<string, Held>();
  /** Per partition, the load in progress: release() and close() end it (it must not take the lease after). */
  readonly #loads = new Map<string, AbortController>();
  /** Ledger topics created (with their retention) by this process. */
  readonly #ready = new Map<string, Promise<void>>();
  #context = 0;
  #closing: Promise<void> | undefined;

  constructor(options: PulsarLedgerStoreOptions) {
    validateLedgerStoreOptions(options);
    this.#options = options;
    this.#admin = new PulsarAdmin(options);
  }

  #key(topic: string, partition: number): string {
    return `${this.#options.subscription}/${topic}/${partition}`;
  }

  ledgerTopic(topic: string, partition: number): string {
    return `${this.#options.topic ?? `${this.#options.subscription}.inserter-ledger`}.${topic}.${partition}`;
  }

  /**
   * Takes the partition over: waits for the lease (the previous owner's producer gone), reads the
   * newest valid ledger, and writes it back as a takeover record right after the topic's end —
   * checked to follow it directly, so nothing the previous owner wrote is missed. Retries until it
   * succeeds or the signal fires. A load that release() ends meanwhile (the partition was given
   * up) holds nothing and resolves without a ledger: its caller no longer owns the partition, and
   * every save of it is refused until the next load. One that close() ends rejects (AbortedError).
   */
  async load(topic: string, partition: number, signal: AbortSignal): Promise<LedgerJson | undefined> {
    this.#throwIfClosed(topic, partition);
    await this.release(topic, partition);
    this.#throwIfClosed(topic, partition);
    const key = this.#key(topic, partition);
    const given = new AbortController();
    this.#loads.set(key, given);
    const stop = AbortSignal.any([signal, given.signal]);
    const ledgerTopic = this.ledgerTopic(topic, partition);
    const report = (error: unknown, attempt: number): void => this.#options.onWaiting?.({ topic, partition, attempt, error });
    try {
      return await retry(
        async () => {
          await this.#ensureTopic(ledgerTopic, stop);
          const held = await this.#acquire(topic, partition, ledgerTopic, stop, report);
          try {
            const newest = await readNewest(this.#admin, ledgerTopic, key, stop);
            const after = newest.end === undefined ? null : entryText(newest.end);
            held.last = await this.#write(held, topic, partition, { takeover: true, after, ledger: newest.ledger ?? null }, stop);
            // Given up (released or closed) while it was taken over: the lease goes straight back.
            this.#throwIfClosed(topic, partition);
            if (given.signal.aborted) throw new AbortedError(`${topic}/${partition} given up during its takeover`);
            this.#held.set(key, held);
            return newest.ledger;
          } catch (error) {
            await this.#drop(held);
            throw error;
          }
        },
        this.#options.retry ?? DEFAULT_RETRY,
        stop,
        { isRetryable: (error) => !(error instanceof AbortedError), onRetry: (error, attempt) => report(error, attempt) },
      );
    } catch (error) {
      if (given.signal.aborted && !signal.aborted && this.#closing === undefined) return undefined;
      throw error;
    } finally {
      if (this.#loads.get(key) === given) this.#loads.delete(key);
    }
  }

  /**
   * Writes the ledger with the producer the last load acquired, checked to follow this owner's
   * previous record. Never acquires one: a process that lost the partition must not take it back
   * with its stale view. A failed or unchecked write gives the producer up (LedgerFencedError). A
   * save queued behind another ends when its signal fires (AbortedError: nothing was sent).
   */
  save(topic: string, partition: number, ledger: LedgerJson, signal: AbortSignal): Promise<void> {
    const held = this.#held.get(this.#key(topic, partition));
    if (held === undefined || held.gone) return Promise.reject(new PulsarLedgerFencedError(topic, partition, new Error('the ledger producer was given up'), false));
    const previous = held.chain;
    const write = untilAborted(previous, signal, `ledger save of ${topic}/${partition}`).then(async () => {
      if (held.gone) throw new PulsarLedgerFencedError(topic, partition, new Error('the ledger producer was given up'), false);
      held.last = await this.#write(held, topic, partition, { takeover: false, after: entryText(held.last), ledger }, signal);
    });
    // The next write starts after this one and the one before it (this one may have stopped waiting).
    held.chain = Promise.allSettled([previous, write]);
    return write;
  }

  /** Sends one envelope, waits for the broker's receipt, and checks the record follows `after`. */
  async #write(held: Held, topic: string, partition: number, body: Pick<LedgerEnvelope, 'takeover' | 'after' | 'ledger'>, signal: AbortSignal): Promise<EntryId> {
    const key = this.#key(topic, partition);
    const envelope: LedgerEnvelope = { v: 1, key, owner: held.owner, ...body };
    const context = String(++this.#context);
    let id: EntryId;
    try {
      const receipt = new Promise<EntryId>((resolve, reject) => held.receipts.set(context, { resolve, reject }));
      held.producer.send({ payload: Buffer.from(JSON.stringify(envelope)).toString('base64'), key, context });
      id = await deadline(receipt, SAVE_TIMEOUT_MS, signal, `ledger write of ${key}`);
    } catch (error) {
      held.receipts.delete(context);
      await this.#drop(held);
      throw error instanceof PulsarLedgerFencedError ? error : new PulsarLedgerFencedError(topic, partition, error, false);
    }
    let direct: boolean;
    try {
      direct = await follows(this.#admin, held.ledgerTopic, id, body.after, signal);
    } catch (error) {
      await this.#drop(held);
      throw new PulsarLedgerFencedError(topic, partition, error, false);
    }
    if (!direct) {
      await this.#drop(held);
      throw new PulsarLedgerFencedError(topic, partition, new Error(`record ${entryText(id)} does not follow ${body.after ?? 'the start'}`), true);
    }
    return id;
  }

  /** The partition's lease: a producer of the partition's name, retried while another holds it. */
  async #acquire(topic: string, partition: number, ledgerTopic: string, signal: AbortSignal, report: (error: unknown, attempt: number) => void): Promise<Held> {
    const query = new URLSearchParams({ producerName: `inserter-ledger/${this.#key(topic, partition)}`, sendTimeoutMillis: String(SAVE_TIMEOUT_MS - 5_000) });
    const receipts: Held['receipts'] = new Map();
    const box: { held?: Held } = {};
    const producer = await openWithRetry(
      {
        url: `${this.#options.url.replace(/^http/, 'ws').replace(/\/$/, '')}/ws/v2/producer/${this.#admin.topicPath(ledgerTopic)}?${query.toString()}`,
        headers: this.#admin.authHeaders(),
        what: `ledger producer of ${topic}/${partition}`,
        // A frame without a payload publishes nothing and is answered with an error receipt.
        keepalive: { frame: {}, everyMs: this.#options.keepaliveMs ?? 60_000 },
        onFrame: (frame) => {
          const f = (typeof frame === 'object' && frame !== null ? frame : {}) as { result?: string; messageId?: string; context?: string; errorMsg?: string };
          const waiting = typeof f.context === 'string' ? receipts.get(f.context) : undefined;
          if (waiting === undefined || typeof f.context !== 'string') return;
          receipts.delete(f.context);
          if (f.result !== 'ok' || typeof f.messageId !== 'string') {
            waiting.reject(new Error(`the broker refused the ledger write: ${f.result ?? '?'} ${f.errorMsg ?? ''}`));
            return;
          }
          // An id it cannot read: the write's place in the log is unknown, so it cannot be checked.
          try {
            waiting.resolve(decodeMessageId(f.messageId));
          } catch (error) {
            waiting.reject(new Error(`the ledger write's receipt has an id that is not readable: ${(error as Error).message}`, { cause: error }));
          }
        },
        onClose: (error) => {
          if (box.held !== undefined) box.held.gone = true;
          for (const waiting of receipts.values()) waiting.reject(error);
          receipts.clear();
        },
      },
      this.#options.retry ?? DEFAULT_RETRY,
      signal,
      report,
    );
    box.held = { producer, owner: randomUUID(), ledgerTopic, last: { ledgerId: -1n, entryId: -1n }, gone: false, chain: Promise.resolve(), receipts };
    return box.held;
  }

  /** The ledger topic exists, with unlimited retention time (never deleted as inactive) and a size bound. */
  #ensureTopic(ledgerTopic: string, signal: AbortSignal): Promise<void> {
    let ready = this.#ready.get(ledgerTopic);
    if (ready === undefined) {
      const policy = { retentionTimeInMinutes: -1, retentionSizeInMB: this.#options.retentionSizeInMB ?? 1024 };
      ready = (async () => {
        await this.#admin.createTopic(ledgerTopic, signal);
        const current = await this.#admin.retention(ledgerTopic, signal);
        if (current?.retentionTimeInMinutes !== policy.retentionTimeInMinutes || current.retentionSizeInMB !== policy.retentionSizeInMB) await this.#admin.setRetention(ledgerTopic, policy, signal);
      })();
      this.#ready.set(ledgerTopic, ready);
      ready.catch(() => this.#ready.delete(ledgerTopic));
    }
    return ready;
  }

  /** Gives the partition up (after a revocation): a load in progress ends, closing the producer hands the lease on. */
  async release(topic: string, partition: number): Promise<void> {
    const key = this.#key(topic, partition);
    this.#loads.get(key)?.abort(new AbortedError(`${topic}/${partition} released`));
    const held = this.#held.get(key);
    if (held !== undefined) await this.#drop(held);
  }

  async #drop(held: Held): Promise<void> {
    held.gone = true;
    for (const [key, current] of this.#held) if (current === held) this.#held.delete(key);
    await held.producer.close();
  }

  #throwIfClosed(topic: string, partition: number): void {
    if (this.#closing !== undefined) throw new AbortedError(`ledger store closed: not taking ${topic}/${partition} over`);
  }

  /** Gives every partition up; a closed store takes nothing over again. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const load of this.#loads.values()) load.abort(new AbortedError('ledger store closed'));
      await Promise.allSettled([...this.#held.values()].map((held) => this.#drop(held)));
    })();
    return this.#closing;
  }
}

const NAME = /^[A-Za-z0-9_.=:%-]+$/;

export function validateLedgerStoreOptions(options: PulsarLedgerStoreOptions): void {
  const issues: string[] = [];
  const urlIssue = pulsarUrlIssue(options.url);
  if (urlIssue !== undefined) issues.push(urlIssue);
  for (const field of ['tenant', 'namespace', 'subscription'] as const) if (!NAME.test(options[field])) issues.push(`pulsar ${field} must be a Pulsar name, got ${JSON.stringify(options[field])}`);
  if (options.topic !== undefined && !NAME.test(options.topic)) issues.push(`pulsar ledger topic must be a topic name, got ${JSON.stringify(options.topic)}`);
  const size = options.retentionSizeInMB;
  if (size !== undefined && (!Number.isInteger(size) || size < 1)) issues.push(`pulsar ledger retentionSizeInMB must be a positive integer, got ${size}`);
  if (issues.length > 0) throw new ConfigError(issues);
}

/** `work`, or a failure after `ms` or once `signal` fires (at once if it fired already). */
function deadline<T>(work: Promise<T>, ms: number, signal: AbortSignal, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} got no receipt within ${ms} ms`)), ms);
  });
  return untilAborted(Promise.race([work, late]), signal, what).finally(() => clearTimeout(timer));
}
