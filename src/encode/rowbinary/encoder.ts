// Owns the typed encoder: RowBinaryWithDefaults for a table's live columns, one column writer per
// type built once per schema version. (Placeholder until the column writers land.)
import type { ColumnInfo } from '../../sink/types.ts';
import type { RowEncoder } from '../types.ts';

/** Why a table's live schema cannot be encoded typed: names the column and its type. */
export interface Uncovered {
  readonly uncovered: string;
}

/** The typed encoder for `columns`, or why it cannot be exact for them. */
export function typedEncoderFor(columns: readonly ColumnInfo[]): RowEncoder | Uncovered {
  return { uncovered: `typed encoding is not available yet (${columns.length} columns)` };
}
