// Review 2026-12-06e of d2805e0: the real Pipeline with a ledger store that commits positions in the
// ledger's write (commit-world.ts; the group's position is the FedSource's commits, so rewinds read
// from it), a token-deduplicating warehouse and dead letters. Checked (controls, all pass): the
// in-memory ledger pruned to a position whose write failed, then the source restarting from the
// group's older position — nothing is inserted twice, nothing is lost, the position is written once
// the store answers; the same with the process killed instead (a new process re-forms the batch from
// the stored, unpruned ledger); a graceful close writes the final position with the ledger and
// sends no plain commit. Findings (fixed since; the tests were `todo` until then): (1) a lane whose intent save was joined by a commit that
// failed only for its position part (the group coordinator is not known) has its batch held for
// retry.capMs (30 s by default), logged as an insert that keeps failing; (2) a close whose deadline
// fired (a destination hanging) commits nothing, not even a partition whose records are all resolved
// (the save signal is the hard stop; the plain path before d2805e0 likewise skipped its commit when a
// dirty ledger's save failed, so this is not new).
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Ledger } from '../../../src/ack/ledger.ts';
import type { Config, DestinationConfig } from '../../../src/config/load.ts';
import type { DeadLetterReason } from '../../../src/deadletter/types.ts';
import { AbortedError } from '../../../src/errors/inserter-error.ts';
import { PartitionState } from '../../../src/pipeline/partition-state.ts';
import { Pipeline } from '../../../src/pipeline/pipeline.ts';
import type { Sink, TableRef } from '../../../src/sink/types.ts';
import type { SourceRecord } from '../../../src/source/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { Metrics } from '../../../src/telemetry/metrics.ts';
import { expectExactlyOnce } from '../../helpers/exactly-once.ts';
import { event, FedSource, HeldDeadLetters, TokenWarehouse, TOPIC, until, worldConfig } from '../../helpers/pipeline-world.ts';
import { CommittingLedgerStore } from './commit-world.ts';

const fastRetries = { baseMs: 5, capMs: 20, pauseMs: 20 };
const errorPolicy = { defaults: { transient_network: fastRetries, unknown_server_error: fastRetries, row_data: { baseMs: 5, capMs: 20 } } };

interface Proc {
  readonly pipeline: Pipeline;
  readonly source: FedSource;
}

function start(config: Config, parts: { store: CommittingLedgerStore; sink: (d: DestinationConfig) => Sink; letters?: HeldDeadLetters; partitions?: number[] }): Proc {
  const source = new FedSource({ partitions: parts.partitions ?? [0] });
  parts.store.group = source;
  const pipeline = new Pipeline({
    config,
    source,
    sinkFactory: parts.sink,
    deadLetters: parts.letters ?? new HeldDeadLetters(),
    ledgers: parts.store,
    logger: createLogger(process.env.TEST_LOG ?? 'silent'),
    metrics: new Metrics(),
  });
  void pipeline.start();
  source.assign(pipeline, parts.partitions ?? [0]);
  return { pipeline, source };
}

/** Dead letters held until released, counting the writes begun. */
class CountingLetters extends HeldDeadLetters {
  calls = 0;
  override write(topic: string, record: SourceRecord, reason: DeadLetterReason, signal: AbortSignal): Promise<void> {
    this.calls++;
    return super.write(topic, record, reason, signal);
  }
}

/** A record whose value is not JSON: dead-lettered by every route. */
function garbage(offset: number, partition = 0): SourceRecord {
  return { ...event(offset, 8), partition, value: Buffer.from('not json') };
}

/**
 * Two routes of the topic, one table each, in d1 (two lanes of partition 0: two intent saves that
 * can share a queued ledger write), batches of one row, inserts retried after `capMs` when a ledger
 * save fails.
 */
function twoRoutes(capMs: number): Config {
  return worldConfig({
    teams: { map: { 8: 'd1' } },
    routes: [
      { name: 'events', topic: TOPIC, table: 'events', createTable: { enabled: false } },
      { name: 'events2', topic: TOPIC, table: 'events2', createTable: { enabled: false } },
    ],
    batch: { maxRows: 1, maxBytes: 1 << 24, maxAgeMs: 20 },
    retry: { baseMs: 5, factor: 2, capMs },
    errorPolicy,
  });
}

/** Records below this are dead-lettered: one whole ack chunk (PartitionTracker: the watermark moves a chunk at a time). */
const CHUNK = 512;

/**
 * Lane events's intent save (record CHUNK) in flight, held in the store; then the chunk of records
 * before it resolves (their dead letters are acknowledged), so the committer's next write carries
 * position CHUNK — queued behind it; then lane events2's intent joins that queued write. Returns
 * once both wait on it.
 */
async function laneJoinsCommit(t: TestContext, capMs: number): Promise<{ proc: Proc; store: CommittingLedgerStore; warehouse: TokenWarehouse; letters: HeldDeadLetters }> {
  // Since session 9 every write carries the position, taken when the write starts (no prune before it is queued).
  const position = t.mock.method(PartitionState.prototype, 'positionToCommit');
  const add = t.mock.method(Ledger.prototype, 'add');
  const store = new CommittingLedgerStore();
  const warehouse = new TokenWarehouse();
  const letters = new CountingLetters();
  letters.hold = true;
  let openSecond!: () => void;
  const second = new Promise<void>((resolve) => (openSecond = resolve));
  const sink = (d: DestinationConfig): Sink => {
    const inner = warehouse.sink(d);
    return {
      ...inner,
      describe: async (table: TableRef) => {
        if (table.table === 'events2') await second;
        return inner.describe(table);
      },
    };
  };
  store.holding = true;
  const proc = start(twoRoutes(capMs), { store, sink, letters });
  try {
    await proc.source.append([...Array.from({ length: CHUNK }, (_, i) => garbage(i)), event(CHUNK, 8)]);
    await until(() => store.heldCount === 1 && add.mock.callCount() === 1, "lane events's intent save in flight");
    await until(() => letters.calls === 2 * CHUNK, 'every dead letter being written');
    letters.release(); // the first chunk resolved in both routes: position CHUNK is committable
    await until(() => position.mock.calls.some((c) => c.result?.offset === BigInt(CHUNK)), `the committer saw position ${CHUNK} (its write queued)`);
    openSecond();
    await until(() => add.mock.callCount() === 2, "lane events2's intent joined the queued write");
  } catch (error) {
    store.holding = false;
    store.releaseHeld();
    await proc.pipeline.destroy();
    throw error;
  }
  return { proc, store, warehouse, letters };
}

test('control: a lane intent save shared with a commit that lands — both rows in promptly, the position with the intent', async (t) => {
  const { proc, store, warehouse } = await laneJoinsCommit(t, 60_000);
  try {
    store.holding = false;
    store.releaseHeld();
    await until(() => warehouse.rows.length === 2, 'both rows in', 3_000);
    await until(() => proc.source.committed === BigInt(CHUNK + 1), 'committed past the row', 3_000);
    const shared = store.landed.find((w) => w.kind === 'commit');
    assert.equal(shared?.offset, BigInt(CHUNK), 'the first position written is the chunk');
    assert.deepEqual(shared?.ledger.intents.map((i) => i.route).sort(), ['events', 'events2'], "it was written with lane events2's intent");
    assert.deepEqual(
      warehouse.rows.map((r) => r.uuid),
      [`u${CHUNK}`, `u${CHUNK}`],
    );
  } finally {
    await proc.pipeline.destroy();
  }
});

test('the group coordinator unknown for one commit: the lane whose intent shared that write is not held for retry.capMs', async (t) => {
  const { proc, store, warehouse } = await laneJoinsCommit(t, 60_000);
  try {
    store.coordinatorKnown = false; // KafkaLedgerStore#commit: groupCoordinator() is null
    store.holding = false;
    store.releaseHeld();
    await until(() => store.refused.some((r) => r.kind === 'commit'), 'the shared write refused');
    store.coordinatorKnown = true; // found again at once
    await until(() => warehouse.rows.length === 2, 'both rows in', 3_000);
    await until(() => proc.source.committed === BigInt(CHUNK + 1), 'committed past the row', 3_000);
  } finally {
    await proc.pipeline.destroy();
  }
});

test('pruned before a write that fails, then the source restarts from the older group position: nothing twice, nothing lost', async () => {
  const store = new CommittingLedgerStore();
  const warehouse = new TokenWarehouse();
  // One batch of the 10 records: since session 9 a batch taken for delivery ends its chunk and every
  // ledger write carries the position, so with two batches the second one's intent would carry
  // position 5, and this store fails every write that carries one (the ledger not written).
  const config = worldConfig({ teams: { map: { 8: 'd1' } }, batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 }, errorPolicy });
  store.failCommits = Number.MAX_SAFE_INTEGER;
  const proc = start(config, { store, sink: (d) => warehouse.sink(d) });
  try {
    await proc.source.append(Array.from({ length: 10 }, (_, i) => event(i, 8)));
    await until(() => store.refused.some((r) => r.kind === 'commit' && r.offset === 10n), 'a commit of 10 refused');
    assert.equal(proc.source.committed, -1n, 'the group has nothing');
    // The source restarts from the group's position (KafkaSource#restart: onReset after a broker fault).
    await proc.source.rewind(() => proc.pipeline.onReset());
    await until(() => proc.source.caughtUp, 're-read');
    store.failCommits = 0;
    await until(() => proc.source.committed === 10n, 'committed 10');
    expectExactlyOnce(warehouse, [], 10);
    assert.deepEqual(store.committedOffsets(), [10n], 'written once, never below');
  } finally {
    await proc.pipeline.destroy();
  }
});

test('pruned in memory before a write that fails, then killed: a new process re-forms from the stored ledger, nothing twice', async () => {
  const store = new CommittingLedgerStore();
  const warehouse = new TokenWarehouse();
  // One batch of the 10 records: since session 9 a batch taken for delivery ends its chunk and every
  // ledger write carries the position, so with two batches the second one's intent would carry
  // position 5, and this store fails every write that carries one (the ledger not written).
  const config = worldConfig({ teams: { map: { 8: 'd1' } }, batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 }, errorPolicy });
  store.failCommits = Number.MAX_SAFE_INTEGER;
  const a = start(config, { store, sink: (d) => warehouse.sink(d) });
  try {
    await a.source.append(Array.from({ length: 10 }, (_, i) => event(i, 8)));
    await until(() => store.refused.some((r) => r.kind === 'commit' && r.offset === 10n), 'a commit of 10 refused');
  } finally {
    await a.pipeline.destroy();
  }
  store.failCommits = 0;
  const b = start(config, { store, sink: (d) => warehouse.sink(d) });
  try {
    await b.source.append(Array.from({ length: 10 }, (_, i) => event(i, 8)));
    await until(() => b.source.committed === 10n, 'B committed 10');
    expectExactlyOnce(warehouse, [], 10);
  } finally {
    await b.pipeline.destroy();
  }
});

test('a graceful close writes the final position with the ledger, no plain commit', async () => {
  const store = new CommittingLedgerStore();
  const warehouse = new TokenWarehouse();
  // Commits only at close: the interval never fires during the test.
  const config = worldConfig({ teams: { map: { 8: 'd1' } }, commitIntervalMs: 3_600_000, batch: { maxRows: 100, maxBytes: 1 << 24, maxAgeMs: 20 }, errorPolicy });
  const proc = start(config, { store, sink: (d) => warehouse.sink(d) });
  const plain: unknown[] = [];
  const commitPlain = proc.source.commit.bind(proc.source);
  proc.source.commit = async (positions) => {
    plain.push(...positions);
    await commitPlain(positions);
  };
  try {
    await proc.source.append(Array.from({ length: 7 }, (_, i) => event(i, 8)));
    await until(() => warehouse.rows.length === 7, 'rows in');
  } finally {
    await proc.pipeline.close();
  }
  assert.deepEqual(store.committedOffsets(), [7n]);
  assert.equal(store.landed.at(-1)?.ledger.resolvedBelow, '7', 'the last write is the commit, pruned to it');
  assert.deepEqual(plain, []);
});

test('a close whose deadline fired still commits a partition whose records are all resolved', async () => {
  const store = new CommittingLedgerStore();
  const warehouse = new TokenWarehouse();
  const config = worldConfig({ teams: { map: { 8: 'd1' } }, commitIntervalMs: 3_600_000, batch: { maxRows: 100, maxBytes: 1 << 24, maxAgeMs: 20 }, errorPolicy });
  // Partition 1's inserts hang (until the hard stop); partition 0's land.
  const sink = (d: DestinationConfig): Sink => {
    const inner = warehouse.sink(d);
    return {
      ...inner,
      insert: (batch, signal) => {
        if (hangsFor(batch.body)) {
          return new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(new AbortedError('insert aborted')), { once: true }));
        }
        return inner.insert(batch, signal);
      },
    };
  };
  const proc = start(config, { store, sink, partitions: [0, 1] });
  try {
    await proc.source.append([
      ...Array.from({ length: 5 }, (_, i) => event(i, 8)),
      ...Array.from({ length: 3 }, (_, i) => ({ ...event(i, 8), partition: 1, value: Buffer.from(JSON.stringify({ team_id: 8, uuid: `p1-${i}` })) })),
    ]);
    await until(() => warehouse.rows.length === 5, 'partition 0 in');
    await proc.pipeline.close(200);
    assert.deepEqual(store.committedOffsets(0), [5n], "partition 0's final position");
  } finally {
    await proc.pipeline.destroy();
  }
});

/** Whether an insert's body holds a row of partition 1 (uuids p1-…). */
function hangsFor(body: readonly Buffer[]): boolean {
  return Buffer.concat(body).toString('utf8').includes('"p1-');
}
