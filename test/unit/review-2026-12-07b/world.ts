// Test helper of review 2026-12-07b (bbabe13: the definition version read from every replica of the
// destination's cluster, src/sink/clickhouse/replica-versions.ts). Builds on review 2026-12-06c's
// world (TableState, scriptedSink, runToEnd) but answers the cluster read the way the REAL
// replicaVersionsQuery does, which 06c's clusterSchemaOf does not quite:
//   - `dependents` of a replica's row are `database.name` only (the query maps dependencies_database
//     and dependencies_table; no uuid), while the local read (deduplicationQuery) gives `name@uuid`;
//   - `replicas` is `count()` of system.clusters on the initiator, a UInt64 that JSONEachRow quotes
//     (a string), and it counts the replicas the cluster NAMES, not those behind the load balancer.
// Also: a sink whose schema reads can be held (a read that takes its snapshot when it starts and
// answers later), and a process owning two partitions of team 8 (two lanes into the same table).
import { definitionVersion } from '../../../src/sink/clickhouse/dedup.ts';
import { agreedVersion, type ReplicaVersionRow } from '../../../src/sink/clickhouse/replica-versions.ts';
import type { DestinationConfig } from '../../../src/config/load.ts';
import type { InsertBatch, InsertResult, Sink, TableSchema } from '../../../src/sink/types.ts';
import type { SourceRecord } from '../../../src/source/types.ts';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import { TOPIC, type TokenWarehouse } from '../../helpers/pipeline-world.ts';
import { base, engineRow, lost, type TableState } from '../review-2026-12-06c/world.ts';

export { base, config, extra, lost, records, runToEnd, schemaOf, scriptedSink, startProcess, type TableState } from '../review-2026-12-06c/world.ts';

/** A replica of the cluster: what its system.tables says (a TableState), by host name. */
export interface Replica {
  readonly host: string;
  state: TableState;
}

/**
 * The row replicaVersionsQuery gives for one replica (views by name only, counts quoted as JSONEachRow
 * does): `replica` names it, `initiator` the replica the cluster read reached, `replicatedTotal` the
 * replicas the table's replication knows (Replicated engines).
 */
export function clusterRow(state: TableState, named: number, replica = 'r0:9000', initiator = replica, replicatedTotal = 0): ReplicaVersionRow {
  const { engine_full: _full, defaults: _defaults, dependents, ...row } = engineRow(state);
  return { ...row, replica, initiator, dependents: (dependents ?? []).map((d) => d.split('@')[0] as string).sort(), replicas: String(named), replicated_total: String(replicatedTotal) };
}

/**
 * The schema ClickHouseSink.describe returns with a cluster configured: columns and local version
 * from the replica the URL reached (`local`), joined by the real agreedVersion with the rows of the
 * replicas the cluster names (`named`; those that answered are `answered`, default all of them) and
 * their views' uuids (replicaViewsQuery). Replicas are named `r{index in named}:9000`; a local
 * replica the cluster does not name is `outside:9000` (it also initiates the cluster read).
 */
export function describeWithCluster(local: TableState, named: readonly TableState[], answered: readonly TableState[] = named, replicatedTotal = 0): TableSchema {
  const positions = answered === named ? named.map((_s, i) => i) : answered.map((s) => named.indexOf(s));
  const localAt = named.indexOf(local);
  const localKey = localAt >= 0 ? `r${localAt}:9000` : 'outside:9000';
  const rows = answered.map((s, i) => clusterRow(s, named.length, `r${positions[i] ?? -1}:9000`, localKey, replicatedTotal));
  const views = answered.flatMap((s, i) => (s.dependents ?? []).map((view) => ({ replica: `r${positions[i] ?? -1}:9000`, view })));
  return { columns: [...local.columns], version: agreedVersion(definitionVersion(engineRow(local)), rows, views, localKey) };
}

/** A record of team 8 on `partition` (uuid `p{partition}-{offset}`, so two partitions' rows differ). */
export function recordOn(partition: number, offset: number): SourceRecord {
  const body = { team_id: 8, uuid: partition === 0 ? `u${offset}` : `p${partition}-${offset}` };
  return { topic: TOPIC, partition, offset: BigInt(offset), timestamp: BigInt(Date.now()), key: undefined, value: Buffer.from(JSON.stringify(body)), headers: [], epoch: 0 };
}

const refusedU4 = (at: number): WarehouseError => new WarehouseError(ErrorClasses.rowData, `Cannot parse input (at row ${at})`, 27, undefined, at);

/**
 * A sink over `w` whose n-th schema read takes `snapshot(n)` when it starts and answers when
 * `answer(n)` resolves (at once unless told), and whose n-th insert of rows is performed by
 * `insert(n, batch, store)`; `store(valid)` hands the batch to the warehouse, which refuses it
 * naming u4's body row unless `valid`.
 */
export function heldReadSink(
  w: TokenWarehouse,
  snapshot: (n: number) => TableSchema,
  answer: (n: number) => Promise<void> | undefined,
  insert: (n: number, batch: InsertBatch, store: (valid: boolean) => Promise<InsertResult>) => Promise<InsertResult>,
): { factory: (d: DestinationConfig) => Sink; reads: () => number } {
  let reads = 0;
  let inserts = 0;
  const factory = (d: DestinationConfig): Sink => {
    const inner = w.sink(d);
    return {
      ...inner,
      describe: async () => {
        const n = ++reads;
        const schema = snapshot(n); // what the server says when the read runs
        await answer(n); // when its answer reaches the inserter
        return schema;
      },
      insert: async (batch: InsertBatch, signal?: AbortSignal) => {
        if (batch.rows === 0) return inner.insert(batch, signal);
        const store = (valid: boolean): Promise<InsertResult> => {
          w.fail = (_t, _r, ids) => {
            const at = ids.indexOf('u4');
            return valid || at < 0 ? undefined : refusedU4(at + 1);
          };
          return inner.insert(batch, signal);
        };
        return insert(++inserts, batch, store);
      },
    };
  };
  return { factory, reads: () => reads };
}

/** Rows of partition 0 (u0..u{n-1}) in the table, twice or more. */
export function twiceOf(w: TokenWarehouse): string[] {
  const rows = w.uuids().filter((u) => /^u\d+$/.test(u));
  return rows.filter((u, i) => rows.indexOf(u) !== i);
}

/** A replica's state: metadata_version `v`, u4 valid or not. */
export const at = (v: number, u4Valid: boolean, more: Partial<TableState> = {}): TableState => ({ columns: base, metadataVersion: v, mtime: '2026-12-06 10:00:00', u4Valid, ...more });

/** The first attempt lands on the replica where u4 is valid, its reply lost; every retry is refused for u4. */
export const landsThenRefused =
  (before?: () => void) =>
  async (n: number, _batch: InsertBatch, store: (valid: boolean) => Promise<InsertResult>): Promise<InsertResult> => {
    if (n === 1) {
      before?.();
      await store(true);
      throw lost();
    }
    return store(false);
  };

/** JSON with bigints as numbers, for messages. */
export const show = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x));
