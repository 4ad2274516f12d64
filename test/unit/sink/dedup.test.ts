// Whether a ClickHouse table deduplicates by token, from system.tables (engine, engine_full) and the
// server's merge_tree_settings: the table's own SETTINGS win over the server defaults; plain
// MergeTree uses non_replicated_deduplication_window, Replicated/Shared the replicated window and
// its seconds; engines that keep no tokens are never able to.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deduplicationOf, definitionVersion, type EngineRow } from '../../../src/sink/clickhouse/dedup.ts';

const table = { database: 'app', table: 'events' };
const serverDefaults = { non_replicated_deduplication_window: '0', replicated_deduplication_window: '10000', replicated_deduplication_window_seconds: '3600' };
const row = (engine: string, engineFull: string, defaults: Record<string, string> = serverDefaults): EngineRow => ({ engine, engine_full: engineFull, defaults });

test('plain MergeTree with the self-hosted default window 0 cannot, and the reason names the fix', () => {
  const d = deduplicationOf(table, row('MergeTree', 'MergeTree ORDER BY x SETTINGS index_granularity = 8192'));
  assert.equal(d.byToken, false);
  assert.equal(d.setting, 'non_replicated_deduplication_window');
  assert.equal(d.windowBlocks, 0);
  assert.equal(d.windowSeconds, undefined);
  assert.match(d.reason ?? '', /ALTER TABLE app\.events MODIFY SETTING non_replicated_deduplication_window = \d+/);
});

test("the table's own setting wins over the server default, both ways", () => {
  const own = deduplicationOf(table, row('ReplacingMergeTree', 'ReplacingMergeTree(_timestamp) ORDER BY x SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 512'));
  assert.deepEqual([own.byToken, own.windowBlocks, own.reason], [true, 1000, undefined]);
  const serverOn = { ...serverDefaults, non_replicated_deduplication_window: '1000' };
  assert.equal(deduplicationOf(table, row('MergeTree', 'MergeTree ORDER BY x SETTINGS index_granularity = 8192', serverOn)).windowBlocks, 1000);
  const tableOff = deduplicationOf(table, row('MergeTree', 'MergeTree ORDER BY x SETTINGS non_replicated_deduplication_window = 0, index_granularity = 8192', serverOn));
  assert.deepEqual([tableOff.byToken, tableOff.windowBlocks], [false, 0]);
  // The replicated setting's name inside the non-replicated one is not mistaken for it.
  const replicated = deduplicationOf(table, row('ReplicatedMergeTree', "ReplicatedMergeTree('/t', 'r') ORDER BY x SETTINGS non_replicated_deduplication_window = 5"));
  assert.equal(replicated.windowBlocks, 10000);
});

test('Replicated and Shared (Cloud) tables use the replicated window and its seconds', () => {
  const shared = deduplicationOf(table, row('SharedReplacingMergeTree', "SharedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY x SETTINGS index_granularity = 8192"));
  assert.deepEqual([shared.byToken, shared.setting, shared.windowBlocks, shared.windowSeconds], [true, 'replicated_deduplication_window', 10000, 3600]);
  const tuned = deduplicationOf(
    table,
    row('ReplicatedMergeTree', "ReplicatedMergeTree('/t', 'r') ORDER BY x SETTINGS replicated_deduplication_window = 500, replicated_deduplication_window_seconds = 86400"),
  );
  assert.deepEqual([tuned.windowBlocks, tuned.windowSeconds], [500, 86400]);
  const off = deduplicationOf(table, row('ReplicatedMergeTree', "ReplicatedMergeTree('/t', 'r') ORDER BY x SETTINGS replicated_deduplication_window = 0"));
  assert.equal(off.byToken, false);
  assert.match(off.reason ?? '', /replicated_deduplication_window = 1000/);
});

test('engines that keep no tokens cannot, whatever the settings', () => {
  for (const [engine, full] of [
    ['Buffer', "Buffer('app', 'events_local', 1, 10, 100, 10000, 1000000, 10000000, 100000000)"],
    ['Distributed', "Distributed('c', 'app', 'events_local', rand())"],
    ['Null', '`Null`'],
    ['Memory', 'Memory'],
    ['Log', 'Log'],
    ['View', ''],
    ['MaterializedView', ''],
  ] as const) {
    const d = deduplicationOf(table, row(engine, full, { ...serverDefaults, non_replicated_deduplication_window: '1000' }));
    assert.equal(d.byToken, false, engine);
    assert.equal(d.setting, undefined, engine);
    assert.match(d.reason ?? '', new RegExp(`engine ${engine} keeps no insert tokens`), engine);
  }
});

test('a server that does not list the setting falls back to ClickHouse defaults', () => {
  assert.equal(deduplicationOf(table, row('MergeTree', 'MergeTree ORDER BY x', {})).byToken, false);
  assert.equal(deduplicationOf(table, row('ReplicatedMergeTree', "ReplicatedMergeTree('/t', 'r') ORDER BY x", {})).windowBlocks, 100);
});

test("the definition's version: the table's generation (uuid) and metadata_version where replicated engines count ALTERs (0 too), else the metadata file's time, else unknown; then the materialized views reading from it", () => {
  const base = { engine: 'MergeTree', engine_full: 'MergeTree ORDER BY id', defaults: [], uuid: 'a1' };
  const replicated = { ...base, engine: 'ReplicatedMergeTree' };
  assert.equal(definitionVersion({ ...replicated, metadata_version: 7, metadata_modification_time: '2026-12-06 16:20:49' }), 'a1/v7', 'the same on every replica');
  assert.equal(definitionVersion({ ...replicated, metadata_version: 0, metadata_modification_time: '2026-12-06 16:20:49' }), 'a1/v0', 'never altered: not the file time, which differs per replica');
  assert.equal(definitionVersion({ ...base, engine: 'SharedMergeTree', metadata_version: '3' }), 'a1/v3');
  assert.equal(definitionVersion({ ...replicated, metadata_modification_time: '2026-12-06 16:20:49' }), undefined, 'a replicated table on a server before 24.2');
  assert.equal(definitionVersion({ ...base, metadata_version: 0, metadata_modification_time: '2026-12-06 16:20:49' }), 'a1/t2026-12-06 16:20:49');
  assert.equal(definitionVersion({ ...base, metadata_version: 2, metadata_modification_time: '2026-12-06 16:20:49' }), 'a1/v2');
  assert.equal(definitionVersion({ ...base, metadata_modification_time: '2026-12-06 16:20:49' }), 'a1/t2026-12-06 16:20:49', 'a server before 24.2');
  assert.equal(definitionVersion({ ...base, uuid: '00000000-0000-0000-0000-000000000000', metadata_modification_time: '2026-12-06 16:20:49' }), 't2026-12-06 16:20:49', 'a database without uuids');
  assert.equal(definitionVersion({ ...base, metadata_version: 0, metadata_modification_time: '1970-01-01 00:00:00' }), undefined, 'a database without metadata files');
  const fresh = { ...base, metadata_version: 0, metadata_modification_time: '2026-12-06 16:20:49', metadata_age_seconds: 1 };
  assert.notEqual(definitionVersion(fresh), definitionVersion(fresh), 'a file written within 2 s: a version equal to no other read');
  assert.match(definitionVersion(fresh) ?? '', /^a1\/t2026-12-06 16:20:49~/);
  assert.equal(definitionVersion({ ...fresh, metadata_age_seconds: '2' }), 'a1/t2026-12-06 16:20:49', 'settled');
  assert.equal(definitionVersion({ ...replicated, metadata_version: 3, metadata_age_seconds: 0 }), 'a1/v3', 'a counted version needs no settling');
  const views = ['db.mv1@u1', 'db.mv2@u2'];
  assert.equal(definitionVersion({ ...replicated, metadata_version: 7, dependents: views }), 'a1/v7+db.mv1@u1,db.mv2@u2', 'the views reading from the table are part of it');
  assert.equal(definitionVersion({ ...replicated, metadata_version: 7, dependents: [] }), 'a1/v7');
  assert.equal(definitionVersion({ ...replicated, dependents: views }), '+db.mv1@u1,db.mv2@u2', 'views alone where the table has no version');
});
