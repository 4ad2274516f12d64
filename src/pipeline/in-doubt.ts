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
import { retry, type BackoffPolicy } from '../sink/retry.ts';

/** Schema reads before a range whose table cannot be read is taken to be in doubt. */
const SCHEMA_READS = 8;

/**
 * Reads the table's live schema again before a range in limbo is judged: the server refused it
 * under its schema of now, which a cached read may not show yet. True when it cannot be read after
 * a few tries (the range is then in doubt); else the range's fingerprint is the fresh one.
 */
export async function refreshFingerprint(schemas: TableSchemas, range: Range, backoff: BackoffPolicy): Promise<boolean> {
  const { lane, sink, signal } = range;
  schemas.invalidate(sink, lane.table);
  try {
    // A read that fails now and then (the network) must not put a range in doubt: read again a few times.
    const read = await retry(() => schemas.live(sink, lane.route, lane.table, signal), { ...backoff, maxAttempts: SCHEMA_READS }, signal, { isRetryable: () => !signal.aborted });
    range.fingerprint = read.fingerprint;
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
  const row = namedRow(range, failure);
  if (row === undefined) return false;
  // Each row left out keeps the refusal that named it (a second exclusion has its own reason).
  const at = insertionPoint(range.excluded, row);
  const excluded = [...range.excluded];
  excluded.splice(at, 0, row);
  const reasons = [...range.excludedReasons];
  reasons.splice(at, 0, { ...refusal, mayHaveLanded: true });
  await range.journal?.exclude(range.from, range.to, excluded, reasons, range.signal);
  range.excluded = excluded;
  range.excludedReasons = reasons;
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

/** Where `row` goes in the ascending `rows`. */
function insertionPoint(rows: readonly number[], row: number): number {
  let at = 0;
  while (at < rows.length && (rows[at] as number) < row) at++;
  return at;
}

/** The batch row a refusal names within the range (body numbering, rows left out skipped), if any. */
export function namedRow(range: Range, failure: WarehouseError): number | undefined {
  return failure.row === undefined ? undefined : batchRowOf(failure.row, range.from, range.to, range.excluded);
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
