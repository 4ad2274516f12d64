// Regression tests for the three loss/duplication paths of the delivery review (ledger v1: an
// intent named a range plus a team set; a dead letter in flight counted as resolved after a
// rewind; a split batch replayed under the whole batch's token) and for the lookup that was never
// retried. Each drives the real Pipeline over the in-memory world of test/helpers/pipeline-world.ts
// and asserts rows in the warehouse, dead letters and committed positions. All but the second
// dead-letter test (a liveness check) fail on 4942df1.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ledger } from '../../../src/ack/ledger.ts';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import { AnsweringProvider, DyingLedgerStore, event, HeldDeadLetters, startWorld, TokenWarehouse, until, worldConfig } from '../../helpers/pipeline-world.ts';

function assertExactlyOnce(warehouse: TokenWarehouse, expected: readonly string[]): void {
  const landed = warehouse.uuids();
  const missing = expected.filter((u) => !landed.includes(u));
  assert.deepEqual(missing, [], `rows never inserted: ${missing.join(',')}`);
  assert.equal(landed.length, new Set(landed).size, `duplicates: ${landed.length} rows, ${new Set(landed).size} distinct`);
  assert.equal(landed.length, expected.length);
}

test('rows held for a lookup, then parked over the held budget, all land once the lookup answers', async () => {
  // Team 7 is unknown until looked up: its first rows are held (up to maxBufferedBytes/4), the rest
  // parked. Held rows then join team 8's open batch, which spans the parked rows' offsets.
  // Batches flush by rows only (or at close): team 8's batch is still open when the answer comes.
  const config = worldConfig({ maxBufferedBytes: 20_000, batch: { maxRows: 35, maxBytes: 1 << 24, maxAgeMs: 600_000 } });
  const provider = new AnsweringProvider(config, { 8: 'd1' });
  const warehouse = new TokenWarehouse();
  const { pipeline, source } = startWorld({ config, warehouse, provider });
  try {
    const records = Array.from({ length: 60 }, (_, i) => event(i, i % 2 === 0 ? 7 : 8, i % 2 === 0 ? 400 : 0));
    await source.append(records);
    await until(() => provider.waiting(7), 'the lookup of team 7');
    await until(() => (pipeline.status().partitions[0]?.held ?? 0) > 0, 'held rows');
    source.holdRewinds = true; // the batch the held rows join is inserted before the re-read starts
    provider.answer(7, 'd1');
    await until(() => source.rewindHeld && warehouse.rows.length > 0, 'the first insert and the rewind');
    source.holdRewinds = false;
    source.releaseRewind();
    await until(() => source.caughtUp, 'parked rows to be read again');
    await pipeline.close(5_000); // flushes the batch of re-read rows
    assert.equal(source.committed, 60n);
    assertExactlyOnce(
      warehouse,
      records.map((_, i) => `u${i}`),
    );
  } finally {
    await pipeline.destroy();
  }
});

test('a dead letter still being written keeps the position below it across a rewind and a shutdown', async () => {
  const config = worldConfig({ teams: { map: { 8: 'd1' } } });
  const warehouse = new TokenWarehouse();
  const deadLetters = new HeldDeadLetters();
  deadLetters.hold = true; // the broker keeps refusing: the writer retries until the hard stop
  const { pipeline, source } = startWorld({ config, warehouse, deadLetters });
  const records = Array.from({ length: 10 }, (_, i) => event(i, 8));
  records[5] = { ...(records[5] as (typeof records)[number]), value: Buffer.from('not json') };
  await source.append(records);
  const unresolved = (): number | undefined => pipeline.status().partitions[0]?.unresolved;
  // (Nothing is committed yet: the watermark moves by chunks of records, and the first chunk holds the
  // dead letter; the position reading began at is never committed — committer.ts.)
  await until(() => unresolved() === 1, 'every row but the dead letter to resolve');
  // An unrelated pause and resume re-reads the partition from its committed position.
  pipeline.setPauses([{ id: 'p1', scope: { kind: 'table', table: 'other' }, reason: 'migration', by: 'test', at: Date.now() }]);
  pipeline.setPauses([]);
  await until(() => source.rewinds >= 1 && source.caughtUp, 'the re-read');
  assert.equal(unresolved(), 1, 'the re-read record whose dead letter is in flight is unresolved');
  await pipeline.close(50); // commits what is resolved; the write is abandoned at the deadline
  assert.equal(deadLetters.written.length, 0);
  assert.ok(source.committed <= 5n, `committed ${source.committed} after shutdown with the dead letter unwritten`);
  assertExactlyOnce(
    warehouse,
    records.flatMap((_, i) => (i === 5 ? [] : [`u${i}`])),
  );
});

test('a dead letter written after a rewind resolves every read of its record', async () => {
  const config = worldConfig({ teams: { map: { 8: 'd1' } } });
  const warehouse = new TokenWarehouse();
  const deadLetters = new HeldDeadLetters();
  deadLetters.hold = true;
  const { pipeline, source } = startWorld({ config, warehouse, deadLetters });
  try {
    const records = Array.from({ length: 10 }, (_, i) => event(i, 8));
    records[5] = { ...(records[5] as (typeof records)[number]), value: Buffer.from('not json') };
    await source.append(records);
    await until(() => pipeline.status().partitions[0]?.unresolved === 1, 'every row but the dead letter to resolve');
    pipeline.setPauses([{ id: 'p1', scope: { kind: 'table', table: 'other' }, reason: 'migration', by: 'test', at: Date.now() }]);
    pipeline.setPauses([]);
    await until(() => source.rewinds >= 1 && source.caughtUp, 'the re-read');
    deadLetters.release();
    await until(() => source.committed === 10n, `the position to pass the dead letter (at ${source.committed})`);
    assert.deepEqual(
      deadLetters.written.map((w) => w.offset),
      [5n],
    );
  } finally {
    await pipeline.destroy();
  }
});

test('a batch split before a crash is replayed as the same sub-batches under the same tokens', async () => {
  const config = worldConfig({ teams: { map: { 8: 'd1' } }, commitIntervalMs: 60_000, batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 60_000 } });
  const warehouse = new TokenWarehouse();
  const ledgers = new DyingLedgerStore();
  let pressure = true;
  warehouse.fail = (_token, rows) => (pressure && rows === 10 ? new WarehouseError(ErrorClasses.memoryLimit, 'Code: 241. DB::Exception: Memory limit (total) exceeded', 241, undefined) : undefined);
  const records = Array.from({ length: 10 }, (_, i) => event(i, 8));

  const first = startWorld({ config, warehouse, ledgers });
  await first.source.append(records);
  await until(() => warehouse.rows.length === 10, 'the halves to land');
  ledgers.dead = true; // kill -9: `done` is never made durable
  await first.pipeline.destroy();

  pressure = false; // the server has memory again: the whole batch would fit now
  ledgers.dead = false;
  const second = startWorld({ config, warehouse, ledgers });
  try {
    await second.source.append(records);
    await until(() => warehouse.inserts.length >= 4, `the replay (inserts: ${warehouse.inserts.join(', ')})`);
    await second.pipeline.close(1_000);
    assert.equal(second.source.committed, 10n);
    assertExactlyOnce(
      warehouse,
      records.map((_, i) => `u${i}`),
    );
    assert.ok(
      warehouse.inserts.every((i) => i.includes('/')),
      `only sub-batch tokens: ${warehouse.inserts.join(', ')}`,
    );
  } finally {
    await second.pipeline.destroy();
  }
});

test('a failed team lookup is asked again until it is answered; the partition then moves on', async () => {
  const config = worldConfig();
  const provider = new AnsweringProvider(config, { 8: 'd1' });
  const warehouse = new TokenWarehouse();
  const { pipeline, source } = startWorld({ config, warehouse, provider });
  try {
    const records = Array.from({ length: 200 }, (_, i) => event(i, i === 3 ? 7 : 8));
    await source.append(records);
    await until(() => provider.waiting(7), 'the first lookup');
    provider.fail(7);
    await until(() => provider.waiting(7) && provider.lookups.length >= 2, 'a second lookup');
    assert.equal(source.committed <= 3n, true, 'nothing is committed past the held row');
    provider.answer(7, 'd1');
    await until(() => source.committed === 200n, `the position to reach 200 (at ${source.committed})`);
    assertExactlyOnce(
      warehouse,
      records.map((_, i) => `u${i}`),
    );
  } finally {
    await pipeline.destroy();
  }
});

test('the ledger stays well under the broker message size with 100k dead letters above a held position', () => {
  const base = 1_234_567_890n;
  const scattered = new Ledger();
  scattered.prune(base); // the committed position, held by one unresolved record
  for (let i = 1n; i <= 100_000n; i++) scattered.markResolved('events', base + i * 3n);
  const bytes = JSON.stringify(scattered.toJson()).length;
  assert.ok(bytes < 350_000, `${bytes} bytes`);
  // In the usual case the rows between the dead letters are resolved too: one run.
  const usual = new Ledger();
  usual.prune(base);
  for (let i = 1n; i <= 300_000n; i++) usual.markResolved('events', base + i);
  assert.ok(JSON.stringify(usual.toJson()).length < 200, JSON.stringify(usual.toJson()));
});
