// Review 2026-12-07b of bbabe13: the pure functions of src/sink/clickhouse/replica-versions.ts over
// the shapes the real replicaVersionsQuery can answer with (JSONEachRow quotes UInt64, so `replicas`
// — count() of system.clusters — is a string; a replica skipped by skip_unavailable_shards is a
// missing row; servers before 24.2 have no metadata_version). Findings 1 and 4 and the hardening
// were fixed in the same session: each replica's row names it (`host:port`) and its own table and
// view generations (uuids) count by replica; what is replicated must agree.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { agreedVersion as agreedWithViews, clusterFor, type ReplicaVersionRow, type ReplicaViewRow } from '../../../src/sink/clickhouse/replica-versions.ts';

let next = 0;
/** A replica's row; `replica` defaults to a new name per row, the initiator to the first replica 'r0:9000'. */
const row = (metadataVersion: number, extra: Partial<ReplicaVersionRow> = {}): ReplicaVersionRow => ({
  replica: `r${next++}:9000`,
  initiator: 'r0:9000',
  engine: 'ReplicatedMergeTree',
  uuid: '7e1a0b36-5a59-4c6b-9d3c-2f1e0d9c8b7a',
  metadata_version: metadataVersion,
  metadata_modification_time: '2026-12-06 10:00:00',
  metadata_age_seconds: '3600',
  dependents: [],
  replicas: '2',
  ...extra,
});
/** Rows renamed r0, r1, … (the initiator r0 among them), as one read of the cluster gives them. */
const named = (rows: readonly ReplicaVersionRow[]): ReplicaVersionRow[] => rows.map((r, i) => ({ ...r, replica: `r${i}:9000` }));
const agreedVersion = (local: string | undefined, rows: readonly ReplicaVersionRow[], views: readonly ReplicaViewRow[] = []): string | undefined => agreedWithViews(local, named(rows), views);
const differs = (v: string | undefined): boolean => v?.startsWith('~replicas-differ~') === true;

test('control: `replicas` as JSONEachRow gives it (a quoted UInt64) counts like a number', () => {
  const quoted = agreedVersion('l', [row(3), row(3)]);
  assert.ok(quoted?.startsWith('l|all:') === true, String(quoted));
  assert.equal(agreedVersion('l', [row(3, { replicas: 2 }), row(3, { replicas: 2 })]), quoted);
  assert.ok(differs(agreedVersion('l', [row(3)])), 'one row of two named: differs');
  assert.ok(differs(agreedVersion('l', [row(3, { replicas: '10' }), row(3, { replicas: '10' })])), "'10' is ten, not compared as a string");
});

test('control: no row at all (the table on no replica, or every replica skipped): a version that equals no other read', () => {
  const [a, b] = [agreedVersion('l', []), agreedVersion('l', [])];
  assert.ok(differs(a) && differs(b) && a !== b);
  assert.ok(differs(agreedVersion(undefined, [])), 'no local version either');
});

test('control: several shards — count() of system.clusters is one row per replica of every shard, as clusterAllReplicas reads them', () => {
  const four = (v: number[]): ReplicaVersionRow[] => v.map((n) => row(n, { replicas: '4' }));
  assert.ok(!differs(agreedVersion('l', four([3, 3, 3, 3]))));
  assert.ok(differs(agreedVersion('l', four([3, 3, 3]))), 'a replica of the second shard skipped');
  assert.ok(differs(agreedVersion('l', four([3, 3, 3, 2]))), 'the second shard lagging');
});

test('control: the version is undefined on some replicas and not others (a rolling upgrade across 24.2): never agreed', () => {
  const { metadata_version: _v, ...old } = row(3);
  assert.ok(differs(agreedVersion('l', [row(3), old])));
  assert.ok(differs(agreedVersion('l', [old, row(3)])), 'whichever comes first');
  // Everywhere undefined (every server before 24.2): only the columns compare — the documented limit.
  assert.equal(agreedVersion(undefined, [old, old]), undefined);
});

test('control: a plain MergeTree whose metadata file is younger than 2 s on one replica, or on the only one: a version that equals no other read', () => {
  const young = row(0, { engine: 'MergeTree', metadata_age_seconds: '1' });
  const settled = row(0, { engine: 'MergeTree' });
  assert.ok(differs(agreedVersion('l', [settled, young])));
  const one = [young].map((r) => ({ ...r, replicas: '1' }));
  const [a, b] = [agreedVersion('l', one), agreedVersion('l', one)];
  assert.notEqual(a, b, 'one replica, settling: two reads still differ (the random suffix of definitionVersion)');
});

test('finding 1 (fixed): views compare by name across replicas, and by uuid per replica: a view re-created on one replica moves the version', () => {
  const mv = (uuid: string, replica: string): ReplicaViewRow => ({ replica, view: `app.mv@${uuid}` });
  assert.ok(differs(agreedVersion('l', [row(3, { dependents: ['app.mv'] }), row(3)], [mv('u1', 'r0:9000')])), 'a view only on one replica');
  const both = [row(3, { dependents: ['app.mv'] }), row(3, { dependents: ['app.mv'] })];
  const before = agreedVersion('l', both, [mv('u1', 'r0:9000'), mv('u2', 'r1:9000')]);
  assert.ok(!differs(before));
  assert.equal(agreedVersion('l', both, [mv('u1', 'r0:9000'), mv('u2', 'r1:9000')]), before, 'unchanged: the same version');
  assert.notEqual(agreedVersion('l', both, [mv('u3', 'r0:9000'), mv('u2', 'r1:9000')]), before, 're-created on r0: another version');
  assert.ok(differs(agreedVersion('l', both, [mv('u1', 'r0:9000')])), 'a named view not found on a replica (dropped in between)');
});

test('finding 4 (fixed): replicas whose own uuids differ (tables created per replica) agree, each uuid counted by replica', () => {
  const rows = [row(3), row(3, { uuid: '22222222-0000-0000-0000-00000000000b' })];
  const v = agreedVersion('l', rows);
  assert.ok(!differs(v), String(v));
  assert.equal(agreedVersion('l', rows), v, 'stable: no false doubt');
  assert.notEqual(agreedVersion('l', [row(3), row(3, { uuid: '33333333-0000-0000-0000-00000000000c' })]), v, 'a table re-created on one replica: another version');
});

test('finding 3 (fixed): fewer rows than the replication knows, a reached replica the cluster does not name: a version that equals no other read', () => {
  assert.ok(differs(agreedVersion('l', [row(3, { replicated_total: '3' }), row(3, { replicated_total: '3' })])), 'three replicas, the cluster names two');
  assert.ok(differs(agreedVersion('l', [row(3, { initiator: 'x:9000' }), row(3, { initiator: 'x:9000' })])), 'the initiator is not among the rows');
  const rows = named([row(3), row(3)]);
  assert.ok(differs(agreedWithViews('l', rows, [], 'c:9000')), 'the replica the local read reached is not among the rows');
  assert.ok(!differs(agreedWithViews('l', rows, [], 'r1:9000')));
  assert.ok(differs(agreedWithViews('l', [rows[0] as ReplicaVersionRow, rows[0] as ReplicaVersionRow], [])), 'one replica twice is not two');
});

test("control: clusterFor — configured wins for every engine; unset, only Shared* engines read Cloud's default", () => {
  assert.equal(clusterFor('lb', 'SharedMergeTree'), 'lb');
  assert.equal(clusterFor(undefined, 'SharedReplacingMergeTree'), 'default');
  assert.equal(clusterFor(undefined, 'ReplicatedReplacingMergeTree'), undefined, 'self-hosted replicas without a cluster: one server (documented)');
  assert.equal(clusterFor(undefined, 'Distributed'), undefined);
});

// Hardening (fixed in the same session; not reachable with the query, which always selects
// `replicas` as the initiator's count): the largest count over all rows is expected, and a value that
// is not a positive integer fails closed, so a future query change cannot fail open.
test('hardening: a `replicas` that is missing, 0, or differs between rows fails closed (a version that equals no other read)', () => {
  const { replicas: _r, ...noCount } = row(3);
  assert.ok(differs(agreedVersion('l', [noCount as ReplicaVersionRow])), 'replicas missing, one row');
  assert.ok(differs(agreedVersion('l', [row(3, { replicas: '0' })])), 'replicas 0, one row');
  assert.ok(differs(agreedVersion('l', [row(3, { replicas: '1' }), row(3, { replicas: '3' })])), 'rows[0] says 1, another 3: two of three');
});
