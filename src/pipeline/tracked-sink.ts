// Owns knowing which inserts are on the wire right now, for which lane and since when, so a pause can
// confirm "nothing in flight", a destination whose oldest request is too old counts as stuck, and
// status can say when each lane last inserted and how it last failed. It
// wraps each destination's Sink; a pause never cuts a request in flight (the insert's own signal is
// the process's hard stop only), it only stops further attempts.
import type { InsertBatch, InsertResult, Sink, TableRef, TableSchema } from '../sink/types.ts';
import { ErrorClasses } from '../errors/classes.ts';
import { WarehouseError } from '../sink/errors.ts';
import type { Batch, Lane } from '../batch/lane.ts';

export interface ActiveDelivery {
  readonly lane: Lane;
  readonly batch: Batch;
  /** Insert requests of this delivery currently on the wire. */
  attempts: number;
}

export class InflightRegistry {
  /** By the batch's base token; sub-batch tokens extend it with `/from-to`. */
  readonly #byToken = new Map<string, ActiveDelivery>();
  /** Destinations whose last request failed (any request: schema reads fail first when it is down). */
  readonly failingDestinations = new Set<string>();
  /** Per destination, the start time of each request on the wire (inserts, schema reads), oldest first (insertion order). */
  readonly #onWire = new Map<string, Map<number, number>>();
  #requests = 0;

  /** A request to the destination starts; returns its id for `requestEnded`. */
  requestStarted(destination: string, now: number): number {
    const id = ++this.#requests;
    let requests = this.#onWire.get(destination);
    if (requests === undefined) {
      requests = new Map();
      this.#onWire.set(destination, requests);
    }
    requests.set(id, now);
    return id;
  }

  requestEnded(destination: string, id: number): void {
    this.#onWire.get(destination)?.delete(id);
  }

  /** How long the destination's oldest request has been on the wire (0: none). */
  oldestRequestAge(destination: string, now: number): number {
    const requests = this.#onWire.get(destination);
    if (requests === undefined) return 0;
    for (const startedAt of requests.values()) return now - startedAt; // the first is the oldest
    return 0;
  }

  begin(lane: Lane, batch: Batch): ActiveDelivery {
    const entry = { lane, batch, attempts: 0 };
    this.#byToken.set(lane.token(batch, 0, batch.size), entry);
    return entry;
  }

  end(lane: Lane, batch: Batch): void {
    this.#byToken.delete(lane.token(batch, 0, batch.size));
  }

  find(token: string): ActiveDelivery | undefined {
    const exact = this.#byToken.get(token);
    if (exact !== undefined) return exact;
    const slash = token.lastIndexOf('/');
    return slash < 0 ? undefined : this.#byToken.get(token.slice(0, slash));
  }

  *active(): Iterable<ActiveDelivery> {
    yield* this.#byToken.values();
  }
}

export class TrackedSink implements Sink {
  readonly destinationId: string;
  readonly #inner: Sink;
  readonly #registry: InflightRegistry;
  readonly #requestSignal: AbortSignal;

  constructor(inner: Sink, registry: InflightRegistry, requestSignal: AbortSignal) {
    this.destinationId = inner.destinationId;
    this.#inner = inner;
    this.#registry = registry;
    this.#requestSignal = requestSignal;
  }

  // Schema reads are timed like inserts: a destination that hangs often hangs on one (review 2026-12-06f).
  describe(table: TableRef, signal?: AbortSignal): Promise<TableSchema | undefined> {
    return this.#observe(() => this.#inner.describe(table, signal));
  }

  createTable(table: TableRef, template: string | undefined, signal?: AbortSignal): Promise<void> {
    return this.#observe(() => this.#inner.createTable(table, template, signal));
  }

  /**
   * The destination answered or failed. A refusal of rows (row data, an oversized row) is an
   * answer: the destination is up, and such a refusal must not park it (review 2026-12-06f).
   * The request is timed while on the wire (InflightRegistry.oldestRequestAge).
   */
  async #observe<T>(work: () => Promise<T>): Promise<T> {
    const request = this.#registry.requestStarted(this.destinationId, Date.now());
    try {
      const result = await work();
      this.#registry.failingDestinations.delete(this.destinationId);
      return result;
    } catch (error) {
      if (error instanceof WarehouseError && (error.errorClass === ErrorClasses.rowData || error.errorClass === ErrorClasses.oversized)) this.#registry.failingDestinations.delete(this.destinationId);
      else this.#registry.failingDestinations.add(this.destinationId);
      throw error;
    } finally {
      this.#registry.requestEnded(this.destinationId, request);
    }
  }

  async insert(batch: InsertBatch, signal?: AbortSignal): Promise<InsertResult> {
    if (signal?.aborted) signal.throwIfAborted();
    const entry = this.#registry.find(batch.token);
    if (entry) entry.attempts++;
    try {
      const result = await this.#observe(() => this.#inner.insert(batch, this.#requestSignal));
      if (entry) {
        entry.lane.stats.lastInsertAt = Date.now();
        entry.lane.stats.insertedRows += batch.rows;
        entry.lane.stats.failing = false;
      }
      return result;
    } catch (error) {
      if (entry) {
        entry.lane.stats.lastErrorClass = error instanceof WarehouseError ? error.errorClass : 'unknown';
        entry.lane.stats.lastErrorAt = Date.now();
        entry.lane.stats.failing = true;
      }
      throw error;
    } finally {
      if (entry) entry.attempts--;
    }
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
