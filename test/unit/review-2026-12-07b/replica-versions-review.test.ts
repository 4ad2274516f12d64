// Review 2026-12-07b of bbabe13 (review 2026-12-06c finding B fixed with the cluster read: with
// destinations[].cluster, ClickHouseSink.describe also reads every replica's definition version
// through clusterAllReplicas and agreedVersion joins it, or gives a version equal to no other read
// when the replicas the cluster names did not all answer with the same one; docs/design/delivery.md
// §11 "replica lag"). These tests drive the real Pipeline (TableSchemas, Deliverer, the in-doubt
// judgment, the ledger) with a token-deduplicating warehouse whose schema reads are answered as the
// REAL describe would with a cluster (world.ts describeWithCluster: columns and local version from
// the replica the URL reached, every named replica's row as replicaVersionsQuery returns it, through
// the real definitionVersion and agreedVersion).
// Invariant everywhere: every row is in its table once or dead-lettered; in both only when its
// dead letter is marked may-have-landed; never twice, never lost. The `finding` tests reproduced
// this review's findings (each failed at bbabe13) and pass since they were fixed in the same session:
// 1 and 4 by counting each replica's own table and view uuids by replica (replicaViewsQuery), 3 by
// expecting as many rows as system.replicas.total_replicas and the reached replicas among them, 2 by
// TableSchemas' generations (a fresh read never joins a read started before the refusal). The other
// tests are controls; the controls that test no finding are in replica-versions-controls.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expectExactlyOnce, marks, violations } from '../../helpers/exactly-once.ts';
import { FedSource, HeldDeadLetters, TokenWarehouse, until, startWorld } from '../../helpers/pipeline-world.ts';
import { at, base, config, describeWithCluster, extra, heldReadSink, landsThenRefused, lost, recordOn, runToEnd, scriptedSink, show, twiceOf } from './world.ts';

const MV_OLD = 'default.events_mv@00000000-0000-0000-0000-0000000000a1';
const MV_NEW = 'default.events_mv@00000000-0000-0000-0000-0000000000a2';

// ---------------------------------------------------------------------------------------------
// Finding 1: a view re-created on one replica only — the cluster read names views without uuid
// ---------------------------------------------------------------------------------------------

// Sequence: the table (ReplicatedMergeTree, metadata_version 3) has a materialized view
// default.events_mv on both replicas A and B, whose SELECT refuses u4 ("while pushing to view").
// The operator replaces the view (DROP + CREATE … ON CLUSTER, or in a Replicated database): A runs
// the DDL, B's DDL queue lags (exactly finding B's replica lag, for a view instead of an ALTER).
//   1. recorded read: columns + local version from B (`…v3+default.events_mv@a1`), cluster read:
//      A `[default.events_mv]`, B `[default.events_mv]` (replicaVersionsQuery maps
//      dependencies_database/_table: names only) → `local|all:uuid/v3+default.events_mv`;
//   2. A re-creates the view (@a2, accepts u4); the first attempt lands on A, all 10 rows, reply lost;
//   3. the retry lands on B, whose old view refuses u4;
//   4. fresh read: local again from B (@a1), cluster A and B both `[default.events_mv]`: the same
//      version, the same fingerprint → not in doubt → the range is split under new tokens: 9 rows
//      twice, u4 in the table and dead-lettered unmarked.
// Why: the local read tells views apart by uuid (finding C's fix), but only on the replica the URL
// reached; the cluster read, the one meant to cover the other replicas, drops the uuid
// (replica-versions.ts says a scalar subquery would run on the initiator), so a view re-created on
// a replica the local read did not reach is invisible.
// Suggested fix: give each replica's views with their uuid — e.g. a second clusterAllReplicas read
// `SELECT hostName(), concat(database,'.',name,'@',toString(uuid)) FROM clusterAllReplicas(c,
// system.tables) WHERE (database, name) IN <the names the first read returned>` grouped per host —
// or select `arrayMap` over a join of system.tables evaluated on each replica (a JOIN inside the
// remote query, not a scalar subquery); then the views' uuids must agree on every replica too.
for (const refusalNamesRow of [true, false]) {
  test(`finding 1 (rows twice): a view re-created on replica A only (B's DDL lags), the first attempt landed on A, the retry refused by B's old view (${refusalNamesRow ? 'naming u4' : 'naming no row'}), the URL reaching B for both reads: no row twice`, async () => {
    const w = new TokenWarehouse();
    const A = at(3, false, { dependents: [MV_OLD] });
    const B = at(3, false, { dependents: [MV_OLD] });
    const s = scriptedSink(
      w,
      () => describeWithCluster(B, [A, B]),
      landsThenRefused(() => {
        A.dependents = [MV_NEW]; // DROP + CREATE MATERIALIZED VIEW on A: the new view takes u4
        A.u4Valid = true;
      }),
      !refusalNamesRow,
    );
    const letters = await runToEnd(s.factory);
    expectExactlyOnce(w, letters, 10);
  });
}

test('control for finding 1: the same re-created view, the fresh read reaching A (its view uuid moved): in doubt, every row once', async () => {
  const w = new TokenWarehouse();
  const A = at(3, false, { dependents: [MV_OLD] });
  const B = at(3, false, { dependents: [MV_OLD] });
  let landed = false;
  const s = scriptedSink(
    w,
    () => describeWithCluster(landed ? A : B, [A, B]),
    landsThenRefused(() => {
      A.dependents = [MV_NEW];
      A.u4Valid = true;
      landed = true;
    }),
  );
  const letters = await runToEnd(s.factory);
  expectExactlyOnce(w, letters, 10);
  assert.equal(w.uuids().length, 10);
  assert.deepEqual(marks(letters), [[4n, true]]);
});

test('control for finding 1: a view CREATED on A only (B lags): the names differ between replicas, in doubt, every row once', async () => {
  const w = new TokenWarehouse();
  const A = at(3, true);
  const B = at(3, true);
  const s = scriptedSink(
    w,
    () => describeWithCluster(A, [A, B]),
    async (n, _batch, store) => {
      if (n === 1) {
        await store(true); // landed on B (no view yet)
        A.dependents = [MV_NEW]; // the new view refuses u4 on A
        throw lost();
      }
      return store(false);
    },
  );
  const letters = await runToEnd(s.factory);
  expectExactlyOnce(w, letters, 10);
  assert.equal(w.uuids().length, 10);
});

// ---------------------------------------------------------------------------------------------
// Finding 2: the "fresh" read may have started before the retry was refused
// ---------------------------------------------------------------------------------------------

// Sequence (two lanes into one table: partitions 0 and 1 of team 8; the cluster read agreeing):
//   1. partition 0's batch is sent under F(v1) (u4 valid) and lands, its reply lost (in limbo);
//   2. its retry (transient_network) is encoded under a fresh read F(v1) and sent;
//   3. meanwhile partition 1's new batch asks TableSchemas.live: its cached entry is older than
//      schemaRefreshMs, so a schema read L starts; ClickHouse answers it from v1 (all replicas);
//   4. an ALTER (v2, u4 invalid) reaches every replica; the retry executes under v2: refused for u4;
//   5. refreshFingerprint invalidates the entry and calls live(), which JOINS the read L still in
//      flight (#loading) instead of starting one: its answer, taken before the refusal, is F(v1) =
//      the recorded one → "not in doubt" → split under new tokens: 9 rows twice, u4 in the table
//      and dead-lettered unmarked.
// Why: the judgment rests on the fresh read showing the schema the retry was refused under (§11: "the
// server refused under its schema of now, which a cached read may not show"); TableSchemas.invalidate
// drops the entry but not a load in flight, so "read again" can mean "a read started earlier". The
// cluster read makes describe three round trips (columns+engine, then clusterAllReplicas waiting for
// the slowest replica), which widens the window. Not specific to bbabe13 (one server too).
// Suggested fix: refreshFingerprint must use a read that STARTS after the refusal: TableSchemas gets
// a generation per key that invalidate() bumps; a load started under an older generation still
// answers its own callers but neither sets the entry nor is joined by callers after the invalidate.
test('finding 2 (rows twice): the fresh read after a refusal joins a schema read another lane started before the ALTER the retry was refused under: no row twice', async () => {
  const w = new TokenWarehouse();
  const v1 = at(1, true);
  const v2 = at(2, false, { columns: [...base, extra] });
  let now = v1;
  let holdNext = false;
  let held: number | undefined;
  let release: (() => void) | undefined;
  const gates = new Map<number, Promise<void>>();
  const source = new FedSource({ partitions: [0, 1] });
  const letters = new HeldDeadLetters();
  let p0Inserts = 0;
  const sink = heldReadSink(
    w,
    (n) => {
      if (holdNext) {
        holdNext = false;
        held = n;
        gates.set(n, new Promise<void>((resolve) => (release = resolve)));
      }
      return describeWithCluster(now, [now, now]);
    },
    (n) => gates.get(n),
    async (_n, batch, store) => {
      const body = Buffer.concat(batch.body).toString('utf8');
      if (body.includes('"uuid":"p1-')) return store(true); // partition 1's rows
      p0Inserts++;
      if (p0Inserts === 1) {
        await store(true);
        throw lost();
      }
      if (p0Inserts === 2) {
        await new Promise((resolve) => setTimeout(resolve, 5)); // the cached read is older than schemaRefreshMs (1 ms) now
        holdNext = true;
        void source.append(Array.from({ length: 10 }, (_, i) => recordOn(1, i))); // partition 1's batch asks for the schema
        await until(() => held !== undefined, 'partition 1 started a schema read');
        now = v2; // the ALTER reaches every replica after that read took its snapshot
        setTimeout(() => release?.(), 60); // that read's answer arrives after the refusal below
        return store(false);
      }
      return store(now.u4Valid);
    },
  );
  const world = startWorld({ config, warehouse: w, sinkFactory: sink.factory, deadLetters: letters, source, partitions: [0, 1] });
  try {
    await source.append(Array.from({ length: 10 }, (_, i) => recordOn(0, i)));
    await until(() => source.committedAt(0) === 10n && source.committedAt(1) === 10n, 'both partitions committed', 5_000).catch((e: unknown) => {
      throw new Error(
        `${String(e)}; DEBUG c0=${source.committedAt(0)} c1=${source.committedAt(1)} held=${held} reads=${sink.reads()} p0=${p0Inserts} inserts=${w.inserts.join(' ')} letters=${show(marks(letters.written))}`,
      );
    });
  } finally {
    await world.pipeline.destroy();
  }
  assert.deepEqual(twiceOf(w), [], `rows of partition 0 twice; inserts: ${w.inserts.join(' ')}`);
  assert.deepEqual(violations(w, letters.written, 10).both, [], `dead letters: ${show(marks(letters.written))}`);
});

test('control for finding 2: the same sequence without the other lane (the fresh read starts after the refusal): in doubt, every row once', async () => {
  const w = new TokenWarehouse();
  const v1 = at(1, true);
  const v2 = at(2, false, { columns: [...base, extra] });
  let now = v1;
  const s = scriptedSink(
    w,
    () => describeWithCluster(now, [now, now]),
    async (n, _batch, store) => {
      if (n === 1) {
        await store(true);
        throw lost();
      }
      if (n === 2) now = v2; // the ALTER lands between the retry's read and its execution
      return store(now.u4Valid);
    },
  );
  const letters = await runToEnd(s.factory);
  expectExactlyOnce(w, letters, 10);
  assert.equal(w.uuids().length, 10);
  assert.deepEqual(marks(letters), [[4n, true]]);
});

// ---------------------------------------------------------------------------------------------
// Finding 3: a replica that serves the URL but is not one the cluster names
// ---------------------------------------------------------------------------------------------

// Sequence: the load balancer sends to A, B and C; the configured cluster (remote_servers on the
// initiator) names A and B only (C added to the balancer before remote_servers lists it; a cluster
// defined for Distributed tables with one replica per shard; a Cloud replica added by autoscaling
// after the first read and removed before the fresh one). All three are replicas of one
// ReplicatedMergeTree. C applies an ALTER (v2, u4 valid) before A and B do.
//   1. recorded read: local from B, cluster A v1, B v1, `replicas` = 2 → agreed v1;
//   2. the first attempt lands on C (v2: u4 valid), all 10 rows, reply lost;
//   3. the retry lands on A (v1): refused for u4;
//   4. fresh read: local B v1, cluster A v1, B v1 → agreed v1, the same fingerprint → split: rows twice.
// (The mirror image too: C lagging at an older version under which u4 is valid.)
// Why: agreement is checked over the replicas the cluster names (count() of system.clusters on the
// initiator), not over the replicas that take inserts at the URL; nothing checks the two match.
// Suggested fix: for Replicated engines compare the cluster's row count with the table's replicas
// as Keeper knows them (system.replicas.total_replicas, read locally and in the cluster read), and
// take fewer named replicas than total_replicas as disagreement (or refuse the destination with a
// config error naming the missing replica, system.replicas / system.zookeeper `replicas` children);
// and/or add hostName() to the local read and require it among the cluster rows' hosts.
test('finding 3 (rows twice, config): a replica behind the URL that the cluster does not name applies an ALTER first and takes the first attempt: no row twice', async () => {
  const w = new TokenWarehouse();
  const A = at(1, false);
  const B = at(1, false);
  // Keeper knows the three replicas: system.replicas.total_replicas is 3 where the cluster names two.
  const s = scriptedSink(w, () => describeWithCluster(B, [A, B], [A, B], 3), landsThenRefused());
  const letters = await runToEnd(s.factory);
  expectExactlyOnce(w, letters, 10);
});

test('control for finding 3: the same replica C named by the cluster: it disagrees at the fresh read, in doubt, every row once', async () => {
  const w = new TokenWarehouse();
  const A = at(1, false);
  const B = at(1, false);
  const C = at(1, false);
  const s = scriptedSink(
    w,
    () => describeWithCluster(B, [A, B, C]),
    landsThenRefused(() => {
      C.metadataVersion = 2;
      C.u4Valid = true;
    }),
  );
  const letters = await runToEnd(s.factory);
  expectExactlyOnce(w, letters, 10);
  assert.equal(w.uuids().length, 10);
  assert.ok(
    marks(letters).every(([, m]) => m === true),
    show(marks(letters)),
  );
});

// ---------------------------------------------------------------------------------------------
// Finding 4 (liveness, data quality): replicas whose table uuids differ never agree
// ---------------------------------------------------------------------------------------------

// Sequence: a ReplicatedMergeTree created on each replica by its own CREATE TABLE (not ON CLUSTER,
// not in a Replicated database: the usual way before ON CLUSTER; also what the inserter's own
// createTable does behind a balancer, on one replica at a time) has one uuid PER REPLICA
// (system.tables.uuid is the local table's; ON CLUSTER shares one only when the initiator generates
// it, and not for cross-replication clusters). definitionVersion starts with the uuid, so with the
// cluster configured the replicas never agree: every read is `~replicas-differ~<random>` and every
// in-limbo range that is refused is in doubt — as finding A of 2026-12-06c, which was fixed for the
// same cost: an in-limbo range (reply lost, NOT landed) refused naming no row is held and then
// dead-lettered whole, marked may-have-landed: 9 good rows in the dead-letter topic, none in the table.
// (The e2e test creates both servers' tables with one explicit UUID, "as a replicated table is".)
// Suggested fix: compare across replicas only what is replicated (metadata_version and the views'
// names for Replicated/Shared engines) and keep each replica's uuid keyed by host in the recorded
// version (`host=uuid,…` sorted), so a table re-created on one replica still changes the version
// without making replicas with different local uuids disagree.
test('finding 4 (liveness): a replicated table whose replicas have different local uuids, an in-limbo range refused naming no row: isolated (9 rows in the table) as without the cluster', async () => {
  const w = new TokenWarehouse();
  const A = at(3, false, { uuid: '11111111-0000-0000-0000-00000000000a' });
  const B = at(3, false, { uuid: '22222222-0000-0000-0000-00000000000b' });
  const s = scriptedSink(
    w,
    () => describeWithCluster(A, [A, B]),
    async (n, _batch, store) => {
      if (n === 1) throw lost(); // not stored
      return store(false);
    },
    true,
  );
  const letters = await runToEnd(s.factory);
  expectExactlyOnce(w, letters, 10);
  assert.equal(w.uuids().length, 9, `9 good rows in the table (dead letters ${show(marks(letters))})`);
});

test('control for finding 4: the same replicas with one uuid: isolated, 9 rows in the table, u4 dead-lettered unmarked', async () => {
  const w = new TokenWarehouse();
  const A = at(3, false);
  const B = at(3, false);
  const s = scriptedSink(
    w,
    () => describeWithCluster(A, [A, B]),
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
