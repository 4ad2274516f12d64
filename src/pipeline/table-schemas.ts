// Owns the live schema of every (destination, table): read from the warehouse, cached for
// schemaRefreshMs, refreshed on demand after a schema error, and the lightweight CREATE TABLE IF
// NOT EXISTS when a mapped table is missing. Existing tables are never altered.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { rowShapeFor, type RowShape } from '../batch/row-encoder.ts';
import type { Config, RouteConfig } from '../config/load.ts';
import { ErrorClasses } from '../errors/classes.ts';
import { WarehouseError } from '../sink/clickhouse/classify.ts';
import { quoteIdent } from '../sink/clickhouse/sink.ts';
import type { Sink, TableRef } from '../sink/types.ts';
import type { Logger } from '../telemetry/logger.ts';

interface Entry {
  shape: RowShape;
  loadedAt: number;
}

export class TableSchemas {
  readonly #entries = new Map<string, Entry>();
  readonly #loading = new Map<string, Promise<RowShape>>();
  readonly #config: Config;
  readonly #logger: Logger;

  constructor(config: Config, logger: Logger) {
    this.#config = config;
    this.#logger = logger;
  }

  async shape(sink: Sink, route: RouteConfig, table: TableRef, signal: AbortSignal): Promise<RowShape> {
    const key = `${sink.destinationId}\u0000${table.database}\u0000${table.table}`;
    const entry = this.#entries.get(key);
    if (entry !== undefined && Date.now() - entry.loadedAt < this.#config.schemaRefreshMs) return entry.shape;
    let loading = this.#loading.get(key);
    if (loading === undefined) {
      loading = this.#load(sink, route, table, signal).then(
        (shape) => {
          this.#entries.set(key, { shape, loadedAt: Date.now() });
          this.#loading.delete(key);
          return shape;
        },
        (error: unknown) => {
          this.#loading.delete(key);
          throw error;
        },
      );
      this.#loading.set(key, loading);
    }
    return loading;
  }

  invalidate(sink: Sink, table: TableRef): void {
    this.#entries.delete(`${sink.destinationId}\u0000${table.database}\u0000${table.table}`);
  }

  async #load(sink: Sink, route: RouteConfig, table: TableRef, signal: AbortSignal): Promise<RowShape> {
    let schema = await sink.describe(table, signal);
    if (schema === undefined && route.createTable.enabled) {
      const ddl = await this.#ddl(route, table);
      this.#logger.info({ destination: sink.destinationId, table: `${table.database}.${table.table}` }, 'creating missing table');
      await sink.createTable(ddl, signal);
      schema = await sink.describe(table, signal);
    }
    if (schema === undefined) {
      throw new WarehouseError(ErrorClasses.missingObject, `table ${table.database}.${table.table} does not exist`, 60, undefined);
    }
    return rowShapeFor(schema.columns);
  }

  async #ddl(route: RouteConfig, table: TableRef): Promise<string> {
    const template = route.createTable.ddlFile
      ? await readFile(resolve(this.#config.baseDir, route.createTable.ddlFile), 'utf8')
      : defaultTableDdl;
    return template.replaceAll('{database}', quoteIdent(table.database)).replaceAll('{table}', quoteIdent(table.table));
  }
}

/** The table made for a route without a DDL template: Kafka metadata, the team and the whole message. */
export const defaultTableDdl = `CREATE TABLE IF NOT EXISTS {database}.{table}
(
    team_id Int64,
    _message JSON,
    _topic LowCardinality(String),
    _partition UInt64,
    _offset UInt64,
    _key String,
    _timestamp DateTime,
    _timestamp_ms DateTime64(3),
    _headers Nested(name String, value String)
)
ENGINE = MergeTree
ORDER BY (team_id, _timestamp, _partition, _offset)
SETTINGS non_replicated_deduplication_window = 1000`;
