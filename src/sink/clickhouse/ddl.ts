// Owns ClickHouse's CREATE TABLE for a route's missing table: a DDL template with `{database}` and
// `{table}` placeholders (quoted here), or the default table that keeps the whole message.
import type { TableRef } from '../types.ts';

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

/** The statement for `table`: the template (or the default) with its placeholders quoted. */
export function renderTableDdl(table: TableRef, template: string | undefined): string {
  return (template ?? defaultTableDdl).replaceAll('{database}', quoteIdent(table.database)).replaceAll('{table}', quoteIdent(table.table));
}

export function quoteIdent(name: string): string {
  return `\`${name.replaceAll('\\', '\\\\').replaceAll('`', '\\`')}\``;
}
