// Owns turning a batch's row range into one insert body with the destination's row encoder. A row
// the encoder refuses fails the range the way a warehouse rejection would (class row_data, naming
// the row), so the delivery isolates and dead-letters it with the same machinery.
import type { Batch } from '../batch/lane.ts';
import type { Row } from '../decode/row.ts';
import { ErrorClasses } from '../errors/classes.ts';
import { WarehouseError } from '../sink/errors.ts';
import type { SourceRecord } from '../source/types.ts';
import { bodyBlocks } from './block-pool.ts';
import { ByteChunks } from './byte-chunks.ts';
import type { RowEncoder } from './types.ts';

/**
 * The range's insert body. A row the encoder refuses (a typed encoder meeting a value the warehouse
 * would reject too) fails the range as the warehouse would, naming that row: it is isolated and
 * dead-lettered like any rejected row, and nothing was sent. The body's blocks come from the
 * process's pool (block-pool.ts): the caller releases it once nothing can read it any more.
 */
export function encodeRange(encoder: RowEncoder, batch: Batch, from: number, to: number, excluded: readonly number[] = noRows): ByteChunks {
  const out = new ByteChunks(bodyBlocks);
  let i = from;
  // The body's row number of row i (what a warehouse's "(at row N)" counts): excluded rows are not in it.
  let bodyRow = 0;
  let skip = 0;
  try {
    for (; i < to; i++) {
      if (skip < excluded.length && excluded[skip] === i) {
        skip++;
        continue;
      }
      bodyRow++;
      encoder.write(out, batch.records[i] as SourceRecord, batch.rows[i] as Row, batch.teams[i]);
    }
  } catch (error) {
    out.release(); // nothing has seen it
    if ((error as { code?: unknown }).code !== 'INSERTER_ENCODE_REJECTED') throw error;
    throw new WarehouseError(ErrorClasses.rowData, `${(error as Error).message} (at row ${bodyRow})`, undefined, error, bodyRow);
  }
  return out;
}

/**
 * The batch row a body's row number names (1-based, as "(at row N)"), when the body of [from, to)
 * left out the `excluded` rows (ascending); undefined when out of range.
 */
export function batchRowOf(bodyRow: number, from: number, to: number, excluded: readonly number[]): number | undefined {
  let seen = 0;
  let skip = 0;
  for (let i = from; i < to; i++) {
    if (skip < excluded.length && excluded[skip] === i) {
      skip++;
      continue;
    }
    if (++seen === bodyRow) return i;
  }
  return undefined;
}

const noRows: readonly number[] = [];
