// Owns delivering one lane batch: encode for the table's live schema, insert with a deterministic
// token, retry what a retry can cure, split what is too big for one insert, isolate rows the
// warehouse rejects (bisecting, guided by ClickHouse's "at row N") and dead-letter only those.
// The batch's records resolve only when every row is in the warehouse or the dead-letter topic.
import { ByteChunks } from '../batch/byte-chunks.ts';
import { writeRow, type RowShape } from '../batch/row-encoder.ts';
import type { Config } from '../config/load.ts';
import { ErrorClasses } from '../errors/classes.ts';
import { AbortedError } from '../errors/inserter-error.ts';
import type { DeadLetterReason } from '../deadletter/writer.ts';
import type { DestinationDirectory } from '../route/destinations.ts';
import { WarehouseError } from '../sink/clickhouse/classify.ts';
import { retry } from '../sink/retry.ts';
import type { Sink } from '../sink/types.ts';
import type { SourceRecord } from '../source/types.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { Batch, Lane } from './lane.ts';
import type { TableSchemas } from './table-schemas.ts';

export interface DeliveryDeps {
  readonly config: Config;
  readonly directory: DestinationDirectory;
  readonly schemas: TableSchemas;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly deadLetter: (lane: Lane, record: SourceRecord, team: number | undefined, reason: DeadLetterReason) => Promise<void>;
}

/** Classes handled by splitting the batch rather than waiting. */
const splitClasses = new Set<string>([ErrorClasses.tooManyPartitions, ErrorClasses.memoryLimit]);

export class Deliverer {
  readonly #deps: DeliveryDeps;
  readonly #slots = new Map<string, Semaphore>();

  constructor(deps: DeliveryDeps) {
    this.#deps = deps;
  }

  async deliver(lane: Lane, batch: Batch, signal: AbortSignal): Promise<void> {
    const sink = this.#deps.directory.sink(lane.destination);
    const slots = this.#slotsFor(lane);
    await slots.acquire(signal);
    try {
      await this.#range(lane, sink, batch, 0, batch.size, signal);
    } finally {
      slots.release();
    }
  }

  async #range(lane: Lane, sink: Sink, batch: Batch, from: number, to: number, signal: AbortSignal): Promise<void> {
    const { config, metrics, logger, schemas } = this.#deps;
    const token = lane.token(batch, from, to);
    const labels = { destination: lane.destination.id, table: lane.table.table };
    let failure: WarehouseError | undefined;
    try {
      await retry(
        async () => {
          const shape = await schemas.shape(sink, lane.route, lane.table, signal);
          const body = encode(shape, batch, from, to);
          const started = performance.now();
          try {
            await sink.insert({ table: lane.table, body: body.slice(0, body.length), rows: to - from, bytes: body.length, token }, signal);
          } catch (error) {
            metrics.inserts.inc({ ...labels, outcome: 'error' });
            if (error instanceof WarehouseError && (error.errorClass === ErrorClasses.missingObject || error.serverCode === 16)) {
              schemas.invalidate(sink, lane.table);
            }
            throw error;
          }
          metrics.insertSeconds.observe(labels, (performance.now() - started) / 1000);
          metrics.inserts.inc({ ...labels, outcome: 'ok' });
          metrics.insertedRows.inc(labels, to - from);
          metrics.insertedBytes.inc(labels, body.length);
          metrics.batchRows.observe({ table: lane.table.table }, to - from);
          const oldest = batch.records[from]?.timestamp;
          if (oldest !== undefined) metrics.endToEndSeconds.observe({ table: lane.table.table }, Math.max(0, Date.now() - Number(oldest)) / 1000);
        },
        config.retry,
        signal,
        {
          // Split-worthy errors leave the retry loop at once (when there is something to split).
          isRetryable: (error) =>
            error instanceof WarehouseError && !(splitClasses.has(error.errorClass) && to - from > 1) && (error.retryable || error.errorClass === ErrorClasses.unknown),
          onRetry: (error, attempt, delayMs) => {
            const cls = error instanceof WarehouseError ? error.errorClass : 'unknown';
            metrics.retries.inc({ destination: lane.destination.id, class: cls });
            logger.warn({ destination: lane.destination.id, table: `${lane.table.database}.${lane.table.table}`, class: cls, attempt, delayMs, rows: to - from, err: error }, 'insert failed; backing off');
          },
        },
      );
      return;
    } catch (error) {
      if (error instanceof AbortedError || signal.aborted) throw error;
      if (!(error instanceof WarehouseError)) throw error;
      failure = error;
    }
    if (failure.errorClass === ErrorClasses.rowData && to - from === 1) {
      await this.#deadLetterRow(lane, batch, from, failure);
      return;
    }
    if (failure.errorClass === ErrorClasses.rowData || splitClasses.has(failure.errorClass)) {
      for (const [a, b] of splitPoints(failure, from, to)) await this.#range(lane, sink, batch, a, b, signal);
      return;
    }
    // Anything else non-retryable: hold the batch (never drop it) and keep trying slowly.
    throw failure;
  }

  async #deadLetterRow(lane: Lane, batch: Batch, index: number, failure: WarehouseError): Promise<void> {
    const record = batch.records[index] as SourceRecord;
    this.#deps.logger.warn({ route: lane.route.name, topic: record.topic, partition: record.partition, offset: String(record.offset), class: failure.errorClass, code: failure.serverCode }, 'row rejected by the warehouse; dead-lettering it');
    await this.#deps.deadLetter(lane, record, batch.teams[index], {
      errorClass: failure.errorClass,
      code: failure.code,
      message: failure.message,
      ...(failure.serverCode === undefined ? {} : { serverCode: failure.serverCode }),
    });
  }

  #slotsFor(lane: Lane): Semaphore {
    let slots = this.#slots.get(lane.destination.id);
    if (slots === undefined) {
      slots = new Semaphore(lane.destination.concurrency);
      this.#slots.set(lane.destination.id, slots);
    }
    return slots;
  }
}

function encode(shape: RowShape, batch: Batch, from: number, to: number): ByteChunks {
  const out = new ByteChunks();
  for (let i = from; i < to; i++) writeRow(out, shape, batch.records[i] as SourceRecord, batch.jsons[i] as Buffer, batch.teams[i]);
  return out;
}

/**
 * Where to cut a failing range. ClickHouse names the failing row of a text format ("(at row N)",
 * 1-based); when it does, that row is cut out alone, else the range is halved. Both are
 * deterministic, so a replay after a crash forms the same sub-batches with the same tokens.
 */
export function splitPoints(failure: WarehouseError, from: number, to: number): Array<[number, number]> {
  if (failure.errorClass === ErrorClasses.rowData) {
    const match = /\(at row (\d+)\)/.exec(failure.message);
    const row = match ? from + Number(match[1]) - 1 : -1;
    if (row >= from && row < to) {
      const parts: Array<[number, number]> = [];
      if (row > from) parts.push([from, row]);
      parts.push([row, row + 1]);
      if (row + 1 < to) parts.push([row + 1, to]);
      return parts;
    }
  }
  const middle = from + Math.ceil((to - from) / 2);
  return [
    [from, middle],
    [middle, to],
  ];
}

class Semaphore {
  #available: number;
  readonly #waiters: Array<() => void> = [];
  constructor(size: number) {
    this.#available = size;
  }
  async acquire(signal: AbortSignal): Promise<void> {
    if (this.#available > 0) {
      this.#available--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(grant);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new AbortedError('waiting for an insert slot aborted'));
      };
      const grant = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(grant);
    });
  }
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#available++;
  }
}
