// Owns reading a table's definition version from every replica behind one URL (review 2026-12-06c,
// finding B). Behind a load balancer, replicas apply an ALTER at different times: an attempt can
// land on a replica that applied it while the retry and its fresh schema read hit one that has not.
// Both reads then show the same version on that replica, and the judgment (docs/design/delivery.md
// §11) would take the retry's refusal as the first attempt's: the range is split, rows twice. So
// with a cluster named (or ClickHouse Cloud's `default` for its Shared engines), the version is
// also read from every replica of the cluster (clusterAllReplicas): it counts as a version only
// when every replica the cluster names answered with the same one; otherwise it is a version that
// equals no other read, and a range sent under it and refused later is judged in doubt.
import { randomUUID } from 'node:crypto';
import { definitionVersion, type EngineQueryRow } from './dedup.ts';

/**
 * One row per replica that answered: what tells its definition's version (as the local read, the
 * views by name: a scalar subquery would run on the initiator, not on the replica), and how many
 * replicas the cluster names. A replica that cannot be reached is skipped, so it shows as a
 * missing row, never as a failed read.
 */
export const replicaVersionsQuery = `SELECT engine, toString(uuid) AS uuid, COLUMNS('^metadata_(version|modification_time)$'),
  toInt64(now()) - toInt64(metadata_modification_time) AS metadata_age_seconds,
  arraySort(arrayMap((d, t) -> concat(d, '.', t), dependencies_database, dependencies_table)) AS dependents,
  (SELECT count() FROM system.clusters WHERE cluster = {cluster:String}) AS replicas
FROM clusterAllReplicas({cluster:String}, system.tables) WHERE database = {db:String} AND name = {table:String}
SETTINGS skip_unavailable_shards = 1`;

/** A row of replicaVersionsQuery as JSONEachRow returns it. */
export interface ReplicaVersionRow extends Omit<EngineQueryRow, 'engine_full' | 'defaults'> {
  readonly replicas: number | string;
}

/** The cluster whose replicas to read for a table of `engine`: the configured one, else Cloud's `default` for Shared engines. */
export function clusterFor(configured: string | undefined, engine: string): string | undefined {
  if (configured !== undefined) return configured;
  return engine.startsWith('Shared') ? 'default' : undefined;
}

/**
 * The version to record: the local read's, joined with the one every replica agreed on, or one that
 * equals no other read when a replica did not answer, did not have the table or disagreed.
 */
export function agreedVersion(local: string | undefined, rows: readonly ReplicaVersionRow[]): string | undefined {
  const expected = rows.length === 0 ? 1 : Number(rows[0]?.replicas);
  let agreed: string | undefined;
  let disagree = rows.length < expected;
  for (let i = 0; i < rows.length && !disagree; i++) {
    const row = rows[i] as ReplicaVersionRow;
    const version = definitionVersion({ ...row, engine_full: '', defaults: [] }) ?? '';
    if (i === 0) agreed = version;
    else disagree = version !== agreed;
  }
  if (disagree) return `~replicas-differ~${randomUUID()}`;
  // Every replica read nothing that tells a version (servers before 24.2): only columns compare.
  if (local === undefined && agreed === '') return undefined;
  return `${local ?? ''}|all:${agreed ?? ''}`;
}
