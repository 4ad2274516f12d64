// Review 2026-12-07b (see replica-versions-review.test.ts): the controls that held — orders of events
// tried against the cluster read (changes and reverts while a replica lags, columns and versions
// read at two instants, replicas not answering, shards, plain MergeTree, servers before 24.2), each
// driving the real pipeline as the findings' tests do. Every row once, never twice, never lost.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectExactlyOnce } from '../../helpers/exactly-once.ts';
import { TokenWarehouse } from '../../helpers/pipeline-world.ts';
import type { TableSchema } from '../../../src/sink/types.ts';
import { definitionVersion } from '../../../src/sink/clickhouse/dedup.ts';
import { agreedVersion } from '../../../src/sink/clickhouse/replica-versions.ts';
import { engineRow } from '../review-2026-12-06c/world.ts';
import { at, base, clusterRow, describeWithCluster, extra, landsThenRefused, lost, runToEnd, scriptedSink, type TableState } from './world.ts';

test('control: A applies a change and its revert (v2 then v3) while B lags at v1; the attempt lands on A at v2, the retry on B at v1: in doubt at every fresh read, every row once', async () => {
  for (const freshB of [1, 3]) {
    const w = new TokenWarehouse();
    const A = at(1, false);
    const B = at(1, false);
    const s = scriptedSink(
      w,
      () => describeWithCluster(B, [A, B]),
      async (n, _batch, store) => {
        if (n === 1) {
          A.metadataVersion = 2;
          await store(true);
          A.metadataVersion = 3; // the revert
          if (freshB === 3) B.metadataVersion = 3; // B catches up with both before the fresh read
          throw lost();
        }
        return store(false);
      },
    );
    const letters = await runToEnd(s.factory);
    expectExactlyOnce(w, letters, 10);
    assert.equal(w.uuids().length, 10, `B at v${freshB}`);
  }
});

test('control: columns read from a replica before it caught up, versions from all after (two queries at two instants): a later revert is still in doubt', async () => {
  const w = new TokenWarehouse();
  // The first read's columns and local version come from B still at v1; by the cluster read every
  // replica (B included) is at v2, where u4 is valid.
  const bOld = at(1, false);
  const v2 = at(2, true, { columns: [...base, extra] });
  const v3 = at(3, false); // the revert
  let reads = 0;
  let now: TableSchema | undefined;
  const s = scriptedSink(
    w,
    () => {
      reads++;
      return reads === 1 ? describeWithCluster(bOld, [v2, v2]) : (now ?? describeWithCluster(v2, [v2, v2]));
    },
    async (n, _batch, store) => {
      if (n === 1) {
        await store(true);
        now = describeWithCluster(v3, [v3, v3]);
        throw lost();
      }
      return store(false);
    },
  );
  const letters = await runToEnd(s.factory);
  expectExactlyOnce(w, letters, 10);
  assert.equal(w.uuids().length, 10);
});

test('control: a named replica that does not answer (skip_unavailable_shards) at the recorded read, the fresh read or both: in doubt, every row once', async () => {
  for (const missing of ['recorded', 'fresh', 'both'] as const) {
    const w = new TokenWarehouse();
    const A = at(1, false);
    const B = at(1, false);
    let landed = false;
    const s = scriptedSink(
      w,
      () => {
        const skip = missing === 'both' || (missing === 'recorded') !== landed;
        return describeWithCluster(B, [A, B], skip ? [B] : [A, B]);
      },
      landsThenRefused(() => {
        A.metadataVersion = 2; // A (perhaps the one not answering) applied the ALTER and took the attempt
        A.u4Valid = true;
        landed = true;
      }),
    );
    const letters = await runToEnd(s.factory);
    expectExactlyOnce(w, letters, 10);
    assert.equal(w.uuids().length, 10, missing);
  }
});

test('control: two shards of two replicas, one shard lagging at the fresh read (replicas counted over all shards): in doubt, every row once', async () => {
  const w = new TokenWarehouse();
  const replicas = [at(1, false), at(1, false), at(1, false), at(1, false)];
  const s = scriptedSink(
    w,
    () => describeWithCluster(replicas[1] as TableState, replicas),
    landsThenRefused(() => {
      const first = replicas[0] as TableState;
      first.metadataVersion = 2;
      first.u4Valid = true;
    }),
  );
  const letters = await runToEnd(s.factory);
  expectExactlyOnce(w, letters, 10);
  assert.equal(w.uuids().length, 10);
});

test('control: plain MergeTree on every replica (versions are metadata file times): a change on one replica only, or a change settling (< 2 s) on all: in doubt, every row once', async () => {
  for (const how of ['one replica', 'all settling'] as const) {
    const w = new TokenWarehouse();
    const A = at(0, false, { plain: true });
    const B = at(0, false, { plain: true });
    const s = scriptedSink(
      w,
      () => describeWithCluster(B, [A, B]),
      landsThenRefused(() => {
        A.mtime = '2026-12-06 10:00:07';
        A.u4Valid = true;
        if (how === 'all settling') {
          // B applied it within the same second; both files are younger than 2 s at the fresh read
          B.mtime = A.mtime;
          A.ageSeconds = 0;
          B.ageSeconds = 0;
        }
      }),
    );
    const letters = await runToEnd(s.factory);
    expectExactlyOnce(w, letters, 10);
    assert.equal(w.uuids().length, 10, how);
  }
});

test('control: a replica whose server tells no version (before 24.2) beside one that does: never agreed, in doubt, every row once', async () => {
  const w = new TokenWarehouse();
  const A = at(1, false);
  const B = at(1, false);
  const s = scriptedSink(
    w,
    (): TableSchema => {
      // B's row without metadata_version (its server predates it): definitionVersion gives undefined there.
      const { metadata_version: _v, ...old } = clusterRow(B, 2, 'r1:9000', 'r1:9000');
      return { columns: [...B.columns], version: agreedVersion(definitionVersion(engineRow(B)), [clusterRow(A, 2, 'r0:9000', 'r1:9000'), old], [], 'r1:9000') };
    },
    landsThenRefused(() => {
      A.metadataVersion = 2;
      A.u4Valid = true;
    }),
  );
  const letters = await runToEnd(s.factory);
  expectExactlyOnce(w, letters, 10);
  assert.equal(w.uuids().length, 10);
});
