// Owns the warehouse-neutral sink contract: one Sink per destination (a ClickHouse cluster, later a
// BigQuery dataset or Snowflake account). The core asks it for a table's live schema, to create a
// missing table, and to insert one batch idempotently under a deterministic token.

export interface TableRef {
  readonly database: string;
  readonly table: string;
}

/** One column of a table's live schema. */
export interface ColumnInfo {
  readonly name: string;
  readonly type: string;
  /** '' | 'DEFAULT' | 'MATERIALIZED' | 'ALIAS' | 'EPHEMERAL' */
  readonly defaultKind: string;
}

export interface TableSchema {
  readonly columns: readonly ColumnInfo[];
  /**
   * Whether the table recognises a repeated insert token. Optional: a sink that cannot tell (or a
   * warehouse whose every table deduplicates, like the simulation's in-memory one) leaves it out,
   * and the table is then treated as able to deduplicate — the core cannot refuse what it cannot see.
   */
  readonly deduplication?: Deduplication;
  /**
   * The time zone the warehouse reads date-times without their own zone in, for the inserting user
   * (ClickHouse: `timezone()`, the session's zone, else the server's). Optional: a sink that does not
   * say leaves it out, and UTC is assumed.
   */
  readonly timezone?: string | undefined;
  /**
   * Changes whenever the table's definition changes, even when a later change restores an earlier
   * definition (ClickHouse: `metadata_version` of replicated engines, else the metadata's
   * modification time). Part of the schema's fingerprint, so a change and its revert between two
   * reads are told apart from no change (docs/design/delivery.md §11). Optional: a sink that cannot
   * tell leaves it out, and only the columns are compared.
   */
  readonly version?: string | undefined;
}

/** What the warehouse does with an insert whose token it has seen before (read with the schema). */
export interface Deduplication {
  /** The table's engine as the warehouse names it (MergeTree, SharedMergeTree, Buffer, View…). */
  readonly engine: string;
  /** True when a repeated token within the window is skipped, so a replay cannot duplicate rows. */
  readonly byToken: boolean;
  /** The setting that bounds it, or that would have to change to enable it. */
  readonly setting: string | undefined;
  /** Blocks (inserts) remembered per table; undefined when not applicable. */
  readonly windowBlocks: number | undefined;
  /** Seconds a token is remembered; undefined: no time limit. */
  readonly windowSeconds: number | undefined;
  /** When it cannot: why, and what to change, in words for an operator. */
  readonly reason: string | undefined;
}

export interface InsertBatch {
  readonly table: TableRef;
  /**
   * The rows, encoded in `format`. Nothing may read it once `insert()` has resolved: the core then
   * reuses its blocks for the next body (encode/block-pool.ts). After a rejection it is left alone.
   */
  readonly body: readonly Buffer[];
  /** The insert format of the body (the encoder's: JSONEachRow today; RowBinary and Native next). */
  readonly format: string;
  /** The columns a positional format gives, in order (the insert names them); undefined: JSONEachRow names its fields. */
  readonly columns?: readonly string[] | undefined;
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
  /**
   * Creates a missing table (if not exists) from a route's DDL template — its `{database}` and
   * `{table}` placeholders filled in as the warehouse quotes names — or, without one, the sink's
   * default table for a route.
   */
  createTable(table: TableRef, template: string | undefined, signal?: AbortSignal): Promise<void>;
  insert(batch: InsertBatch, signal?: AbortSignal): Promise<InsertResult>;
  close(): Promise<void>;
}
