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
import { typedEncoderFor } from './rowbinary/encoder.ts';

export interface RowEncoder {
  /** The insert format its output is in (ClickHouse's FORMAT name). */
  readonly format: string;
  /**
   * The columns the body gives values for, in order, or undefined when the format names its fields
   * (JSONEachRow). A positional format (RowBinaryWithDefaults) lists them: the insert names them.
   */
  readonly columns: readonly string[] | undefined;
  /** Appends one row: the decoded row, with the source's metadata the table has columns for. */
  write(out: ByteSink, record: SourceRecord, row: Row, teamId: number | undefined): void;
}

export type Encoding = 'passthrough' | 'typed' | 'auto';

/** The chosen encoder for a table's live columns, and, when typed was asked for but cannot be exact, why. */
export interface EncoderChoice {
  readonly encoder: RowEncoder;
  readonly fallback: string | undefined;
}

/** What else of the live schema an encoder may need besides its columns. */
export interface EncoderOptions {
  /** The time zone date-times without their own zone are read in (TableSchema.timezone); default UTC. */
  readonly timezone?: string | undefined;
}

/** How the pipeline picks encoders (rowEncoderFor, or a wrapper of it in the simulation). */
export type EncoderFactory = (columns: readonly ColumnInfo[], encoding: Encoding, options?: EncoderOptions) => EncoderChoice;

/** The encoder for a table's live columns under a route's `encoding`. */
export function rowEncoderFor(columns: readonly ColumnInfo[], encoding: Encoding = 'passthrough', options: EncoderOptions = {}): EncoderChoice {
  if (encoding === 'passthrough') return { encoder: new JsonEachRowEncoder(columns), fallback: undefined };
  const typed = typedEncoderFor(columns, options.timezone === undefined ? {} : { serverTimezone: options.timezone });
  if (!('uncovered' in typed)) return { encoder: typed, fallback: undefined };
  return { encoder: new JsonEachRowEncoder(columns), fallback: typed.uncovered };
}
