// The definition version read from every replica (src/sink/clickhouse/replica-versions.ts): which
// cluster is read, and when the replicas' rows give a version and when one that equals no other read.
// The real server's side (clusterAllReplicas over two servers) is test/e2e/replica-versions.test.ts;
// review 2026-12-07b (test/unit/review-2026-12-07b/) drives the pipeline through it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { agreedVersion, clusterFor, viewNames, type ReplicaVersionRow, type ReplicaViewRow } from '../../../src/sink/clickhouse/replica-versions.ts';

const row = (replica: string, metadataVersion: number, extra: Partial<ReplicaVersionRow> = {}): ReplicaVersionRow => ({
  replica,
  initiator: 'a:9000',
  engine: 'ReplicatedMergeTree',
  uuid: '7e1a0b36-5a59-4c6b-9d3c-2f1e0d9c8b7a',
  metadata_version: metadataVersion,
  metadata_modification_time: '2026-12-06 10:00:00',
  metadata_age_seconds: 3_600,
  dependents: [],
  replicas: 2,
  ...extra,
});
const pair = (a: number, b: number, extra: Partial<ReplicaVersionRow> = {}): ReplicaVersionRow[] => [row('a:9000', a, extra), row('b:9000', b, extra)];
const differs = (v: string | undefined): boolean => v?.startsWith('~replicas-differ~') === true;

test('the configured cluster is read; unset, ClickHouse Cloud Shared engines read its default cluster, others one server', () => {
  assert.equal(clusterFor('lb', 'ReplicatedMergeTree'), 'lb');
  assert.equal(clusterFor('lb', 'MergeTree'), 'lb');
  assert.equal(clusterFor(undefined, 'SharedMergeTree'), 'default');
  assert.equal(clusterFor(undefined, 'SharedReplacingMergeTree'), 'default');
  assert.equal(clusterFor(undefined, 'ReplicatedMergeTree'), undefined);
  assert.equal(clusterFor(undefined, 'MergeTree'), undefined);
});

test('every replica agreeing: the local version joined with the agreed one, the same at every read', () => {
  const v = agreedVersion('local-v3', pair(3, 3), [], 'b:9000');
  assert.equal(v, agreedVersion('local-v3', pair(3, 3), [], 'b:9000'));
  assert.ok(v?.startsWith('local-v3|all:') === true, String(v));
  assert.notEqual(agreedVersion('local-v3', pair(4, 4), []), v, 'the replicas moved on together: another version');
});

test('replicas that disagree, or fewer rows than the cluster or the replication names, or a reached replica not among them: a version that equals no other read', () => {
  const mv = (replica: string): ReplicaViewRow => ({ replica, view: `app.mv@${replica}` });
  const cases: Array<[string, ReplicaVersionRow[], ReplicaViewRow[], string | undefined]> = [
    ['an ALTER applied on one replica only', pair(3, 4), [], undefined],
    ['a view on one replica only', [row('a:9000', 3), row('b:9000', 3, { dependents: ['app.mv'] })], [mv('b:9000')], undefined],
    ['a view named but not found (dropped between the two queries)', pair(3, 3, { dependents: ['app.mv'] }), [mv('a:9000')], undefined],
    ['a replica unreachable (skipped by the read)', [row('a:9000', 3)], [], undefined],
    ['the table on no replica', [], [], undefined],
    ['three replicas known to the replication, two named by the cluster', pair(3, 3, { replicated_total: '3' }), [], undefined],
    ['the cluster read reached a replica the cluster does not name', pair(3, 3, { initiator: 'c:9000' }), [], undefined],
    ['the local read reached a replica the cluster does not name', pair(3, 3), [], 'c:9000'],
    ['a count that is not a positive integer', pair(3, 3, { replicas: '0' }), [], undefined],
    ['a metadata file changed within the last seconds', pair(0, 0, { engine: 'MergeTree', metadata_age_seconds: 0 }), [], undefined],
  ];
  for (const [what, rows, views, local] of cases) {
    const [a, b] = [agreedVersion('local', rows, views, local), agreedVersion('local', rows, views, local)];
    assert.ok(differs(a), `${what}: ${a}`);
    assert.notEqual(a, b, `${what}: two reads differ`);
  }
});

test("each replica's own generations count by replica: tables created per replica agree, a view re-created on one moves the version", () => {
  const own = [row('a:9000', 3, { dependents: ['app.mv'] }), row('b:9000', 3, { dependents: ['app.mv'], uuid: '00000000-0000-0000-0000-0000000000bb' })];
  const views = (aView: string): ReplicaViewRow[] => [
    { replica: 'a:9000', view: `app.mv@${aView}` },
    { replica: 'b:9000', view: 'app.mv@v-b' },
  ];
  const v = agreedVersion('l', own, views('v-a'));
  assert.ok(!differs(v), String(v));
  assert.equal(agreedVersion('l', own, views('v-a')), v);
  assert.notEqual(agreedVersion('l', own, views('v-a2')), v);
  assert.deepEqual(viewNames(own), ['app.mv']);
});

test('nothing tells a version anywhere (servers before 24.2): undefined, as for one server', () => {
  const old = (replica: string): ReplicaVersionRow => ({ replica, initiator: 'a:9000', engine: 'ReplicatedMergeTree', replicas: 2 });
  assert.equal(agreedVersion(undefined, [old('a:9000'), old('b:9000')], []), undefined);
});
