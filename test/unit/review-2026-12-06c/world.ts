// Test helper of review 2026-12-06c (the table's definition version in the schema fingerprint; see
// version-fingerprint-review.test.ts): the world its tests drive. Table states as one server
// (replica) describes them, read through the real `definitionVersion`; a sink over a
// token-deduplicating warehouse whose schema reads and inserts follow a script; a pipeline process
// run to the end of 10 records; the refusals and lost replies a script answers with; and the schema
// fingerprints as the previous release and as e453b16 compute them, for ledgers written before the change.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { MemoryLedgerStore, type LedgerJson } from '../../../src/ack/ledger.ts';
import type { Config, DestinationConfig } from '../../../src/config/load.ts';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { definitionVersion, type EngineQueryRow } from '../../../src/sink/clickhouse/dedup.ts';
import { agreedVersion } from '../../../src/sink/clickhouse/replica-versions.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import type { ColumnInfo, InsertBatch, InsertResult, Sink, TableSchema } from '../../../src/sink/types.ts';
import type { Letter } from '../../helpers/exactly-once.ts';
import { HeldDeadLetters, TOPIC, until, type TokenWarehouse } from '../../helpers/pipeline-world.ts';
import { alteredColumn, inDoubtConfig, startProcess as startInDoubtProcess, teamRecords, type Process } from '../../helpers/in-doubt-world.ts';

/** Team 8 → d1, batches of 10 rows, the schema read again at once, fast retries. */
export const config = inDoubtConfig;
/** Records 0..n-1 of team 8 (uuids u0..). */
export const records = teamRecords;

export const base: ColumnInfo[] = [
  { name: 'team_id', type: 'Int64', defaultKind: '' },
  { name: 'uuid', type: 'String', defaultKind: '' },
];
export const extra: ColumnInfo = alteredColumn;

/** What one server (replica) says about the table: its columns and the row system.tables gives. */
export interface TableState {
  columns: ColumnInfo[];
  metadataVersion: number;
  mtime: string;
  /** Whether u4 is valid under this definition (the server refuses it otherwise). */
  u4Valid: boolean;
  /** system.tables `uuid` (one per table generation). */
  uuid?: string;
  /** The materialized views reading from the table (the query's `dependents`). */
  dependents?: string[];
  /** Seconds since the metadata file was written, when the read happens (default: an hour). */
  ageSeconds?: number;
  /** A plain MergeTree (its version is the metadata file's time) instead of ReplicatedMergeTree. */
  plain?: boolean;
}

/** The system.tables row (with `uuid`, which the query does not select today: a fix that reads it sees it). */
export function engineRow(s: TableState): EngineQueryRow {
  const row = {
    uuid: s.uuid ?? '00000000-0000-0000-0000-000000000001',
    engine: s.plain === true ? 'MergeTree' : 'ReplicatedMergeTree',
    engine_full: s.plain === true ? 'MergeTree ORDER BY uuid' : "ReplicatedMergeTree('/t', '{replica}')",
    defaults: [],
    metadata_version: s.metadataVersion,
    metadata_modification_time: s.mtime,
    dependents: s.dependents ?? [],
    metadata_age_seconds: s.ageSeconds ?? 3_600,
  };
  return row;
}

/**
 * The schema a read gives when the destination names its cluster: the columns and local version of
 * the replica the URL reached, joined by the real agreedVersion with what every replica's row says.
 */
export function clusterSchemaOf(local: TableState, replicas: readonly TableState[]): TableSchema {
  const rows = replicas.map((r, i) => {
    const { engine_full: _full, defaults: _defaults, dependents, ...row } = engineRow(r);
    return { ...row, replica: `r${i}:9000`, initiator: 'r0:9000', dependents: (dependents ?? []).map((d) => d.split('@')[0] as string), replicas: replicas.length };
  });
  const views = replicas.flatMap((r, i) => (r.dependents ?? []).map((view) => ({ replica: `r${i}:9000`, view })));
  return { columns: [...local.columns], version: agreedVersion(definitionVersion(engineRow(local)), rows, views) };
}

/** The schema a read of this replica gives, its version through the real definitionVersion. */
export function schemaOf(s: TableState): TableSchema {
  return { columns: [...s.columns], version: definitionVersion(engineRow(s)) };
}

/** Counts saves (each a write to the ledger topic in production). */
export class CountingLedgerStore extends MemoryLedgerStore {
  saves = 0;
  override async save(topic: string, partition: number, ledger: LedgerJson): Promise<void> {
    this.saves++;
    await super.save(topic, partition, ledger);
  }
}

/** A process of this review's world (its own config unless told). */
export const startProcess = (parts: Parameters<typeof startInDoubtProcess>[0]): Process => startInDoubtProcess({ config, ...parts });

/** Runs 10 records through a process until it commits past them; returns its dead letters. */
export async function runToEnd(sink: (d: DestinationConfig) => Sink, ledgers: MemoryLedgerStore = new MemoryLedgerStore(), cfg: Config = config): Promise<Letter[]> {
  const letters = new HeldDeadLetters();
  const p = startProcess({ config: cfg, sink, deadLetters: letters, ledgers });
  try {
    await p.source.append(records(10));
    await until(() => p.source.committed === 10n, 'committed to 10', 5_000);
  } finally {
    await p.pipeline.destroy();
  }
  return letters.written;
}

const refusedNaming = (row: number): WarehouseError => new WarehouseError(ErrorClasses.rowData, `Cannot parse input (at row ${row})`, 27, undefined, row);
const refusedNamingNoRow = (): WarehouseError => new WarehouseError(ErrorClasses.rowData, 'Code: 6. CANNOT_PARSE_TEXT: while pushing to view default.mv', 6, undefined);

/**
 * A sink over `w` whose schema reads answer `read(n)` (the n-th read) and whose n-th insert of rows
 * is performed by `insert(n, batch, store)`: `store()` hands the batch to the warehouse, which
 * refuses it (naming u4's body row, or no row with `noRow`) when `u4Valid()` says so.
 */
export function scriptedSink(
  w: TokenWarehouse,
  read: (n: number) => TableSchema,
  insert: (n: number, batch: InsertBatch, store: (valid: boolean) => Promise<InsertResult>, signal?: AbortSignal) => Promise<InsertResult>,
  noRow = false,
): { factory: (d: DestinationConfig) => Sink; reads: () => number } {
  let reads = 0;
  let inserts = 0;
  const factory = (d: DestinationConfig): Sink => {
    const inner = w.sink(d);
    return {
      ...inner,
      describe: async () => read(++reads),
      insert: async (batch: InsertBatch, signal?: AbortSignal) => {
        if (batch.rows === 0) return inner.insert(batch, signal);
        const store = (valid: boolean): Promise<InsertResult> => {
          w.fail = (_t, _r, ids) => {
            const at = ids.indexOf('u4');
            if (valid || at < 0) return undefined;
            return noRow ? refusedNamingNoRow() : refusedNaming(at + 1);
          };
          return inner.insert(batch, signal);
        };
        return insert(++inserts, batch, store, signal);
      },
    };
  };
  return { factory, reads: () => reads };
}

export const lost = (): WarehouseError => new WarehouseError(ErrorClasses.transientNetwork, 'socket hang up', undefined, undefined);
export const hang = (signal?: AbortSignal): Promise<never> => new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(new Error('killed')), { once: true }));

/** The fingerprint as the previous version computed it (no version field). */
export function legacyFingerprint(columns: readonly ColumnInfo[], encoding: string, format: string): string {
  const hash = createHash('sha256');
  hash.update(`${encoding}\u0000${format}\u0000`);
  for (const c of columns) hash.update(`\u0001${c.name}\u0000${c.type}\u0000${c.defaultKind}`);
  return hash.digest('base64url').slice(0, 16);
}

/** The fingerprint as e453b16 computes it (checked against the recorded one). */
export function currentFingerprint(columns: readonly ColumnInfo[], version: string | undefined, encoding: string, format: string): string {
  const hash = createHash('sha256');
  hash.update(`${encoding}\u0000${format}\u0000\u0000${version ?? ''}`);
  for (const c of columns) hash.update(`\u0001${c.name}\u0000${c.type}\u0000${c.defaultKind}`);
  return hash.digest('base64url').slice(0, 16);
}

export async function storedLedger(ledgers: MemoryLedgerStore): Promise<LedgerJson> {
  const json = await ledgers.load(TOPIC, 0);
  assert.ok(json !== undefined, 'a ledger was saved');
  return json;
}
