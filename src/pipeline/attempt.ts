// Owns one insert of a range: encode its rows for the table's live schema, record the schema it is
// sent under (docs/design/delivery.md §11), send it under the range's token, count its body in the
// memory budget while it is sent, give the body's blocks back once it landed, count it, and classify
// a failure. Also the probe (an insert of no rows: does
// the destination take inserts at all?) and the count of inserts landed per table, which a
// bisection reads as evidence that the destination accepts rows (deliver.ts).
import { encodeRange } from '../encode/batch-body.ts';
import type { ByteChunks } from '../encode/byte-chunks.ts';
import { ErrorClasses } from '../errors/classes.ts';
import { AbortedError } from '../errors/inserter-error.ts';
import { asWarehouseError, type WarehouseError } from '../sink/errors.ts';
import type { InsertBatch } from '../sink/types.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { Lane } from '../batch/lane.ts';
import type { MemoryBudget } from '../batch/budget.ts';
import type { DestinationGates } from './destination-gates.ts';
import type { Range } from './delivery-range.ts';
import { tableName } from './failure-report.ts';
import type { TableSchemas } from './table-schemas.ts';

/** Failures after which the attempt may still land (or has landed) on the server. */
export const AMBIGUOUS: ReadonlySet<string> = new Set([ErrorClasses.transientNetwork, ErrorClasses.unknownInsertStatus, ErrorClasses.unknown]);

export class Attempts {
  readonly #schemas: TableSchemas;
  readonly #metrics: Metrics;
  readonly #gates: DestinationGates;
  readonly #budget: BodyBudget | undefined;
  /** Inserts that landed, per destination and table (probes included). */
  readonly #landed = new Map<string, number>();

  constructor(schemas: TableSchemas, metrics: Metrics, gates: DestinationGates, budget?: BodyBudget) {
    this.#schemas = schemas;
    this.#metrics = metrics;
    this.#gates = gates;
    this.#budget = budget;
  }

  /** One insert of the range; resolves with the classified failure, or undefined when it landed. */
  async run(range: Range): Promise<WarehouseError | undefined> {
    const metrics = this.#metrics;
    const { lane, sink, batch, from, to, signal } = range;
    const labels = { destination: lane.destination.id, table: lane.table.table };
    await this.#gates.wait(lane.destination.id, range, signal);
    let insert: InsertBatch;
    let body: ByteChunks;
    try {
      const { encoder, fingerprint } = await this.#schemas.live(sink, lane.route, lane.table, signal);
      range.fingerprint = fingerprint;
      body = encodeRange(encoder, batch, from, to, range.excluded);
      insert = {
        table: lane.table,
        format: encoder.format,
        columns: encoder.columns,
        body: body.slice(0, body.length),
        rows: to - from - range.excluded.length,
        bytes: body.length,
        token: range.token,
      };
    } catch (error) {
      return this.#failed(range, error);
    }
    // The body is a second copy of the range's rows while it is sent: counted in the budget (the source
    // waits while the total is over it), never waited for here — a flush must not wait on the memory
    // its own rows hold. Released when the attempt ends, landed or not. What the batch expected for its
    // bodies when it was queued (Batch.bodyAllowance) is replaced by what they are.
    const held = insert.bytes;
    const destination = lane.destination.id;
    this.#budget?.reserve(held, destination);
    this.#budget?.bodiesStarted(batch, destination);
    try {
      // Recorded before it is sent (a ledger failure ends the delivery like a failed split): a range in
      // doubt is split only when its verdict cannot have changed since (§11).
      await range.journal?.sending(range.fingerprint, signal);
      const started = performance.now();
      try {
        await sink.insert(insert, signal);
      } catch (error) {
        metrics.inserts.inc({ ...labels, outcome: 'error' });
        const failure = this.#failed(range, error);
        // It may have landed: recorded now, not when this delivery gets to judge it — a delivery that
        // ends first (a sibling part's ledger save failing) is retried, and the retry must find these
        // rows in limbo (§11; else a later refusal splits them: rows twice, found in the simulation).
        if (AMBIGUOUS.has(failure.errorClass)) range.journal?.mayHaveLandedNow(range.from, range.to);
        return failure;
      }
      metrics.insertSeconds.observe(labels, (performance.now() - started) / 1000);
    } finally {
      this.#budget?.release(held, destination);
    }
    // A landed insert's body was read whole; its blocks go to the next body. A failed one's are left to
    // the collector: a failed request's body may still be read (a compressor's write, a socket's queue).
    body.release();
    this.#countLanded(lane);
    metrics.inserts.inc({ ...labels, outcome: 'ok' });
    metrics.insertedRows.inc(labels, insert.rows);
    metrics.insertedBytes.inc(labels, insert.bytes);
    metrics.batchRows.observe({ table: lane.table.table }, to - from);
    const oldest = batch.records[from]?.timestamp;
    if (oldest !== undefined) metrics.endToEndSeconds.observe({ table: lane.table.table }, Math.max(0, Date.now() - Number(oldest)) / 1000);
    return undefined;
  }

  /**
   * An insert of no rows into the range's table (under the range's token + `/probe`: nothing is
   * stored, nothing deduplicated): whether the destination accepts an insert at all. Counted as
   * landed when it does.
   */
  async probe(range: Range): Promise<boolean> {
    const { lane, sink, signal } = range;
    await this.#gates.wait(lane.destination.id, range, signal);
    try {
      const { encoder } = await this.#schemas.live(sink, lane.route, lane.table, signal);
      await sink.insert({ table: lane.table, format: encoder.format, columns: encoder.columns, body: [], rows: 0, bytes: 0, token: `${range.token}/probe` }, signal);
      this.#countLanded(lane);
      return true;
    } catch (error) {
      if (error instanceof AbortedError || signal.aborted) throw error instanceof AbortedError ? error : new AbortedError('probe aborted', { cause: error });
      return false;
    }
  }

  /** How many inserts landed in the lane's table (any lane) since this process started. */
  landedIn(lane: Lane): number {
    return this.#landed.get(landedKey(lane)) ?? 0;
  }

  #countLanded(lane: Lane): void {
    this.#landed.set(landedKey(lane), this.landedIn(lane) + 1);
  }

  /** Classifies a failure of an attempt (an abort ends the delivery instead). */
  #failed(range: Range, error: unknown): WarehouseError {
    const { lane, sink, signal } = range;
    if (error instanceof AbortedError || signal.aborted) throw error instanceof AbortedError ? error : new AbortedError('insert aborted', { cause: error });
    const failure = asWarehouseError(error);
    range.failedAt = this.landedIn(lane);
    // Failures before the insert (a table refused or missing at schema read) show in the lane's status too.
    lane.stats.lastErrorClass = failure.errorClass;
    lane.stats.lastErrorAt = Date.now();
    lane.stats.failing = true;
    if (failure.errorClass === ErrorClasses.missingObject || failure.serverCode === 16) this.#schemas.invalidate(sink, lane.table);
    return failure;
  }
}

/** What an attempt needs of the memory budget: its body's bytes counted while it is sent. */
export type BodyBudget = Pick<MemoryBudget, 'reserve' | 'release' | 'bodiesStarted'>;

function landedKey(lane: Lane): string {
  return `${lane.destination.id}\u0000${tableName(lane)}`;
}
