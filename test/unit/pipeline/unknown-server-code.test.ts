// An insert rejected with a server code no class lists (class unknown_server_error, policy action
// `bisect`) never stalls a partition: bisected, a row the failure follows is dead-lettered with its
// code and message and everything else lands once; when every part fails alike it is the
// destination's (backed off, then paused), nothing is dead-lettered and everything lands once it
// recovers. A failure without a code stays `unknown`: retried whole, never bisected. Drives the real
// Pipeline over the in-memory world of test/helpers/pipeline-world.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import { event, HeldDeadLetters, startWorld, TokenWarehouse, until, worldConfig } from '../../helpers/pipeline-world.ts';

const unlisted = (): WarehouseError => new WarehouseError(ErrorClasses.unknownServerError, 'Code: 99999. DB::Exception: something no class lists. (NEW_ERROR)', 99999, undefined);
const fastPolicy = { errorPolicy: { defaults: { unknown_server_error: { baseMs: 5, capMs: 20, maxAttempts: 3, pauseMs: 20 }, unknown: { baseMs: 5, capMs: 20, maxAttempts: 3, pauseMs: 20 } } } };

function assertExactlyOnce(warehouse: TokenWarehouse, expected: readonly string[]): void {
  const landed = warehouse.uuids();
  assert.equal(landed.length, new Set(landed).size, `duplicates: ${landed.length} rows, ${new Set(landed).size} distinct`);
  assert.deepEqual([...landed].sort(), [...expected].sort());
}

test('a row rejected with an unlisted server code among 3,000 is dead-lettered alone, with the code and message; the rest land once and commits move on', async () => {
  const config = worldConfig({ teams: { map: { 8: 'd1' } }, batch: { maxRows: 1000, maxBytes: 1 << 24, maxAgeMs: 20 }, ...fastPolicy });
  const warehouse = new TokenWarehouse();
  warehouse.fail = (_token, _rows, uuids) => (uuids.includes('u1234') ? unlisted() : undefined);
  const deadLetters = new HeldDeadLetters();
  const { pipeline, source } = startWorld({ config, warehouse, deadLetters });
  try {
    const records = Array.from({ length: 3000 }, (_, i) => event(i, 8));
    await source.append(records);
    await until(() => source.committed === 3000n, `commits past every record (committed ${source.committed})`);
    assert.deepEqual(
      deadLetters.written.map((d) => d.offset),
      [1234n],
    );
    const reason = deadLetters.written[0]?.reason;
    assert.equal(reason?.errorClass, ErrorClasses.unknownServerError);
    assert.equal(reason?.code, 'INSERTER_SINK_UNKNOWN_SERVER_ERROR');
    assert.equal(reason?.serverCode, 99999);
    assert.match(reason?.message ?? '', /something no class lists/);
    assertExactlyOnce(
      warehouse,
      records.map((_, i) => `u${i}`).filter((u) => u !== 'u1234'),
    );
    // Bisection, not one insert per row: about two inserts per halving on the way to the row.
    assert.ok(warehouse.inserts.length < 40, `${warehouse.inserts.length} inserts`);
  } finally {
    await pipeline.destroy();
  }
});

test('a lone bad row next to a good one (a two-row batch) is dead-lettered without waiting for the pause', async () => {
  const config = worldConfig({
    teams: { map: { 8: 'd1' } },
    batch: { maxRows: 2, maxBytes: 1 << 24, maxAgeMs: 20 },
    errorPolicy: { defaults: { unknown_server_error: { baseMs: 5, capMs: 20, maxElapsedMs: 600_000, pauseMs: 60_000 } } },
  });
  const warehouse = new TokenWarehouse();
  warehouse.fail = (_token, _rows, uuids) => (uuids.includes('u0') ? unlisted() : undefined);
  const deadLetters = new HeldDeadLetters();
  const { pipeline, source } = startWorld({ config, warehouse, deadLetters });
  try {
    await source.append([event(0, 8), event(1, 8)]);
    await until(() => source.committed === 2n, 'commits past both records');
    assert.deepEqual(
      deadLetters.written.map((d) => d.offset),
      [0n],
    );
    assertExactlyOnce(warehouse, ['u1']);
  } finally {
    await pipeline.destroy();
  }
});

test('a bad row alone in its batch (low traffic) is judged by an empty insert into its table: dead-lettered, the partition moves on', async () => {
  const config = worldConfig({
    teams: { map: { 8: 'd1' } },
    batch: { maxRows: 1, maxBytes: 1 << 24, maxAgeMs: 20 },
    errorPolicy: { defaults: { unknown_server_error: { baseMs: 5, capMs: 20, maxElapsedMs: 600_000, pauseMs: 60_000 } } },
  });
  const warehouse = new TokenWarehouse();
  warehouse.fail = (_token, _rows, uuids) => (uuids.includes('u1') ? unlisted() : undefined);
  const deadLetters = new HeldDeadLetters();
  const { pipeline, source } = startWorld({ config, warehouse, deadLetters });
  try {
    await source.append([event(0, 8), event(1, 8), event(2, 8)]);
    await until(() => source.committed === 3n, `commits past every record (committed ${source.committed})`);
    assert.deepEqual(
      deadLetters.written.map((d) => d.offset),
      [1n],
    );
    assertExactlyOnce(warehouse, ['u0', 'u2']);
    assert.ok(
      warehouse.inserts.some((i) => i.endsWith('/probe (0)')),
      `an empty probe insert: ${warehouse.inserts.join(', ')}`,
    );
  } finally {
    await pipeline.destroy();
  }
});

test('a lone bad row whose first probe fails (no other traffic) is probed again at every retry, then dead-lettered', async () => {
  const config = worldConfig({ teams: { map: { 8: 'd1' } }, batch: { maxRows: 1, maxBytes: 1 << 24, maxAgeMs: 20 }, ...fastPolicy });
  const warehouse = new TokenWarehouse();
  let probes = 0;
  warehouse.fail = (_token, rows, uuids) => {
    if (rows === 0 && probes++ < 5) return unlisted(); // the destination refuses empty inserts for a while (past the backoff)
    return uuids.includes('u0') ? unlisted() : undefined;
  };
  const deadLetters = new HeldDeadLetters();
  const { pipeline, source } = startWorld({ config, warehouse, deadLetters });
  try {
    await source.append([event(0, 8)]);
    await until(() => source.committed === 1n, `commits past the record (committed ${source.committed}, probes ${probes})`);
    assert.deepEqual(
      deadLetters.written.map((d) => d.offset),
      [0n],
    );
    assert.ok(probes > 5, `probed again after the first failures (${probes})`);
    assertExactlyOnce(warehouse, []);
  } finally {
    await pipeline.destroy();
  }
});

test("when every part fails alike the failure is the destination's: nothing dead-lettered, nothing committed, all land once it recovers", async () => {
  const config = worldConfig({ teams: { map: { 8: 'd1' } }, batch: { maxRows: 1000, maxBytes: 1 << 24, maxAgeMs: 20 }, ...fastPolicy });
  const warehouse = new TokenWarehouse();
  let broken = true;
  let failures = 0;
  warehouse.fail = () => {
    if (!broken) return undefined;
    failures++;
    return unlisted();
  };
  const deadLetters = new HeldDeadLetters();
  const { pipeline, source } = startWorld({ config, warehouse, deadLetters });
  try {
    const records = Array.from({ length: 1000 }, (_, i) => event(i, 8));
    await source.append(records);
    await until(() => failures > 40, `the destination probed while paused (${failures} failures)`);
    assert.equal(deadLetters.written.length, 0, 'nothing dead-lettered');
    assert.equal(warehouse.rows.length, 0);
    assert.ok(source.committed <= 0n, `nothing committed (committed ${source.committed})`);
    broken = false;
    await until(() => source.committed === 1000n, `commits past every record once it recovers (committed ${source.committed})`);
    assert.equal(deadLetters.written.length, 0, 'nothing dead-lettered');
    assertExactlyOnce(
      warehouse,
      records.map((_, i) => `u${i}`),
    );
  } finally {
    await pipeline.destroy();
  }
});

test('a failure without a server code stays unknown: retried whole under the same token, never bisected', async () => {
  const config = worldConfig({ teams: { map: { 8: 'd1' } }, batch: { maxRows: 100, maxBytes: 1 << 24, maxAgeMs: 20 }, ...fastPolicy });
  const warehouse = new TokenWarehouse();
  let failures = 0;
  warehouse.fail = () => (failures++ < 2 ? new TypeError('boom') : undefined);
  const { pipeline, source } = startWorld({ config, warehouse });
  try {
    const records = Array.from({ length: 100 }, (_, i) => event(i, 8));
    await source.append(records);
    await until(() => source.committed === 100n, 'commits past every record');
    assert.deepEqual(warehouse.inserts.length, 1);
    assert.ok(!(warehouse.inserts[0] ?? '').includes('/'), `the whole batch's token: ${warehouse.inserts.join(', ')}`);
    assertExactlyOnce(
      warehouse,
      records.map((_, i) => `u${i}`),
    );
  } finally {
    await pipeline.destroy();
  }
});
