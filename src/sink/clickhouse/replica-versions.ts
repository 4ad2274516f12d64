// Owns reading a table's definition version from every replica behind one URL (review 2026-12-06c,
// finding B; review 2026-12-07b). Behind a load balancer, replicas apply an ALTER at different
// times: an attempt can land on a replica that applied it while the retry and its fresh schema read
// hit one that has not. Both reads then show the same version on that replica, and the judgment
// (docs/design/delivery.md §11) would take the retry's refusal as the first attempt's: the range is
// split, rows twice. So with a cluster named (or ClickHouse Cloud's `default` for its Shared
// engines), the version is also read from every replica of the cluster (clusterAllReplicas). It
// counts as a version only when every replica answered, the replicas that answered include the ones
// this read reached, and they agree on what is replicated (the definition's version and the views'
// names); each replica's own table and view generations (uuids, which differ where a table was
// created per replica) are part of it, by replica. Otherwise it is a version that equals no other
// read, and a range sent under it and refused later is judged in doubt, never split.
import { randomUUID } from 'node:crypto';
import { definitionVersion, REPLICA_EXPRESSION, type EngineQueryRow } from './dedup.ts';

/**
 * One row per replica that answered: who it is, what tells its definition's version, and the names
 * of the views reading from the table (per replica: a scalar subquery would run on the initiator).
 * On every row: how many replicas the cluster names, how many the table's replication knows
 * (Replicated engines; 0 otherwise), and who the initiator is. A replica that cannot be reached is
 * skipped, so it shows as a missing row, never as a failed read.
 */
export const replicaVersionsQuery = `SELECT ${REPLICA_EXPRESSION} AS replica, engine, toString(uuid) AS uuid,
  COLUMNS('^metadata_(version|modification_time)$'),
  toInt64(now()) - toInt64(metadata_modification_time) AS metadata_age_seconds,
  arraySort(arrayMap((d, t) -> concat(d, '.', t), dependencies_database, dependencies_table)) AS dependents,
  (SELECT count() FROM system.clusters WHERE cluster = {cluster:String}) AS replicas,
  (SELECT max(total_replicas) FROM system.replicas WHERE database = {db:String} AND table = {table:String}) AS replicated_total,
  (SELECT ${REPLICA_EXPRESSION}) AS initiator
FROM clusterAllReplicas({cluster:String}, system.tables) WHERE database = {db:String} AND name = {table:String}
SETTINGS skip_unavailable_shards = 1`;

/** Each replica's views of those names (`database.name`), with their uuids: a view re-created on one replica moves its uuid there. */
export const replicaViewsQuery = `SELECT ${REPLICA_EXPRESSION} AS replica, concat(database, '.', name, '@', toString(uuid)) AS view
FROM clusterAllReplicas({cluster:String}, system.tables) WHERE concat(database, '.', name) IN {views:Array(String)}
SETTINGS skip_unavailable_shards = 1`;

/** A row of replicaVersionsQuery as JSONEachRow returns it (UInt64 counts quoted). */
export interface ReplicaVersionRow extends Omit<EngineQueryRow, 'engine_full' | 'defaults'> {
  readonly replica: string;
  /** The names (`database.name`) of the views reading from the table on this replica, sorted. */
  readonly dependents?: readonly string[];
  readonly replicas: number | string;
  readonly replicated_total?: number | string | null;
  readonly initiator: string;
}

/** A row of replicaViewsQuery. */
export interface ReplicaViewRow {
  readonly replica: string;
  /** `database.name@uuid`. */
  readonly view: string;
}

/** The cluster whose replicas to read for a table of `engine`: the configured one, else Cloud's `default` for Shared engines. */
export function clusterFor(configured: string | undefined, engine: string): string | undefined {
  if (configured !== undefined) return configured;
  return engine.startsWith('Shared') ? 'default' : undefined;
}

/** The views named by any replica's row: what replicaViewsQuery asks for. */
export function viewNames(rows: readonly ReplicaVersionRow[]): string[] {
  const names = new Set<string>();
  for (const row of rows) for (const name of row.dependents ?? []) names.add(name);
  return [...names].sort();
}

const differ = (): string => `~replicas-differ~${randomUUID()}`;

function positiveInteger(value: number | string | null | undefined): number {
  const n = Number(value ?? Number.NaN);
  return Number.isSafeInteger(n) && n > 0 ? n : Number.NaN;
}

/**
 * The version to record: the local read's (`local`, from the replica `localReplica` the URL reached)
 * joined with what every replica agreed on and each replica's own generations — or one that equals
 * no other read when a replica did not answer, is not among those that answered, or disagreed.
 */
export function agreedVersion(local: string | undefined, rows: readonly ReplicaVersionRow[], views: readonly ReplicaViewRow[], localReplica?: string): string | undefined {
  if (rows.length === 0) return differ();
  // Every replica the cluster names, and at least as many as the table's replication knows (a
  // replica behind the load balancer that the cluster does not name would be unseen otherwise).
  let expected = 0;
  for (const row of rows) {
    const named = positiveInteger(row.replicas);
    if (Number.isNaN(named)) return differ();
    expected = Math.max(expected, named, Number(row.replicated_total ?? 0) || 0);
  }
  if (rows.length < expected) return differ();
  const answered = new Set(rows.map((r) => r.replica));
  if (answered.size !== rows.length) return differ();
  for (const row of rows) if (!answered.has(row.initiator)) return differ();
  if (localReplica !== undefined && !answered.has(localReplica)) return differ();
  let shared: string | undefined;
  let nothing = true;
  const own: string[] = [];
  for (const row of rows) {
    const names = row.dependents ?? [];
    const found = views.filter((v) => v.replica === row.replica).map((v) => v.view);
    found.sort();
    // A view dropped or created between the two queries: its names and its uuids do not match.
    if (found.length !== names.length || found.some((v, i) => !v.startsWith(`${names[i] ?? ''}@`))) return differ();
    // What is replicated (the same on every replica once applied), without this replica's uuid.
    const version = definitionVersion({ ...row, uuid: undefined, engine_full: '', defaults: [], dependents: names });
    if (version !== undefined) nothing = false;
    if (shared === undefined) shared = version ?? '';
    else if ((version ?? '') !== shared) return differ();
    own.push(`${row.replica}=${row.uuid ?? ''}${found.length > 0 ? `+${found.join(',')}` : ''}`);
  }
  // Every replica read nothing that tells a version (servers before 24.2): only columns compare.
  if (local === undefined && nothing) return undefined;
  own.sort();
  return `${local ?? ''}|all:${shared ?? ''}|${own.join(';')}`;
}
