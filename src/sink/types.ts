// Owns the warehouse-neutral sink contract: one Sink per destination (a ClickHouse cluster, later a
// BigQuery dataset or Snowflake account). The core asks it for a table's live schema, to create a
// missing table, and to insert one batch idempotently under a deterministic token.
import type { ColumnInfo } from '../batch/row-encoder.ts';

export interface TableRef {
  readonly database: string;
  readonly table: string;
}

export interface TableSchema {
  readonly columns: readonly ColumnInfo[];
}

export interface InsertBatch {
  readonly table: TableRef;
  /** JSONEachRow lines. */
  readonly body: readonly Buffer[];
  readonly rows: number;
  readonly bytes: number;
  /** Deterministic: re-sending the same batch with the same token must not duplicate rows. */
  readonly token: string;
}

export interface InsertResult {
  readonly writtenRows: number | undefined;
}

export interface Sink {
  readonly destinationId: string;
  describe(table: TableRef, signal?: AbortSignal): Promise<TableSchema | undefined>;
  /** Runs a CREATE TABLE IF NOT EXISTS statement. */
  createTable(ddl: string, signal?: AbortSignal): Promise<void>;
  insert(batch: InsertBatch, signal?: AbortSignal): Promise<InsertResult>;
  close(): Promise<void>;
}
