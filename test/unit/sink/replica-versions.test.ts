// The definition version read from every replica (src/sink/clickhouse/replica-versions.ts): which
// cluster is read, and when the replicas' rows give a version and when one that equals no other read.
// The real server's side (clusterAllReplicas over two servers) is test/e2e/replica-versions.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { agreedVersion, clusterFor, type ReplicaVersionRow } from '../../../src/sink/clickhouse/replica-versions.ts';

const row = (metadataVersion: number, extra: Partial<ReplicaVersionRow> = {}): ReplicaVersionRow => ({
  engine: 'ReplicatedMergeTree',
  uuid: '7e1a0b36-5a59-4c6b-9d3c-2f1e0d9c8b7a',
  metadata_version: metadataVersion,
  metadata_modification_time: '2026-12-06 10:00:00',
  metadata_age_seconds: 3_600,
  dependents: [],
  replicas: 2,
  ...extra,
});

test('the configured cluster is read; unset, ClickHouse Cloud Shared engines read its default cluster, others one server', () => {
  assert.equal(clusterFor('lb', 'ReplicatedMergeTree'), 'lb');
  assert.equal(clusterFor('lb', 'MergeTree'), 'lb');
  assert.equal(clusterFor(undefined, 'SharedMergeTree'), 'default');
  assert.equal(clusterFor(undefined, 'SharedReplacingMergeTree'), 'default');
  assert.equal(clusterFor(undefined, 'ReplicatedMergeTree'), undefined);
  assert.equal(clusterFor(undefined, 'MergeTree'), undefined);
});

test('every replica agreeing: the local version joined with the agreed one, the same at every read', () => {
  const v = agreedVersion('local-v3', [row(3), row(3)]);
  assert.equal(v, agreedVersion('local-v3', [row(3), row(3)]));
  assert.ok(v?.startsWith('local-v3|all:') === true, String(v));
  assert.notEqual(agreedVersion('local-v3', [row(4), row(4)]), v, 'the replicas moved on together: another version');
});

test('replicas that disagree, or fewer rows than the cluster names, give a version that equals no other read', () => {
  const cases: Array<[string, ReplicaVersionRow[]]> = [
    ['an ALTER applied on one replica only', [row(3), row(4)]],
    ['a view on one replica only', [row(3), row(3, { dependents: ['app.mv'] })]],
    ['another table generation on one replica', [row(3), row(3, { uuid: '00000000-0000-0000-0000-0000000000ff' })]],
    ['a replica unreachable (skipped by the read)', [row(3)]],
    ['the table on no replica', []],
    ['a metadata file changed within the last seconds', [row(0, { engine: 'MergeTree', metadata_age_seconds: 0 }), row(0, { engine: 'MergeTree', metadata_age_seconds: 0 })]],
  ];
  for (const [what, rows] of cases) {
    const [a, b] = [agreedVersion('local', rows), agreedVersion('local', rows)];
    assert.ok(a?.startsWith('~replicas-differ~') === true, `${what}: ${a}`);
    assert.notEqual(a, b, `${what}: two reads differ`);
  }
});

test('nothing tells a version anywhere (servers before 24.2): undefined, as for one server', () => {
  const old = (): ReplicaVersionRow => ({ engine: 'ReplicatedMergeTree', replicas: 2 });
  assert.equal(agreedVersion(undefined, [old(), old()]), undefined);
});
