// Owns the column-writer contract: one writer per column type, built once per schema version, that
// turns one JSON value (a byte range of the row) into the type's RowBinary bytes exactly as
// ClickHouse's JSONEachRow input would read it, or throws ValueError saying why ClickHouse refuses it.
import type { RowBuffer } from './row-buffer.ts';

export interface ColumnWriter {
  /** The type as system.columns names it. */
  readonly type: string;
  /** Whether JSON null is a value of the type (Nullable, LowCardinality(Nullable)). */
  readonly nullable: boolean;
  /**
   * Writes the JSON value [start, end) of `src` (no surrounding whitespace). `null` reaches only a
   * nullable writer or, inside arrays and maps, a writer whose `zero` it then writes.
   */
  json(out: RowBuffer, src: Buffer, start: number, end: number): void;
  /** What ClickHouse stores for a JSON null it may not keep (the column's insertDefault: zeros). */
  zero(out: RowBuffer): void;
  /** The type's default value (an omitted field of a column without a DEFAULT expression). */
  typeDefault(out: RowBuffer): void;
}

/** Whether [start, end) is the literal `null`. */
export function isNull(src: Buffer, start: number, end: number): boolean {
  return end - start === 4 && src[start] === 0x6e && src[start + 1] === 0x75 && src[start + 2] === 0x6c && src[start + 3] === 0x6c;
}
