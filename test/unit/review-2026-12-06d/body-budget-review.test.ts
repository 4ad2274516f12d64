// Review 2026-12-06d of 1c71d7e: an insert's body is counted in the pipeline's MemoryBudget from
// encode until the attempt ends (src/pipeline/attempt.ts), in the total the source waits on and in
// its destination's share that LaneControl.checkBudget reads. These tests drive the real Pipeline
// with fakes and read the budget's total (Metrics.bufferedBytesReader) and per-destination shares
// (status): every reservation is released whatever ends the attempt (a sink throwing synchronously,
// a split, a ledger save failing in `journal.sending`, a revocation, a stop), the total never goes
// negative, and a batch bigger than the budget on its own does not stop the pipeline (controls).
// The `todo` test is a behaviour change the lead must decide on: a hanging destination's bodies now
// stall a healthy destination's source where its rows alone did not (see its comment).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryLedgerStore, type LedgerJson } from '../../../src/ack/ledger.ts';
import type { Config, DestinationConfig } from '../../../src/config/load.ts';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { AbortedError } from '../../../src/errors/inserter-error.ts';
import { Pipeline } from '../../../src/pipeline/pipeline.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import type { InsertBatch, InsertResult, Sink } from '../../../src/sink/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { Metrics } from '../../../src/telemetry/metrics.ts';
import { expectExactlyOnce } from '../../helpers/exactly-once.ts';
import { event, FedSource, HeldDeadLetters, TokenWarehouse, until, worldConfig } from '../../helpers/pipeline-world.ts';

const fastRetries = { baseMs: 5, capMs: 20, pauseMs: 20 };
const errorPolicy = { defaults: { transient_network: fastRetries, unknown_server_error: fastRetries, row_data: { baseMs: 5, capMs: 20 } } };

/** A ledger store whose saves fail (not an abort: a disk or network error) while `failing` is set. */
class FailingLedgerStore extends MemoryLedgerStore {
  failing = false;
  failed = 0;
  override async save(topic: string, partition: number, ledger: LedgerJson): Promise<void> {
    if (this.failing) {
      this.failed++;
      throw new Error('ledger store unavailable');
    }
    await super.save(topic, partition, ledger);
  }
}

interface Run {
  readonly pipeline: Pipeline;
  readonly source: FedSource;
  readonly letters: HeldDeadLetters;
  /** The budget's total now; every read is also checked to be >= 0 (`lowest`). */
  total(): number;
  lowest: number;
}

function run(config: Config, sink: (d: DestinationConfig) => Sink, ledgers: MemoryLedgerStore = new MemoryLedgerStore()): Run {
  const source = new FedSource();
  const metrics = new Metrics();
  const letters = new HeldDeadLetters();
  const pipeline = new Pipeline({ config, source, sinkFactory: sink, deadLetters: letters, ledgers, logger: createLogger(process.env.TEST_LOG ?? 'silent'), metrics });
  void pipeline.start();
  source.assign(pipeline, [0]);
  const r: Run = {
    pipeline,
    source,
    letters,
    lowest: 0,
    total: () => {
      const t = metrics.bufferedBytesReader?.() ?? Number.NaN;
      r.lowest = Math.min(r.lowest, t);
      return t;
    },
  };
  return r;
}

/** A sink over the warehouse's whose inserts go through `insert` (n: the call's number, from 1). */
function sinkOf(w: TokenWarehouse, insert: (n: number, inner: Sink, batch: InsertBatch, signal?: AbortSignal) => Promise<InsertResult>): (d: DestinationConfig) => Sink {
  let n = 0;
  return (d) => {
    const inner = w.sink(d);
    return { ...inner, insert: (batch, signal) => insert(++n, inner, batch, signal) };
  };
}

const hang = (signal?: AbortSignal): Promise<never> => new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(new AbortedError('insert aborted')), { once: true }));

test('released whatever ends an attempt: a sink that throws synchronously, then a refusal naming a row (split, dead letter); the total never goes negative', { timeout: 60_000 }, async () => {
  const config = worldConfig({ teams: { map: { 1: 'd1' } }, batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 }, errorPolicy });
  const warehouse = new TokenWarehouse();
  const heldAtCall: number[] = [];
  const r: { run?: Run } = {};
  const sink = (d: DestinationConfig): Sink => {
    const inner = warehouse.sink(d);
    let n = 0;
    return {
      ...inner,
      // Not async: the first call throws before any promise exists.
      insert: (batch, signal) => {
        n++;
        heldAtCall.push(r.run?.total() ?? 0);
        if (n === 1) throw new WarehouseError(ErrorClasses.transientNetwork, 'connect ECONNREFUSED', undefined, undefined);
        if (batch.rows > 1 && Buffer.concat(batch.body).includes('"u3"')) {
          const at =
            Buffer.concat(batch.body)
              .toString()
              .split('\n')
              .findIndex((l) => l.includes('"u3"')) + 1;
          return Promise.reject(new WarehouseError(ErrorClasses.rowData, `Cannot parse input (at row ${at})`, 27, undefined, at));
        }
        if (batch.rows === 1 && Buffer.concat(batch.body).includes('"u3"')) return Promise.reject(new WarehouseError(ErrorClasses.rowData, 'Cannot parse input (at row 1)', 27, undefined, 1));
        return inner.insert(batch, signal);
      },
    };
  };
  const world = (r.run = run(config, sink));
  try {
    await world.source.append(Array.from({ length: 10 }, (_, i) => event(i, 1)));
    await until(() => world.source.committed === 10n, 'committed to 10');
    await until(() => world.total() === 0, 'nothing held');
    expectExactlyOnce(warehouse, world.letters.written, 10);
    assert.deepEqual(
      world.letters.written.map((l) => l.offset),
      [3n],
    );
    assert.ok(heldAtCall.length >= 3 && heldAtCall.every((h) => h > 0), `held at each call: ${heldAtCall.join(', ')}`);
    assert.ok(world.lowest >= 0, `the total never negative (lowest ${world.lowest})`);
    assert.equal(world.pipeline.status().bufferedBytesByDestination.d1 ?? 0, 0);
  } finally {
    await world.pipeline.destroy();
  }
});

test('released when `journal.sending` fails (the ledger save of a new schema fails before the retry is sent)', { timeout: 60_000 }, async () => {
  const config = worldConfig({ teams: { map: { 1: 'd1' } }, schemaRefreshMs: 1, batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 }, errorPolicy });
  const warehouse = new TokenWarehouse();
  const ledgers = new FailingLedgerStore();
  const sink = sinkOf(warehouse, async (n, inner, batch, signal) => {
    if (n === 1) {
      // Lost before the server: the table is altered and the ledger store fails meanwhile.
      warehouse.columns = [...warehouse.columns, { name: 'altered', type: 'UInt8', defaultKind: 'DEFAULT' }];
      ledgers.failing = true;
      throw new WarehouseError(ErrorClasses.transientNetwork, 'connect ECONNRESET', undefined, undefined);
    }
    return inner.insert(batch, signal);
  });
  const world = run(config, sink, ledgers);
  try {
    void world.source.append(Array.from({ length: 10 }, (_, i) => event(i, 1)));
    await until(() => ledgers.failed > 0, 'a ledger save failed');
    ledgers.failing = false;
    await until(() => world.source.committed === 10n, 'committed to 10 once the store is back');
    await until(() => world.total() === 0, 'nothing held');
    expectExactlyOnce(warehouse, world.letters.written, 10);
    assert.ok(world.lowest >= 0, `the total never negative (lowest ${world.lowest})`);
  } finally {
    await world.pipeline.destroy();
  }
});

test('released when the partition is revoked during an insert, and when the pipeline stops during one', { timeout: 60_000 }, async () => {
  const config = worldConfig({ teams: { map: { 1: 'd1' } }, batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 }, errorPolicy });
  for (const end of ['revoke', 'destroy'] as const) {
    const warehouse = new TokenWarehouse();
    const settle: Array<() => void> = [];
    const sink = sinkOf(warehouse, async (_n, inner, batch, signal) => {
      await Promise.race([new Promise<void>((resolve) => settle.push(resolve)), hang(signal)]);
      return inner.insert(batch, signal);
    });
    const world = run(config, sink);
    try {
      void world.source.append(Array.from({ length: 10 }, (_, i) => event(i, 1)));
      await until(() => settle.length === 1, 'the insert is on the wire');
      const rowsAndBody = world.total();
      assert.ok(rowsAndBody > 0);
      if (end === 'revoke') {
        world.source.revoke(world.pipeline, [0]);
        for (const s of settle) s(); // an attempt on the wire finishes (or was aborted)
        await until(() => world.total() === 0, `${end}: nothing held once the insert ended (held ${world.total()})`);
      } else {
        await world.pipeline.destroy();
        assert.equal(world.total(), 0, `${end}: nothing held after the stop`);
      }
      assert.ok(world.lowest >= 0, `${end}: the total never negative (lowest ${world.lowest})`);
    } finally {
      await world.pipeline.destroy();
    }
  }
});

test('one batch whose rows alone exceed maxBufferedBytes: flushed, sent, landed; the source goes on (no deadlock with its body counted)', { timeout: 60_000 }, async () => {
  const config = worldConfig({ teams: { map: { 1: 'd1' } }, maxBufferedBytes: 2_000, batch: { maxRows: 1000, maxBytes: 1 << 24, maxAgeMs: 60_000 }, errorPolicy });
  const warehouse = new TokenWarehouse();
  const sent: number[] = [];
  const sink = sinkOf(warehouse, async (_n, inner, batch, signal) => {
    sent.push(batch.bytes);
    return inner.insert(batch, signal);
  });
  const world = run(config, sink);
  try {
    await world.source.append(Array.from({ length: 60 }, (_, i) => event(i, 1, 100)));
    await until(() => world.source.committed === 60n, 'committed to 60');
    await until(() => world.total() === 0, 'nothing held');
    assert.ok(
      sent.some((b) => b > 2_000),
      `some body alone is over the budget: ${sent.join(', ')}`,
    );
    expectExactlyOnce(warehouse, world.letters.written, 60);
  } finally {
    await world.pipeline.destroy();
  }
});

// Finding (behaviour change; the lead decides). docs/design/delivery.md §9: "a destination that is
// down, slow or rejecting must not slow the others". A destination whose insert hangs (d2: the
// request is accepted and never answered until requestTimeoutMs, 120 s by default) now holds its rows
// AND its body in the shared total for as long as the attempt lasts. Here d2's 10 rows in flight are
// under the global budget, but rows + body are over it: the source waits, so the healthy d1's rows
// (read after d2's) are neither read nor inserted until d2's attempt ends. At 943c036 (before the body
// was counted) this test passes: d1's batch lands while d2 hangs. With defaults (global and
// per-destination maxBufferedBytes both 256 MiB, batch.maxBytes 32 MiB, concurrency 4) a hanging
// destination's in-flight batches can now take up to 2 x 128 MiB = the whole budget, where they took
// half before; parking (checkBudget) only drops its open batches, never the in-flight rows or bodies.
// The body is real memory, so counting it is honest; the options are (a) accept it and document that a
// hanging destination can stall the others for requestTimeoutMs (lower per-destination
// maxBufferedBytes to bound it), (b) count bodies only in the destination's share (parking) and not
// in the total the source waits on, or (c) cap what one destination's in-flight rows + bodies may
// take of the total (e.g. its share <= maxBufferedBytes / number of destinations with traffic).
test('a hanging destination (d2) does not stop a healthy one (d1) from being read and inserted, when its in-flight rows alone are under the budget', { timeout: 60_000 }, async () => {
  const base = {
    destinations: [
      { id: 'd1', url: 'http://localhost:8123' },
      // Fixed in session 8: a request on the wire longer than this makes d2 stuck, and a stuck
      // destination is parked while the shared budget is full (delivery.md §9).
      { id: 'd2', url: 'http://localhost:8124', stalledAfterMs: 100 },
    ],
    teams: { map: { 1: 'd1', 2: 'd2' } },
    batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 },
    errorPolicy,
  };
  // The size of 10 rows (from 9 held before the batch is full: the rows are the same size) and of
  // their body, measured with an unlimited budget.
  let tenRows = 0;
  let body = 0;
  {
    const warehouse = new TokenWarehouse();
    const sink = sinkOf(warehouse, async (_n, inner, batch, signal) => {
      body = batch.bytes;
      return inner.insert(batch, signal);
    });
    const world = run(worldConfig({ ...base, batch: { ...base.batch, maxAgeMs: 60_000 } }), sink);
    try {
      const rows = Array.from({ length: 10 }, (_, i) => event(i, 2));
      await world.source.append(rows.slice(0, 9));
      await until(() => world.total() > 0, 'nine rows held');
      tenRows = (world.total() / 9) * 10;
      await world.source.append(rows.slice(9));
      await until(() => world.source.committed === 10n, 'measured');
    } finally {
      await world.pipeline.destroy();
    }
  }
  assert.ok(tenRows > 0 && body > 0);
  // d2's 10 rows alone are under the budget (d1's rows fit beside them: its batch is flushed when
  // the total goes over); d2's rows + body are over it.
  const config = worldConfig({ ...base, maxBufferedBytes: tenRows + Math.floor(body / 2) });
  const warehouse = new TokenWarehouse();
  let d2Sent = false;
  const sink = (d: DestinationConfig): Sink => {
    const inner = warehouse.sink(d);
    return {
      ...inner,
      insert: (batch, signal) => {
        if (d.id !== 'd2') return inner.insert(batch, signal);
        d2Sent = true;
        return hang(signal);
      },
    };
  };
  const world = run(config, sink);
  try {
    void world.source.append(Array.from({ length: 10 }, (_, i) => event(i, 2)));
    await until(() => d2Sent, "d2's insert is on the wire (and hangs)");
    void world.source.append(Array.from({ length: 10 }, (_, i) => event(10 + i, 1)));
    await until(() => warehouse.rows.filter((r) => r.destination === 'd1').length === 10, "d1's rows inserted while d2 hangs", 5_000);
  } finally {
    await world.pipeline.destroy();
  }
});

/** 10 rows of a 10-row batch and their body, measured with unlimited budgets (the rows are the same size). */
async function measure(): Promise<{ tenRows: number; body: number }> {
  let body = 0;
  const warehouse = new TokenWarehouse();
  const sink = sinkOf(warehouse, async (_n, inner, batch, signal) => {
    body = batch.bytes;
    return inner.insert(batch, signal);
  });
  const world = run(worldConfig({ teams: { map: { 1: 'd1' } }, batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 60_000 }, errorPolicy }), sink);
  try {
    const rows = Array.from({ length: 10 }, (_, i) => event(i, 1));
    await world.source.append(rows.slice(0, 9));
    await until(() => world.total() > 0, 'nine rows held');
    const tenRows = (world.total() / 9) * 10;
    await world.source.append(rows.slice(9));
    await until(() => world.source.committed === 10n, 'measured');
    return { tenRows, body };
  } finally {
    await world.pipeline.destroy();
  }
}

test('checkBudget: a healthy destination whose rows + body are over its own maxBufferedBytes is never parked', { timeout: 60_000 }, async () => {
  const { tenRows, body } = await measure();
  const config = worldConfig({
    destinations: [{ id: 'd1', url: 'http://localhost:8123', maxBufferedBytes: Math.ceil(tenRows + body / 2) }],
    teams: { map: { 1: 'd1' } },
    batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 },
    errorPolicy,
  });
  const warehouse = new TokenWarehouse();
  const settle: Array<() => void> = [];
  const sink = sinkOf(warehouse, async (_n, inner, batch, signal) => {
    await new Promise<void>((resolve) => settle.push(resolve));
    return inner.insert(batch, signal);
  });
  const world = run(config, sink);
  try {
    void world.source.append(Array.from({ length: 30 }, (_, i) => event(i, 1)));
    await until(() => settle.length === 1, 'the first insert is on the wire');
    assert.ok((world.pipeline.status().bufferedBytesByDestination.d1 ?? 0) > config.destinations[0]!.maxBufferedBytes, 'over its own budget');
    assert.deepEqual(world.pipeline.status().parkedDestinations, [], 'not failing: not parked');
    while (world.source.committed < 30n) {
      for (const s of settle.splice(0)) s();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expectExactlyOnce(warehouse, world.letters.written, 30);
  } finally {
    for (const s of settle.splice(0)) s();
    await world.pipeline.destroy();
  }
});

// Behaviour change, safe (a control): a destination that failed once is parked by its retry's body
// when its rows alone are under its own maxBufferedBytes (before 1c71d7e only rows counted). Rows of
// the same lane read while the retry is on the wire are parked; they are re-read
// once the destination recovers, and nothing is lost or inserted twice.
test(
  'checkBudget: a failing destination parked by its retry body (rows alone under its budget): rows of the same lane read while the retry is on the wire are parked and re-read; all rows land once',
  { timeout: 60_000 },
  async () => {
    const { tenRows, body } = await measure();
    const config = worldConfig({
      destinations: [{ id: 'd1', url: 'http://localhost:8123', maxBufferedBytes: Math.ceil(tenRows + body / 2) }],
      teams: { map: { 1: 'd1' } },
      batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 60_000 },
      errorPolicy,
    });
    const warehouse = new TokenWarehouse();
    let release: (() => void) | undefined;
    let parkedSeen = false;
    const r: { run?: Run } = {};
    const sink = sinkOf(warehouse, async (n, inner, batch, signal) => {
      if (n === 1) throw new WarehouseError(ErrorClasses.transientNetwork, 'connect ECONNRESET', undefined, undefined);
      if (n === 2) {
        parkedSeen = (r.run?.pipeline.status().parkedDestinations ?? []).includes('d1');
        await new Promise<void>((resolve) => (release = resolve));
      }
      return inner.insert(batch, signal);
    });
    const world = (r.run = run(config, sink));
    try {
      void world.source.append(Array.from({ length: 10 }, (_, i) => event(i, 1)));
      await until(() => release !== undefined, 'the retry is on the wire');
      // Rows of the same lane read while the retry is on the wire (parked: not batched, re-read later).
      void world.source.append(Array.from({ length: 5 }, (_, i) => event(10 + i, 1)));
      await new Promise((resolve) => setImmediate(resolve));
      release?.();
      await world.source.append(Array.from({ length: 5 }, (_, i) => event(15 + i, 1)));
      await until(() => world.pipeline.status().parkedDestinations.length === 0, 'recovered', 20_000);
      await until(() => warehouse.rows.length === 20, 'all 20 rows inserted', 20_000);
      await until(() => world.source.committed === 20n, 'committed to 20', 20_000);
      expectExactlyOnce(warehouse, world.letters.written, 20);
      assert.equal(parkedSeen, true, 'parked by the retry body (rows alone were under its budget)');
    } finally {
      release?.();
      await world.pipeline.destroy();
    }
  },
);
