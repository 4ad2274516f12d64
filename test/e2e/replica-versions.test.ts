// A table's definition version read from every replica behind one URL (review 2026-12-06c, finding
// B; src/sink/clickhouse/replica-versions.ts), on two real ClickHouse servers named as the replicas
// of one cluster (`remote_servers` in each server's config.d): the version counts only when every
// replica answered with the same one. A replica lagging behind an ALTER, a view on one replica only,
// or a replica that cannot be reached gives a version that equals no other read; a view re-created on
// one replica (its uuid there moves) gives another agreed version; an unknown cluster fails the read.
import assert from 'node:assert/strict';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildConfig } from '../../src/config/load.ts';
import { ClickHouseSink } from '../../src/sink/clickhouse/sink.ts';
import { WarehouseError } from '../../src/sink/errors.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';

let a: ClickHouseInstance;
let b: ClickHouseInstance;
const UUID = '7e1a0b36-5a59-4c6b-9d3c-2f1e0d9c8b7a';
const table = { database: 'app', table: 'events' };

before(async () => {
  [a, b] = await Promise.all([startClickHouse(), startClickHouse()]);
  const replica = (ch: ClickHouseInstance): string => `<replica><host>127.0.0.1</host><port>${ch.tcpPort}</port><user>${ch.admin.name}</user><password>${ch.admin.password}</password></replica>`;
  const xml = `<clickhouse><remote_servers><lb><shard>${replica(a)}${replica(b)}</shard></lb></remote_servers></clickhouse>\n`;
  for (const ch of [a, b]) {
    await mkdir(join(ch.dir, 'config.d'), { recursive: true });
    await writeFile(join(ch.dir, 'config.d', 'cluster.xml'), xml);
    await ch.down();
    await ch.up();
    await ch.query('CREATE DATABASE app');
    // The same table on both, as a replicated table is (one uuid); plain MergeTree: no Keeper here.
    await ch.query(`CREATE TABLE app.events UUID '${UUID}' (id UInt64) ENGINE = MergeTree ORDER BY id`);
  }
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

function sinkOf(ch: ClickHouseInstance, cluster: string | undefined): ClickHouseSink {
  const config = buildConfig(
    {
      kafka: { brokers: ['127.0.0.1:9092'] },
      destinations: [{ id: 'a', url: ch.url, user: ch.admin.name, password: ch.admin.password, database: 'app', ...(cluster === undefined ? {} : { cluster }) }],
      routes: [{ topic: 't', table: 'events', destination: 'a' }],
    },
    '/tmp',
  );
  return new ClickHouseSink(config.destinations[0] as (typeof config.destinations)[number]);
}

/**
 * A plain MergeTree's version is its metadata file's time (seconds): the servers' files are set to
 * one time long past, as a replicated table's metadata_version is the same on every replica once
 * they applied the same ALTERs (a later time stands for a later version).
 */
async function settle(at: string, ...servers: ClickHouseInstance[]): Promise<void> {
  const past = new Date(at);
  for (const ch of servers) await utimes(join(ch.dir, 'data', 'metadata', 'app', 'events.sql'), past, past);
}

test('every replica agreeing gives one version; a replica behind an ALTER or unreachable gives a version that equals no other read', async () => {
  const sink = sinkOf(a, 'lb');
  const single = sinkOf(a, undefined);
  try {
    const version = async (): Promise<string | undefined> => (await sink.describe(table))?.version;
    await settle('2026-01-01T00:00:00Z', a, b);
    const agreed = await version();
    assert.ok(agreed !== undefined && agreed.includes('|all:') && !agreed.startsWith('~'), `agreed: ${agreed}`);
    assert.equal(await version(), agreed, 'the same replicas, unchanged: the same version');
    const local = (await single.describe(table))?.version;
    assert.ok(local !== undefined && !local.includes('|all:'), `without a cluster, the one server's version: ${local}`);

    // B applies an ALTER that A (the server the URL reaches) has not applied yet.
    await b.query('ALTER TABLE app.events ADD COLUMN note String');
    await settle('2026-01-02T00:00:00Z', b);
    const lagging = [await version(), await version()];
    for (const v of lagging) assert.ok(v?.startsWith('~replicas-differ~') === true, `replicas differ: ${v}`);
    assert.notEqual(lagging[0], lagging[1], 'a version that equals no other read');
    assert.equal((await single.describe(table))?.version, local, 'the one server alone sees no change: what the cluster read is for');

    // A catches up: one version again, not the first one.
    await a.query('ALTER TABLE app.events ADD COLUMN note String');
    await settle('2026-01-02T00:00:00Z', a, b);
    const caughtUp = await version();
    assert.ok(caughtUp?.includes('|all:') === true, `agreed again: ${caughtUp}`);
    assert.notEqual(caughtUp, agreed);

    // A replica that cannot be reached is skipped by the read, and counts as not agreeing.
    await b.down();
    try {
      const unreachable = await version();
      assert.ok(unreachable?.startsWith('~replicas-differ~') === true, `a replica down: ${unreachable}`);
    } finally {
      await b.up();
    }
    assert.equal(await version(), caughtUp, 'back: the agreed version again');

    // A view reading from the table on every replica (each its own uuid): agreed; the view dropped
    // and created again on one replica (its uuid there moves): agreed, but another version.
    for (const ch of [a, b]) {
      await ch.query('CREATE TABLE app.counts (id UInt64) ENGINE = MergeTree ORDER BY id');
      await ch.query('CREATE MATERIALIZED VIEW app.counts_mv TO app.counts AS SELECT id FROM app.events');
    }
    await settle('2026-01-02T00:00:00Z', a, b);
    const withViews = await version();
    assert.ok(withViews?.includes('|all:') === true && withViews.includes('app.counts_mv@'), `agreed, the views named: ${withViews}`);
    await b.query('DROP VIEW app.counts_mv');
    assert.ok((await version())?.startsWith('~replicas-differ~') === true, 'a view on one replica only');
    await b.query('CREATE MATERIALIZED VIEW app.counts_mv TO app.counts AS SELECT id FROM app.events');
    await settle('2026-01-02T00:00:00Z', b);
    const recreated = await version();
    assert.ok(recreated?.includes('|all:') === true, `agreed again: ${recreated}`);
    assert.notEqual(recreated, withViews, 'the view re-created on one replica: another version');
  } finally {
    await Promise.all([sink.close(), single.close()]);
  }
});

test('a cluster the server does not know fails the schema read with a classified error naming it', async () => {
  const sink = sinkOf(a, 'no_such_cluster');
  try {
    await assert.rejects(sink.describe(table), (error: unknown) => {
      assert.ok(error instanceof WarehouseError, String(error));
      assert.match(error.message, /no_such_cluster/);
      return true;
    });
  } finally {
    await sink.close();
  }
});
