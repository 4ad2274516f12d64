// Owns turning a batch's row range into one insert body with the destination's row encoder. A row
// the encoder refuses fails the range the way a warehouse rejection would (class row_data, naming
// the row), so the delivery isolates and dead-letters it with the same machinery.
import type { Batch } from '../batch/lane.ts';
import type { Row } from '../decode/row.ts';
import { ErrorClasses } from '../errors/classes.ts';
import { WarehouseError } from '../sink/errors.ts';
import type { SourceRecord } from '../source/types.ts';
import { ByteChunks } from './byte-chunks.ts';
import type { RowEncoder } from './types.ts';

/**
 * The range's insert body. A row the encoder refuses (a typed encoder meeting a value the warehouse
 * would reject too) fails the range as the warehouse would, naming that row: it is isolated and
 * dead-lettered like any rejected row, and nothing was sent.
 */
export function encodeRange(encoder: RowEncoder, batch: Batch, from: number, to: number): ByteChunks {
  const out = new ByteChunks();
  let i = from;
  try {
    for (; i < to; i++) encoder.write(out, batch.records[i] as SourceRecord, batch.rows[i] as Row, batch.teams[i]);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'INSERTER_ENCODE_REJECTED') throw error;
    throw new WarehouseError(ErrorClasses.rowData, `${(error as Error).message} (at row ${i - from + 1})`, undefined, error, i - from + 1);
  }
  return out;
}
