// Owns dead-lettering the rows of a batch a delivery decided on (a range, or rows left out of an
// insert): written a bounded number at a time, and — when the delivery is retried after a failure
// (a ledger save, a write that failed) — only the rows whose dead letter is not acknowledged yet.
import type { PartReason } from '../ack/ledger.ts';
import type { Batch, Lane } from '../batch/lane.ts';
import type { DeadLetterReason } from '../deadletter/types.ts';
import type { SourceRecord } from '../source/types.ts';
import type { Logger } from '../telemetry/logger.ts';

const concurrency = 64;

export class RangeLetters {
  readonly #logger: Logger;
  readonly #write: (lane: Lane, record: SourceRecord, team: number | undefined, reason: DeadLetterReason) => Promise<void>;
  /** Per batch, rows whose dead letter was acknowledged. */
  readonly #written = new WeakMap<Batch, Set<number>>();

  constructor(logger: Logger, write: (lane: Lane, record: SourceRecord, team: number | undefined, reason: DeadLetterReason) => Promise<void>) {
    this.#logger = logger;
    this.#write = write;
  }

  /** Rows [from, to) of the batch. */
  async rows(lane: Lane, batch: Batch, from: number, to: number, reason: PartReason): Promise<void> {
    for (let i = from; i < to; i += concurrency) {
      const rows: Array<Promise<void>> = [];
      for (let j = i; j < Math.min(to, i + concurrency); j++) rows.push(this.#row(lane, batch, j, reason));
      await Promise.all(rows);
    }
  }

  /** The rows left out of an insert (§11). */
  async excluded(lane: Lane, batch: Batch, rows: readonly number[], reasons: readonly PartReason[]): Promise<void> {
    for (let i = 0; i < rows.length; i++) await this.#row(lane, batch, rows[i] as number, reasons[i] ?? (reasons[reasons.length - 1] as PartReason));
  }

  async #row(lane: Lane, batch: Batch, index: number, reason: PartReason): Promise<void> {
    const written = this.#written.get(batch);
    if (written?.has(index) === true) return;
    const record = batch.records[index] as SourceRecord;
    this.#logger.warn(
      { route: lane.route.name, topic: record.topic, partition: record.partition, offset: String(record.offset), class: reason.errorClass, code: reason.serverCode },
      'row rejected by the warehouse; dead-lettering it',
    );
    await this.#write(lane, record, batch.teams[index], reason);
    if (written === undefined) this.#written.set(batch, new Set([index]));
    else written.add(index);
  }
}
