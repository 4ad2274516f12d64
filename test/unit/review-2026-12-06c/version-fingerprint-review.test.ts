// Review 2026-12-06c of "a change and its revert" (e453b16, cc33461; docs/design/delivery.md §11):
// the fingerprint of the live schema an insert is sent under now includes the table's definition
// version (TableSchema.version; ClickHouse `metadata_version` when > 0, else the metadata file's
// modification time: src/sink/clickhouse/dedup.ts definitionVersion). These tests drive the real
// Pipeline with fakes (a token-deduplicating warehouse whose schema reads the test scripts through
// the real `definitionVersion`, scripted insert outcomes, a shared MemoryLedgerStore for crashes).
// Invariant checked everywhere: every row is in its table once or dead-lettered; in both only when
// its dead letter is marked; never twice, never lost. Passing tests are controls (the fix holds);
// `todo` tests reproduce defects found by this review (each fails today). Findings A (a replicated
// table never altered: per-replica mtimes) and D (a re-created table) were fixed in the same session
// (the version is the uuid + metadata_version, 0 included, for replicated engines), C (a materialized
// view created in between) in session 9 (the version names the views reading from the table); B
// (replica lag) stays open, and the same-second limit was fixed in session 9 too (delivery.md §11).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { MemoryLedgerStore, type LedgerJson } from '../../../src/ack/ledger.ts';
import type { Config, DestinationConfig } from '../../../src/config/load.ts';
import { rowEncoderFor } from '../../../src/encode/types.ts';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { definitionVersion, type EngineQueryRow } from '../../../src/sink/clickhouse/dedup.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import type { ColumnInfo, InsertBatch, InsertResult, Sink, TableSchema } from '../../../src/sink/types.ts';
import type { SourceRecord } from '../../../src/source/types.ts';
import { expectExactlyOnce, marks, type Letter } from '../../helpers/exactly-once.ts';
import { event, HeldDeadLetters, TokenWarehouse, TOPIC, until, worldConfig } from '../../helpers/pipeline-world.ts';
import { startProcess as startInDoubtProcess, type Process } from '../../helpers/in-doubt-world.ts';

const fastRetries = { baseMs: 5, capMs: 20, pauseMs: 20 };
function overrides(): Parameters<typeof worldConfig>[0] {
  return {
    teams: { map: { 8: 'd1' } },
    schemaRefreshMs: 1,
    batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 },
    errorPolicy: { defaults: { transient_network: fastRetries, unknown_server_error: fastRetries, row_data: { baseMs: 5, capMs: 20 } } },
  };
}
const config = worldConfig(overrides());
const records = (n: number): SourceRecord[] => Array.from({ length: n }, (_, i) => event(i, 8));

const base: ColumnInfo[] = [
  { name: 'team_id', type: 'Int64', defaultKind: '' },
  { name: 'uuid', type: 'String', defaultKind: '' },
];
const extra: ColumnInfo = { name: 'altered', type: 'UInt8', defaultKind: 'DEFAULT' };

/** What one server (replica) says about the table: its columns and the row system.tables gives. */
interface TableState {
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
function engineRow(s: TableState): EngineQueryRow {
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

/** The schema a read of this replica gives, its version through the real definitionVersion. */
function schemaOf(s: TableState): TableSchema {
  return { columns: [...s.columns], version: definitionVersion(engineRow(s)) };
}

/** Counts saves (each a write to the ledger topic in production). */
class CountingLedgerStore extends MemoryLedgerStore {
  saves = 0;
  override async save(topic: string, partition: number, ledger: LedgerJson): Promise<void> {
    this.saves++;
    await super.save(topic, partition, ledger);
  }
}

/** A process of this file's world (its own config unless told). */
const startProcess = (parts: Parameters<typeof startInDoubtProcess>[0]): Process => startInDoubtProcess({ config, ...parts });

/** Runs 10 records through a process until it commits past them; returns its dead letters. */
async function runToEnd(sink: (d: DestinationConfig) => Sink, ledgers: MemoryLedgerStore = new MemoryLedgerStore(), cfg: Config = config): Promise<Letter[]> {
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
function scriptedSink(
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

const lost = (): WarehouseError => new WarehouseError(ErrorClasses.transientNetwork, 'socket hang up', undefined, undefined);
const hang = (signal?: AbortSignal): Promise<never> => new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(new Error('killed')), { once: true }));

// ---------------------------------------------------------------------------------------------
// A version that differs between reads with no change (replicas behind a load balancer)
// ---------------------------------------------------------------------------------------------

/** Two replicas of a never-altered Replicated table (metadata_version 0): their metadata files were written a second apart. */
const replicaA: TableState = { columns: base, metadataVersion: 0, mtime: '2026-12-06 10:00:00', u4Valid: false };
const replicaB: TableState = { columns: base, metadataVersion: 0, mtime: '2026-12-06 10:00:01', u4Valid: false };
const alternating = (n: number): TableSchema => schemaOf(n % 2 === 0 ? replicaA : replicaB);

test('control (flapping version, row named): a never-altered replicated table behind a load balancer (metadata_version 0, mtimes a second apart): an in-limbo range refused for u4 is still exactly once (u4 left out, marked), live', async () => {
  const w = new TokenWarehouse();
  const ledgers = new CountingLedgerStore();
  const s = scriptedSink(w, alternating, async (n, _batch, store) => {
    if (n === 1) throw lost(); // not stored, reply-less: the range is in limbo
    return store(false);
  });
  const letters = await runToEnd(s.factory, ledgers);
  expectExactlyOnce(w, letters, 10);
  // Since finding A's fix a replicated table's version is its metadata_version, 0 included: the mtimes
  // no longer count, so no false doubt: u4 is dead-lettered unmarked (was marked: the doubt's cost).
  assert.deepEqual(marks(letters), [[4n, undefined]]);
  assert.ok(ledgers.saves < 20, `ledger saves bounded (${ledgers.saves})`);
});

test('control (same table, a stable version): the same range refused for u4 is split and u4 dead-lettered unmarked', async () => {
  const w = new TokenWarehouse();
  const ledgers = new CountingLedgerStore();
  const s = scriptedSink(
    w,
    () => schemaOf(replicaA),
    async (n, _batch, store) => {
      if (n === 1) throw lost();
      return store(false);
    },
  );
  const letters = await runToEnd(s.factory, ledgers);
  expectExactlyOnce(w, letters, 10);
  assert.deepEqual(marks(letters), [[4n, undefined]]);
  assert.ok(ledgers.saves < 20, `ledger saves bounded (${ledgers.saves})`); // 5 here, 5 with a flapping version
});

// Finding A (liveness/data quality, not duplication). definitionVersion falls back to the metadata
// file's mtime when metadata_version is 0 — which is also what a *replicated* table reports until its
// first ALTER (and Cloud's shared tables before their first). Replicas write their metadata files at
// different times, so behind a load balancer consecutive reads differ with no change at all. Every
// in-limbo range refused (a reply lost once) is then "in doubt": a refusal naming no row (a view's
// error, a parse error without "at row") cannot be narrowed, so after row_data's one attempt the
// whole range is dead-lettered (marked) instead of being isolated — 9 good rows in the DLQ here.
// Fix: for replicated/shared engines use `v${metadata_version}` even when it is 0 (0 = never altered,
// the same on every replica); fall back to the mtime only for engines that keep no metadata version.
test(
  'finding A: flapping mtime of a never-altered replicated table (metadata_version 0): an in-limbo range refused naming no row is dead-lettered whole instead of isolated',
  {/* fixed: a replicated table's version is its metadata_version, 0 included (was todo: false doubt dead-lettered 9 good rows with u4) */},
  async () => {
    const w = new TokenWarehouse();
    const s = scriptedSink(
      w,
      alternating,
      async (n, _batch, store) => {
        if (n === 1) throw lost();
        return store(false);
      },
      true,
    );
    const letters = await runToEnd(s.factory);
    expectExactlyOnce(w, letters, 10);
    assert.equal(w.uuids().length, 9, `9 good rows in the table (dead letters: ${letters.map((l) => l.offset).join(',')})`);
  },
);

test('control: the same refusal naming no row under a stable version is isolated: 9 rows in the table, u4 dead-lettered', async () => {
  const w = new TokenWarehouse();
  const s = scriptedSink(
    w,
    () => schemaOf(replicaA),
    async (n, _batch, store) => {
      if (n === 1) throw lost();
      return store(false);
    },
    true,
  );
  const letters = await runToEnd(s.factory);
  expectExactlyOnce(w, letters, 10);
  assert.equal(w.uuids().length, 9);
});

// ---------------------------------------------------------------------------------------------
// Replica lag: the fresh read is not the schema the retry was refused under
// ---------------------------------------------------------------------------------------------

// Finding B (rows twice). The judgment assumes the fresh read shows the schema the retry was refused
// under, and the recorded read the schema the first attempt was parsed under. Behind a load balancer
// over replicas that apply an ALTER at different times neither holds: the read and the retry hit
// replica B (not yet applied: v1), the first attempt hit A (applied: v2, u4 valid there) and landed,
// its reply lost. Recorded F(v1) = fresh F(v1): "not in doubt", the range is split, every row but u4
// is inserted again under sub-tokens. No revert is needed; the version cannot help (it is the same
// on every replica only once applied). Not new in e453b16, but the docs now claim it is covered.
// Fix: read the version from every replica (clusterAllReplicas(system.tables): a range is judged
// "same schema" only when all replicas agreed on one version at both reads), or judge every
// in-limbo range of a replicated table in doubt.
test(
  'finding B: replica lag behind a load balancer: the first attempt lands on the replica that applied the ALTER, the retry and the fresh read hit one that has not: no row twice',
  { todo: 'rows twice: the lagging replica reads the recorded version, so the landed range is split' },
  async () => {
    const w = new TokenWarehouse();
    const lagging: TableState = { columns: base, metadataVersion: 1, mtime: '2026-12-06 10:00:00', u4Valid: false };
    const s = scriptedSink(
      w,
      () => schemaOf(lagging), // every read hits replica B
      async (n, _batch, store) => {
        if (n === 1) {
          await store(true); // replica A (ALTER applied: v2, u4 valid) stores it
          throw lost();
        }
        return store(false); // replica B (v1) refuses u4
      },
    );
    const letters = await runToEnd(s.factory);
    expectExactlyOnce(w, letters, 10);
  },
);

// ---------------------------------------------------------------------------------------------
// What decides a verdict but is not in the table's definition
// ---------------------------------------------------------------------------------------------

// Finding C (rows twice). A row's verdict depends on more than the table's definition: a
// materialized view reading the table (its SELECT or its target table can refuse rows: "while
// pushing to view"), the user's settings profile (input_format_*), a CHECK constraint of a view's
// target. None moves the table's metadata_version or mtime. A view created after the first attempt
// landed (reply lost, or the process killed: the window is the whole replay delay) refuses the
// retry for u4; the fingerprints match, the range is isolated under new tokens: rows twice. Fix:
// include the table's dependents in the version (system.tables `dependencies_database/_table` and
// their uuid + version, recursively for the views' targets), and document that a settings-profile
// change is not seen; or treat a refusal "while pushing to view" of an in-limbo range as in doubt.
test(
  'finding C: a materialized view created after the first attempt landed refuses the retry for u4 (no table change): no row twice',
  {/* fixed: the version names the views reading from the table (was todo: rows twice, a view is not part of the definition version, so the landed range is split) */},
  async () => {
    const w = new TokenWarehouse();
    const table: TableState = { columns: base, metadataVersion: 3, mtime: '2026-12-06 10:00:00', u4Valid: true };
    const s = scriptedSink(
      w,
      () => schemaOf(table),
      async (n, _batch, store) => {
        if (n === 1) {
          await store(true); // landed before the view existed
          table.dependents = ['default.events_mv@00000000-0000-0000-0000-0000000000aa']; // CREATE MATERIALIZED VIEW … FROM events
          throw lost();
        }
        return store(false); // the view refuses u4, naming no body row
      },
      true,
    );
    const letters = await runToEnd(s.factory);
    expectExactlyOnce(w, letters, 10);
  },
);

// ---------------------------------------------------------------------------------------------
// Versions that repeat: a table re-created, a change and its revert inside one second
// ---------------------------------------------------------------------------------------------

// Finding D (rows twice, exotic). metadata_version counts ALTERs of one table *generation*: DROP +
// CREATE starts again at 0 (then the mtime decides), and the first ALTER of the new table is v1
// again. Read (C, v1); the table is dropped and re-created as C' (u4 valid), the first attempt lands
// in it, an ALTER restores C (v1 again); the retry is refused for u4 and F(C, v1) matches: split,
// rows twice in the new table. Fix: put system.tables `uuid` in the version (`${uuid}/v${n}`), which
// also tells an EXCHANGE TABLES / RENAME swap apart (a rename keeps the metadata_version and the
// metadata file's mtime; no duplicate there, though: the first attempt's rows went to the other table).
test(
  'finding D: a replicated table dropped and re-created during an attempt, then altered once (metadata_version repeats as v1): no row twice',
  {/* fixed: the version carries the table's uuid (was todo: rows twice, the version of a new table generation repeated the recorded one) */},
  async () => {
    const w = new TokenWarehouse();
    let now: TableState = { columns: [...base, extra], metadataVersion: 1, mtime: '2026-12-06 10:00:00', u4Valid: false };
    const s = scriptedSink(
      w,
      () => schemaOf(now),
      async (n, _batch, store) => {
        if (n === 1) {
          now = { columns: base, metadataVersion: 0, mtime: '2026-12-06 17:00:00', u4Valid: true, uuid: 'generation-2' }; // DROP + CREATE
          await store(true);
          now = { columns: [...base, extra], metadataVersion: 1, mtime: '2026-12-06 17:00:01', u4Valid: false, uuid: 'generation-2' }; // ALTER ADD back
          throw lost();
        }
        return store(now.u4Valid);
      },
    );
    const letters = await runToEnd(s.factory);
    expectExactlyOnce(w, letters, 10);
  },
);

// Was a known limit (§11 "Left"), fixed in session 9: a plain MergeTree's version is its metadata
// file's mtime in seconds; the previous change, the read, an ALTER, the landed insert and the revert
// in one second repeat it. The schema read now also gets `now() - metadata_modification_time`, and a
// file younger than 2 s gives a version that equals no other read, so such a range is judged in
// doubt (was todo: rows twice, the mtime in seconds repeats).
test('plain MergeTree, a change and its revert in the same second as the previous change and the read: no row twice', async () => {
  const w = new TokenWarehouse();
  const plain = (columns: ColumnInfo[], u4Valid: boolean): TableState => ({ columns, metadataVersion: 0, mtime: '2026-12-06 17:00:05', u4Valid, plain: true, ageSeconds: 0 });
  let now = plain(base, false);
  const s = scriptedSink(
    w,
    () => schemaOf(now),
    async (n, _batch, store) => {
      if (n === 1) {
        now = plain([...base, extra], true);
        await store(true);
        now = plain(base, false);
        throw lost();
      }
      return store(now.u4Valid);
    },
  );
  const letters = await runToEnd(s.factory);
  expectExactlyOnce(w, letters, 10);
});

// ---------------------------------------------------------------------------------------------
// Ledgers written before the change; crashes around a change and its revert (controls)
// ---------------------------------------------------------------------------------------------

/** The fingerprint as the previous version computed it (no version field). */
function legacyFingerprint(columns: readonly ColumnInfo[], encoding: string, format: string): string {
  const hash = createHash('sha256');
  hash.update(`${encoding}\u0000${format}\u0000`);
  for (const c of columns) hash.update(`\u0001${c.name}\u0000${c.type}\u0000${c.defaultKind}`);
  return hash.digest('base64url').slice(0, 16);
}

/** The fingerprint as e453b16 computes it (checked against the recorded one). */
function currentFingerprint(columns: readonly ColumnInfo[], version: string | undefined, encoding: string, format: string): string {
  const hash = createHash('sha256');
  hash.update(`${encoding}\u0000${format}\u0000\u0000${version ?? ''}`);
  for (const c of columns) hash.update(`\u0001${c.name}\u0000${c.type}\u0000${c.defaultKind}`);
  return hash.digest('base64url').slice(0, 16);
}

async function storedLedger(ledgers: MemoryLedgerStore): Promise<LedgerJson> {
  const json = await ledgers.load(TOPIC, 0);
  assert.ok(json !== undefined, 'a ledger was saved');
  return json;
}

test('control (upgrade): an intent whose fingerprint was recorded without the version (previous release), replayed after an ALTER that makes u4 invalid: in doubt, u4 left out marked, the rest deduplicated', async () => {
  const w = new TokenWarehouse();
  const ledgers = new MemoryLedgerStore();
  let now: TableState = { columns: base, metadataVersion: 0, mtime: '2026-12-06 10:00:00', u4Valid: true };
  // Process A stores the insert and is killed before its answer.
  const a = scriptedSink(
    w,
    () => schemaOf(now),
    async (_n, _batch, store, signal) => {
      await store(true);
      return hang(signal);
    },
  );
  const pa = startProcess({ sink: a.factory, deadLetters: new HeldDeadLetters(), ledgers });
  void pa.source.append(records(10));
  await until(() => w.rows.length === 10, 'A stored its insert');
  await pa.pipeline.destroy();
  // The ledger as the previous release wrote it: the column-only fingerprint.
  const json = await storedLedger(ledgers);
  const encoding = config.routes[0]?.encoding ?? 'passthrough';
  const format = rowEncoderFor(base, encoding, {}).encoder.format;
  const intent = json.intents[0];
  assert.ok(intent !== undefined);
  assert.deepEqual(intent.schemas, [currentFingerprint(base, definitionVersion(engineRow(now)), encoding, format)], 'the recorded fingerprint is reproduced');
  intent.schemas = [legacyFingerprint(base, encoding, format)];
  await ledgers.save(TOPIC, 0, json);
  now = { columns: [...base, extra], metadataVersion: 0, mtime: '2026-12-06 11:00:00', u4Valid: false };
  const b = scriptedSink(
    w,
    () => schemaOf(now),
    async (_n, _batch, store) => store(now.u4Valid),
  );
  const letters = await runToEnd(b.factory, ledgers);
  expectExactlyOnce(w, letters, 10);
  assert.deepEqual(marks(letters), [[4n, true]]);
  assert.equal(w.uuids().length, 10, 'only the first attempt stored rows');
});

test('control (upgrade, no change at all): a legacy fingerprint makes a replayed range refused for u4 in doubt (u4 marked although it never landed): safe and live', async () => {
  const w = new TokenWarehouse();
  const ledgers = new MemoryLedgerStore();
  const table: TableState = { columns: base, metadataVersion: 0, mtime: '2026-12-06 10:00:00', u4Valid: false };
  let sent = false;
  const a = scriptedSink(
    w,
    () => schemaOf(table),
    async (_n, _batch, _store, signal) => {
      sent = true;
      return hang(signal); // killed during its first insert (not stored)
    },
  );
  const pa = startProcess({ sink: a.factory, deadLetters: new HeldDeadLetters(), ledgers });
  void pa.source.append(records(10));
  await until(() => sent, 'A sent its insert');
  await pa.pipeline.destroy();
  const json = await storedLedger(ledgers);
  const encoding = config.routes[0]?.encoding ?? 'passthrough';
  const format = rowEncoderFor(base, encoding, {}).encoder.format;
  for (const i of json.intents) i.schemas = [legacyFingerprint(base, encoding, format)];
  await ledgers.save(TOPIC, 0, json);
  const b = scriptedSink(
    w,
    () => schemaOf(table),
    async (_n, _batch, store) => store(false),
  );
  const letters = await runToEnd(b.factory, ledgers);
  expectExactlyOnce(w, letters, 10);
  assert.deepEqual(marks(letters), [[4n, true]]);
});

/**
 * Process A reads (C, v5); its insert meets an ALTER (v6, u4 valid), is stored, the ALTER is
 * reverted (v7) and A is killed before the answer. Process B replays; when `killB`, B is killed once
 * it has left u4 out and sends the rest (held), and process C finishes.
 */
async function crashAroundRevert(killB: boolean): Promise<{ w: TokenWarehouse; letters: Letter[] }> {
  const w = new TokenWarehouse();
  const ledgers = new MemoryLedgerStore();
  let now: TableState = { columns: base, metadataVersion: 5, mtime: '2026-12-06 10:00:00', u4Valid: false };
  const a = scriptedSink(
    w,
    () => schemaOf(now),
    async (_n, _batch, store, signal) => {
      now = { columns: [...base, extra], metadataVersion: 6, mtime: '2026-12-06 10:00:01', u4Valid: true };
      await store(true);
      now = { columns: base, metadataVersion: 7, mtime: '2026-12-06 10:00:02', u4Valid: false };
      return hang(signal);
    },
  );
  const pa = startProcess({ sink: a.factory, deadLetters: new HeldDeadLetters(), ledgers });
  void pa.source.append(records(10));
  await until(() => w.rows.length === 10 && now.metadataVersion === 7, 'A stored its insert');
  await pa.pipeline.destroy();
  const letters: Letter[] = [];
  if (killB) {
    const lettersB = new HeldDeadLetters();
    let restSent = false;
    const b = scriptedSink(
      w,
      () => schemaOf(now),
      async (_n, batch, store, signal) => {
        if (batch.rows === 10) return store(false);
        restSent = true;
        return hang(signal); // the rest (u4 left out) never answered: B is killed
      },
    );
    const pb = startProcess({ sink: b.factory, deadLetters: lettersB, ledgers });
    void pb.source.append(records(10));
    await until(() => restSent, 'B sent the rest');
    await pb.pipeline.destroy();
    letters.push(...lettersB.written);
  }
  const c = scriptedSink(
    w,
    () => schemaOf(now),
    async (_n, _batch, store) => store(now.u4Valid),
  );
  letters.push(...(await runToEnd(c.factory, ledgers)));
  return { w, letters };
}

test('control (crash): killed while an insert stored under a change that is then reverted: the replay is in doubt (v5 recorded, v7 read), u4 left out marked, the rest deduplicated', async () => {
  const { w, letters } = await crashAroundRevert(false);
  expectExactlyOnce(w, letters, 10);
  assert.deepEqual(marks(letters), [[4n, true]]);
});

test('control (crash twice): the replaying process is killed after leaving u4 out, while the rest is in flight: the third owner re-sends the rest under the same token, u4 marked once', async () => {
  const { w, letters } = await crashAroundRevert(true);
  expectExactlyOnce(w, letters, 10);
  assert.deepEqual(marks(letters), [[4n, true]]);
});

// ---------------------------------------------------------------------------------------------
// definitionVersion over the shapes a server may answer
// ---------------------------------------------------------------------------------------------

test('control: definitionVersion reads metadata_version as a number or a string, falls back to the mtime at 0 or when missing (servers before 24.2), and knows nothing at the epoch', () => {
  const row = { engine: 'MergeTree', engine_full: 'MergeTree ORDER BY x', defaults: [] as string[] };
  assert.equal(definitionVersion({ ...row, metadata_version: 3, metadata_modification_time: '2026-12-06 10:00:00' }), 'v3');
  assert.equal(definitionVersion({ ...row, metadata_version: '3', metadata_modification_time: '2026-12-06 10:00:00' }), 'v3');
  assert.equal(definitionVersion({ ...row, metadata_version: 0, metadata_modification_time: '2026-12-06 10:00:00' }), 't2026-12-06 10:00:00');
  assert.equal(definitionVersion({ ...row, metadata_modification_time: '2026-12-06 10:00:00' }), 't2026-12-06 10:00:00');
  assert.equal(definitionVersion({ ...row, metadata_version: 0, metadata_modification_time: '1970-01-01 00:00:00' }), undefined);
  assert.equal(definitionVersion(row), undefined);
});
