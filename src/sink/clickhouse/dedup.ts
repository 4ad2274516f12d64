// Owns knowing whether a ClickHouse table deduplicates inserts by `insert_deduplication_token`, read
// with its schema: the engine from system.tables, and the effective window — the table's own
// SETTINGS (in engine_full) over the server's merge_tree_settings. Plain MergeTree tables use
// non_replicated_deduplication_window (0 by default: no deduplication); Replicated* and Shared*
// (ClickHouse Cloud) use replicated_deduplication_window, bounded in time by
// replicated_deduplication_window_seconds. Every other engine (Buffer, Distributed, Null, Memory,
// Log, views…) keeps no tokens.
import { randomUUID } from 'node:crypto';
import type { Deduplication, TableRef } from '../types.ts';

export const NON_REPLICATED = 'non_replicated_deduplication_window';
export const REPLICATED = 'replicated_deduplication_window';
export const REPLICATED_SECONDS = 'replicated_deduplication_window_seconds';

/** `host:tcpPort` of the server evaluating it: names a replica (replicas of one host differ by port). */
export const REPLICA_EXPRESSION = "concat(hostName(), ':', toString(tcpPort()))";

/**
 * One row per table: its engine, engine_full, the server defaults as `name=value` (any version),
 * what tells its definition's version (`metadata_version` exists from ClickHouse 24.2 on: the
 * COLUMNS matcher selects it where it exists, so older servers still answer), and the materialized
 * views reading from it (`database.name@uuid`, sorted): a view can refuse rows the table takes.
 */
export const deduplicationQuery = `SELECT engine, engine_full,
  (SELECT groupArray(concat(name, '=', value)) FROM system.merge_tree_settings
   WHERE name IN ('${NON_REPLICATED}', '${REPLICATED}', '${REPLICATED_SECONDS}')) AS defaults,
  (SELECT arraySort(groupArray(concat(database, '.', name, '@', toString(uuid)))) FROM system.tables
   WHERE (database, name) IN (SELECT arrayJoin(arrayZip(dependencies_database, dependencies_table))
     FROM system.tables WHERE database = {db:String} AND name = {table:String})) AS dependents,
  toString(uuid) AS uuid, COLUMNS('^metadata_(version|modification_time)$'),
  toInt64(now()) - toInt64(metadata_modification_time) AS metadata_age_seconds,
  ${REPLICA_EXPRESSION} AS replica
FROM system.tables WHERE database = {db:String} AND name = {table:String}`;

/** A row of deduplicationQuery as JSONEachRow returns it. */
export interface EngineQueryRow {
  readonly engine: string;
  readonly engine_full: string;
  readonly defaults: readonly string[];
  /** The materialized views reading from the table, `database.name@uuid`, sorted. */
  readonly dependents?: readonly string[];
  readonly uuid?: string;
  readonly metadata_version?: number | string;
  readonly metadata_modification_time?: string;
  /** Seconds since the metadata file was written, by the server's clock (now() − its mtime). */
  readonly metadata_age_seconds?: number | string;
  /** `host:tcpPort` of the server that answered (replica-versions.ts checks it is one the cluster names). */
  readonly replica?: string;
}

/**
 * A metadata file written less than this many seconds before the read: its time (in seconds) could
 * still be repeated by a change and its revert within the same second.
 */
const UNSETTLED_SECONDS = 2;

/**
 * The version of the table's definition (TableSchema.version), prefixed with the table's uuid (one
 * per table generation: a table dropped and created again counts its versions anew). Replicated
 * engines (and ClickHouse Cloud's shared ones) count every ALTER in `metadata_version`, the same on
 * every replica — 0 included, a table never altered (its metadata file's time differs between
 * replicas: it must not be used there). Other tables have 0 there, and their metadata file's
 * modification time (seconds) moves instead, read from the one server that holds the table.
 * Undefined when neither is known (a database that keeps no metadata files, a server before 24.2
 * for a replicated table: then only the columns are compared).
 */
export function definitionVersion(row: EngineQueryRow): string | undefined {
  const table = tableVersion(row);
  // A view created, dropped or re-created in between changes what a retry's refusal proves
  // (review 2026-12-06c, finding C); a view's own ALTER … MODIFY QUERY is not seen.
  const views = row.dependents === undefined || row.dependents.length === 0 ? '' : `+${row.dependents.join(',')}`;
  return table === undefined ? (views === '' ? undefined : views) : table + views;
}

function tableVersion(row: EngineQueryRow): string | undefined {
  const generation = row.uuid === undefined || row.uuid === '00000000-0000-0000-0000-000000000000' ? '' : `${row.uuid}/`;
  const replicated = row.engine.startsWith('Replicated') || row.engine.startsWith('Shared');
  if (row.metadata_version !== undefined && (replicated || Number(row.metadata_version) > 0)) return `${generation}v${Number(row.metadata_version)}`;
  if (replicated) return undefined;
  const time = row.metadata_modification_time;
  if (time === undefined || time.startsWith('1970-01-01')) return undefined;
  // Changed within the last seconds: a version that equals no other read (a range sent under it and
  // refused later is judged in doubt, never split), as a change and its revert within the same
  // second would repeat the time (review 2026-12-06c, the same-second limit).
  if (row.metadata_age_seconds !== undefined && Number(row.metadata_age_seconds) < UNSETTLED_SECONDS) return `${generation}t${time}~${randomUUID()}`;
  return `${generation}t${time}`;
}

export interface EngineRow {
  readonly engine: string;
  readonly engine_full: string;
  readonly defaults: Readonly<Record<string, string>>;
}

export function engineRow(row: EngineQueryRow): EngineRow {
  const defaults: Record<string, string> = {};
  for (const pair of row.defaults) {
    const eq = pair.indexOf('=');
    if (eq > 0) defaults[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return { engine: row.engine, engine_full: row.engine_full, defaults };
}

/** Suggested window in the fix we print; docs/operations.md "Deduplication window" says how to size it. */
const suggested = 1000;

export function deduplicationOf(table: TableRef, row: EngineRow): Deduplication {
  const { engine } = row;
  const name = `${table.database}.${table.table}`;
  if (!engine.endsWith('MergeTree')) {
    return {
      engine,
      byToken: false,
      setting: undefined,
      windowBlocks: undefined,
      windowSeconds: undefined,
      reason: `engine ${engine} keeps no insert tokens (only MergeTree-family tables deduplicate); insert into a MergeTree-family table instead, e.g. the table behind the ${engine} one`,
    };
  }
  const replicated = engine.startsWith('Replicated') || engine.startsWith('Shared');
  const setting = replicated ? REPLICATED : NON_REPLICATED;
  const windowBlocks = effective(row, setting) ?? (replicated ? 100 : 0);
  const windowSeconds = replicated ? effective(row, REPLICATED_SECONDS) : undefined;
  const byToken = windowBlocks > 0;
  return {
    engine,
    byToken,
    setting,
    windowBlocks,
    windowSeconds,
    reason: byToken ? undefined : `${engine} with ${setting} = 0 keeps no insert tokens; fix: ALTER TABLE ${name} MODIFY SETTING ${setting} = ${suggested}`,
  };
}

/** The table's own value (from the SETTINGS clause of engine_full), else the server default. */
function effective(row: EngineRow, setting: string): number | undefined {
  const clause = row.engine_full.lastIndexOf(' SETTINGS ');
  if (clause >= 0) {
    const own = new RegExp(`(?:^|[\\s,])${setting}\\s*=\\s*'?(\\d+)'?`).exec(row.engine_full.slice(clause + 9));
    if (own) return Number(own[1]);
  }
  const server = row.defaults[setting];
  return server === undefined || !/^\d+$/.test(server) ? undefined : Number(server);
}
