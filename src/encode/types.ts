// Owns the row-encoder contract: how a decoded row becomes bytes of one insert format for one
// destination table, built once per live schema version from its columns. The sink is told the
// format with each batch. Pass-through JSONEachRow is the encoder today (encode/json-each-row.ts);
// a typed RowBinaryWithDefaults or Native encoder plugs in here with one column writer per type,
// built from the same columns, and is chosen per route (`encoding`) — docs/design/delivery.md §10.
import type { ColumnInfo } from '../sink/types.ts';
import type { Row } from '../decode/row.ts';
import type { SourceRecord } from '../source/types.ts';
import type { ByteSink } from './byte-chunks.ts';
import { JsonEachRowEncoder } from './json-each-row.ts';

export interface RowEncoder {
  /** The insert format its output is in (ClickHouse's FORMAT name). */
  readonly format: string;
  /** Appends one row: the decoded row, with the source's metadata the table has columns for. */
  write(out: ByteSink, record: SourceRecord, row: Row, teamId: number | undefined): void;
}

/** The encoder for a table's live columns. */
export function rowEncoderFor(columns: readonly ColumnInfo[]): RowEncoder {
  return new JsonEachRowEncoder(columns);
}
