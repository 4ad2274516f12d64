// Owns what a delivery does with a range in doubt (docs/design/delivery.md §11): an insert that may
// have landed, refused on a retry after the table's live schema changed. Splitting it would insert
// its rows under new tokens (twice, if the first attempt landed); instead the row the refusal names
// is left out — recorded first — and the rest is sent again under the same token, which the
// warehouse deduplicates if the first attempt landed; the row is dead-lettered marked
// may-have-landed. A refusal naming no row cannot be narrowed down: the range is held.
import type { PartReason } from '../ack/ledger.ts';
import { batchRowOf } from '../encode/batch-body.ts';
import { AbortedError, InserterError } from '../errors/inserter-error.ts';
import type { WarehouseError } from '../sink/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { Range } from './delivery-range.ts';
import { tableName } from './failure-report.ts';
import type { TableSchemas } from './table-schemas.ts';

/**
 * Reads the table's live schema again before a range in limbo is judged: the server refused it
 * under its schema of now, which a cached read may not show yet. True when it cannot be read (the
 * range is then in doubt); else the range's fingerprint is the fresh one.
 */
export async function refreshFingerprint(schemas: TableSchemas, range: Range): Promise<boolean> {
  const { lane, sink, signal } = range;
  schemas.invalidate(sink, lane.table);
  try {
    range.fingerprint = (await schemas.live(sink, lane.route, lane.table, signal)).fingerprint;
    return false;
  } catch (error) {
    if (error instanceof AbortedError || signal.aborted) throw error instanceof AbortedError ? error : new AbortedError('schema read aborted', { cause: error });
    return true;
  }
}

interface Telemetry {
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly report: (error: InserterError) => void;
}

/**
 * Leaves the row a refusal names out of the range, durably (the journal records it before the next
 * attempt is sent). False when the refusal names no row of the range.
 */
export async function excludeNamedRow(range: Range, failure: WarehouseError, refusal: PartReason, telemetry: Telemetry): Promise<boolean> {
  const row = failure.row === undefined ? undefined : batchRowOf(failure.row, range.from, range.to, range.excluded);
  if (row === undefined) return false;
  const reason: PartReason = range.excludedReason ?? { ...refusal, mayHaveLanded: true };
  const excluded = [...range.excluded, row].sort((a, b) => a - b);
  await range.journal?.exclude(range.from, range.to, excluded, reason, range.signal);
  range.excluded = excluded;
  range.excludedReason = reason;
  const { lane } = range;
  telemetry.metrics.splits.inc({ destination: lane.destination.id, table: lane.table.table, class: 'in_doubt' });
  const offset = String(range.batch.records[row]?.offset);
  telemetry.logger.error(
    { destination: lane.destination.id, table: tableName(lane), token: range.token, offset, class: failure.errorClass, code: 'INSERTER_DELIVERY_IN_DOUBT', err: failure },
    'a row of an insert in doubt is refused under a changed schema: the rest is sent again under the same token; the row is dead-lettered marked may-have-landed',
  );
  telemetry.report(new InserterError('INSERTER_DELIVERY_IN_DOUBT', `row at offset ${offset} refused after a schema change while an earlier insert of it may have landed`, { cause: failure }));
  return true;
}

/** Logs that a range in doubt is held; returns the error to report. */
export function noticeHold(range: Range, failure: WarehouseError, logger: Logger): InserterError {
  const { lane } = range;
  logger.error(
    { destination: lane.destination.id, table: tableName(lane), token: range.token, rows: range.to - range.from, class: failure.errorClass, code: 'INSERTER_DELIVERY_IN_DOUBT', err: failure },
    'an insert in doubt is refused under a changed schema without naming a row: holding it (retried whole under its token); revert the schema change, or resolve it by hand',
  );
  return new InserterError('INSERTER_DELIVERY_IN_DOUBT', 'insert refused after a schema change while an earlier attempt may have landed', { cause: failure });
}
