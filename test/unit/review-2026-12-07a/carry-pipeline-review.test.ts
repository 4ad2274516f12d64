// Review 2026-12-07a of b644759: the real Pipeline with a ledger store that commits positions
// (carry-world.ts WatchfulStore: review-e's CommittingLedgerStore checking, for every position it
// lands, that no record below it is unresolved — neither in the warehouse nor dead-lettered — and
// that positions only go forward). All controls (pass):
//   - a paused team's rows parked between two batches of another team: the intents of the running
//     lane carry positions up to the parked row, never past it; killed then, a new process (the
//     pause lifted) inserts everything once;
//   - two partitions, one idle after a burst while the other keeps writing intents: the idle one's
//     last position is written by the interval on its own (~1.5 intervals), real timers;
//   - a close whose final commit fails: close() ends, nothing is marked committed that was not
//     stored, and the next process commits the log end with everything inserted once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SourceRecord } from '../../../src/source/types.ts';
import { expectExactlyOnce } from '../../helpers/exactly-once.ts';
import { event, FedSource, HeldDeadLetters, TokenWarehouse, until } from '../../helpers/pipeline-world.ts';
import { carryConfig, events, landed, startProc, WatchfulStore } from './carry-world.ts';

const twoDestinations = {
  destinations: [
    { id: 'd1', url: 'http://localhost:8123' },
    { id: 'd2', url: 'http://localhost:8124' },
  ],
  teams: { map: { 8: 'd1', 9: 'd2' } },
};

test("control: a paused team's parked row between another team's batches: intents carry positions up to it, never past; killed, the next process inserts everything once", async () => {
  const log: SourceRecord[] = [];
  const warehouse = new TokenWarehouse();
  const letters = new HeldDeadLetters();
  const store = new WatchfulStore(log, warehouse, letters);
  const config = carryConfig(5, 3_600_000, twoDestinations);
  const a = startProc(config, { ledgers: store, warehouse });
  store.group = a.source;
  a.pipeline.setPauses([{ id: 'p', scope: { kind: 'team', team: 9 }, reason: 'migration', by: 'review', at: Date.now() }]);
  try {
    const stages = [events(0, 5), [event(5, 9), ...events(6, 11)], events(11, 16)];
    let rows = 0;
    for (const stage of stages) {
      log.push(...stage);
      await a.source.append(stage);
      rows += stage.filter((r) => r.value?.includes('"team_id":8') === true).length;
      await landed(a, warehouse, rows);
    }
    assert.deepEqual(store.committedOffsets(), [5n], 'the intents of 6-10 and 11-15 carried 5: the parked row holds the position');
    assert.equal(a.pipeline.status().partitions[0]?.committable, '5');
  } finally {
    await a.pipeline.destroy();
  }
  const source = new FedSource();
  source.commits.push(...a.source.commits);
  const b = startProc(config, { ledgers: store, warehouse, source });
  store.group = b.source;
  try {
    await b.source.rewind(() => undefined);
    await b.source.append(log);
    await until(() => warehouse.rows.length === 16, 'every row in');
  } finally {
    await b.pipeline.close();
  }
  expectExactlyOnce(warehouse, letters.written, 16);
  assert.deepEqual(
    warehouse.rows.filter((r) => r.destination === 'd2').map((r) => r.uuid),
    ['u5'],
  );
  assert.deepEqual(store.violations, []);
  assert.ok(store.forwardOnly(), `positions: ${store.committedOffsets().join(',')}`);
  assert.equal(store.committedOffsets().at(-1), 16n);
});

test('control: a partition idle after a burst while another keeps writing intents: its last position is written by the interval within ~1.5 intervals', async () => {
  const log: SourceRecord[] = [];
  const warehouse = new TokenWarehouse();
  const letters = new HeldDeadLetters();
  const store = new WatchfulStore(log, warehouse, letters);
  const interval = 300;
  const proc = startProc(carryConfig(5, interval), { ledgers: store, warehouse, partitions: [0, 1] });
  store.group = proc.source;
  const p1 = (from: number, to: number): SourceRecord[] => events(from, to).map((r) => ({ ...r, partition: 1, value: Buffer.from(JSON.stringify({ team_id: 8, uuid: `p1-${r.offset}` })) }));
  let busy = true;
  const feeding = (async () => {
    for (let from = 0; busy; from += 5) {
      const batch = p1(from, from + 5);
      log.push(...batch);
      await proc.source.append(batch);
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
  })();
  try {
    log.push(...events(0, 10));
    await proc.source.append(events(0, 10));
    await until(() => warehouse.rows.filter((r) => r.uuid.startsWith('u')).length === 10, 'partition 0 in');
    const resolvedAt = Date.now();
    await until(() => store.committedOffsets(0).at(-1) === 10n, 'partition 0 committed 10', 5_000);
    const took = Date.now() - resolvedAt;
    assert.ok(took <= 2 * interval + 300, `committed ${took} ms after its rows landed (interval ${interval} ms)`);
    assert.ok(store.committedOffsets(1).length > 0, 'partition 1 committed by its own writes meanwhile');
  } finally {
    busy = false;
    await feeding;
    await proc.pipeline.close();
  }
  assert.deepEqual(store.violations, []);
  assert.ok(store.forwardOnly());
});

test('control: a close whose final commit fails ends, marks nothing committed that was not stored; the next process commits the log end, everything once', async () => {
  const log = events(0, 10);
  const warehouse = new TokenWarehouse();
  const letters = new HeldDeadLetters();
  const store = new WatchfulStore(log, warehouse, letters);
  const config = carryConfig(5, 3_600_000); // only writes and the close commit
  const a = startProc(config, { ledgers: store, warehouse });
  store.group = a.source;
  try {
    await a.source.append(log.slice(0, 5));
    await landed(a, warehouse, 5);
    await a.source.append(log.slice(5));
    await landed(a, warehouse, 10);
    store.failCommits = Number.MAX_SAFE_INTEGER; // from now on (earlier, finding 1 holds the lane: carry-state-review)
  } finally {
    await a.pipeline.close(1_000);
  }
  const status = a.pipeline.status().partitions[0];
  assert.deepEqual(store.committedOffsets(), [5n], "the second batch's intent carried 5; the final 10 was refused");
  assert.equal(status?.committed, '5', 'nothing marked that was not stored');
  assert.equal(status?.committable, '10');
  store.failCommits = 0;
  const source = new FedSource();
  const b = startProc(config, { ledgers: store, warehouse, source });
  store.group = b.source;
  try {
    await b.source.append(log);
    await until(() => b.pipeline.status().partitions[0]?.committable === '10', 'B resolved everything');
  } finally {
    await b.pipeline.close();
  }
  assert.equal(store.committedOffsets().at(-1), 10n, "B's close committed the log end");
  expectExactlyOnce(warehouse, [], 10);
  assert.deepEqual(store.violations, []);
});
