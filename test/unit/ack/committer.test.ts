// The committer commits only positions the process resolved up to. A partition read again from the
// group's position (a new ownership, or a process fenced off its ledger that still holds the
// partition while a rebalance runs: chaos test seed 1738476044) must not commit the position it
// began reading at: the group's position may have moved on under a newer owner since, and Kafka
// takes a commit from a member of the current generation even while a rebalance is prepared.
// With a ledger store that commits positions in the ledger's transaction, a position goes only there
// (a fenced owner can never move it: chaos seed 956976370), and never below the ledger's resolvedBelow.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ledger, type LedgerJson, type LedgerStore } from '../../../src/ack/ledger.ts';
import { AckSet } from '../../../src/ack/partition-tracker.ts';
import { Committer } from '../../../src/ack/committer.ts';
import { PartitionState } from '../../../src/pipeline/partition-state.ts';
import { PipelineRuntime } from '../../../src/pipeline/runtime.ts';
import type { CommitPosition, Source } from '../../../src/source/types.ts';
import { partitionKey } from '../../../src/source/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { Metrics } from '../../../src/telemetry/metrics.ts';
import { TOPIC, worldConfig } from '../../helpers/pipeline-world.ts';

function world(): { committer: Committer; state: PartitionState; commits: CommitPosition[][] } {
  const commits: CommitPosition[][] = [];
  const source: Source = {
    run: () => Promise.resolve(),
    commit: (positions) => {
      commits.push([...positions]);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
  const rt = new PipelineRuntime({ config: worldConfig(), logger: createLogger('silent'), metrics: new Metrics(), source, ledgers: undefined });
  const state = new PartitionState({ topic: TOPIC, partition: 0 }, rt.hardStop.signal);
  rt.partitions.set(partitionKey(TOPIC, 0), state);
  return { committer: new Committer(rt, () => Promise.resolve(undefined)), state, commits };
}

test('a partition read from position 4792, nothing resolved yet: nothing is committed (not 4792)', async () => {
  const { committer, state, commits } = world();
  const acks = new AckSet();
  acks.add(state.tracker.track(4792n, 0));
  await committer.commit();
  assert.equal(commits.length, 0, 'the position reading began at is not committed');
  acks.resolve();
  await committer.commit();
  assert.deepEqual(
    commits.map((c) => c.map((p) => p.offset)),
    [[4793n]],
    'committed once the record is resolved',
  );
});

test('records resolved as they were read: the position past them is committed', async () => {
  const { committer, state, commits } = world();
  for (const offset of [10n, 11n, 12n]) {
    const acks = new AckSet();
    acks.add(state.tracker.track(offset, 0));
    acks.resolve();
  }
  await committer.commit();
  assert.deepEqual(
    commits.map((c) => c.map((p) => p.offset)),
    [[13n]],
  );
});

test('after a rewind, the watermark the rewind reset is committed even though nothing new is resolved', async () => {
  const { committer, state, commits } = world();
  const acks = new AckSet();
  acks.add(state.tracker.track(20n, 0));
  acks.resolve();
  state.reset(() => undefined); // resolvedFloor = 21
  const again = new AckSet();
  again.add(state.tracker.track(15n, 0)); // read again from an older group position, unresolved
  await committer.commit();
  assert.deepEqual(
    commits.map((c) => c.map((p) => p.offset)),
    [[21n]],
  );
});

/** A ledger store that commits positions itself (like Kafka's, in the ledger's transaction), recording what it stored. */
class CommittingStore implements LedgerStore {
  readonly commits: Array<{ offset: bigint; ledger: LedgerJson }> = [];
  readonly saves: LedgerJson[] = [];
  fenced = false;
  /** Writes tried (saves and commits, refused or not). */
  attempts = 0;
  /** The position cannot be committed now (the group coordinator unknown): the ledger is saved alone. */
  coordinatorUnknown = false;
  load(): Promise<LedgerJson | undefined> {
    return Promise.resolve(undefined);
  }
  save(_topic: string, _partition: number, ledger: LedgerJson): Promise<void> {
    this.attempts++;
    if (this.fenced) return Promise.reject(Object.assign(new Error('fenced'), { code: 'INSERTER_LEDGER_FENCED' }));
    this.saves.push(ledger);
    return Promise.resolve();
  }
  commit(position: CommitPosition, ledger: LedgerJson): Promise<boolean> {
    if (this.coordinatorUnknown) return this.save('', 0, ledger).then(() => false);
    this.attempts++;
    if (this.fenced) return Promise.reject(Object.assign(new Error('fenced'), { code: 'INSERTER_LEDGER_FENCED' }));
    this.commits.push({ offset: position.offset, ledger });
    return Promise.resolve(true);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Half of worldConfig()'s commitIntervalMs: a partition written within it is left to its next write. */
const HALF_INTERVAL = worldConfig().commitIntervalMs / 2;

function ledgerWorld(stored?: LedgerJson): { committer: Committer; state: PartitionState; store: CommittingStore; plain: CommitPosition[][] } {
  const plain: CommitPosition[][] = [];
  const source: Source = {
    run: () => Promise.resolve(),
    commit: (positions) => {
      plain.push([...positions]);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
  const store = new CommittingStore();
  const rt = new PipelineRuntime({ config: worldConfig(), logger: createLogger('silent'), metrics: new Metrics(), source, ledgers: store });
  const state = new PartitionState({ topic: TOPIC, partition: 0 }, rt.hardStop.signal);
  state.ledger = Ledger.fromJson(stored);
  rt.partitions.set(partitionKey(TOPIC, 0), state);
  return { committer: new Committer(rt, (s) => s.saveLedger(store, rt.hardStop.signal)), state, store, plain };
}

function resolveAll(state: PartitionState, offsets: readonly bigint[]): void {
  for (const offset of offsets) {
    const acks = new AckSet();
    acks.add(state.tracker.track(offset, 0));
    acks.resolve();
  }
}

test('with a store that commits positions, the position goes in the ledger write (pruned to it), never through the source', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const { committer, state, store, plain } = ledgerWorld();
  resolveAll(state, [10n, 11n, 12n]);
  await committer.commit();
  assert.deepEqual(
    store.commits.map((c) => [c.offset, c.ledger.resolvedBelow]),
    [[13n, '13']],
    'the stored ledger says resolvedBelow = the position committed with it',
  );
  assert.equal(state.committed, 13n);
  // Nothing new for longer than the re-assert interval of plain commits: nothing is committed again
  // (a re-commit of an old position could only move a newer owner's back).
  t.mock.timers.tick(60_000);
  await committer.commit();
  assert.equal(store.commits.length, 1);
  assert.deepEqual(plain, [], 'no plain commit');
});

test('a fenced ledger write commits nothing: the position stays where this owner last committed it', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const { committer, state, store } = ledgerWorld();
  resolveAll(state, [10n]);
  await committer.commit();
  store.fenced = true;
  resolveAll(state, [11n, 12n]);
  t.mock.timers.tick(HALF_INTERVAL);
  await committer.commit();
  assert.equal(store.attempts, 2, 'the second write was tried');
  assert.deepEqual(
    store.commits.map((c) => c.offset),
    [11n],
  );
  assert.equal(state.committed, 11n);
});

test("a stream that starts below the loaded ledger's resolvedBelow commits that position, never below it", async () => {
  // The previous owner committed 5000 in its last ledger transaction; this owner's stream fetched
  // the group's position before that transaction ended and reads from 4000 (skipped as resolved).
  const { committer, state, store } = ledgerWorld({ v: 2, resolvedBelow: '5000', intents: [] });
  resolveAll(state, [4000n, 4001n]);
  await committer.commit();
  assert.deepEqual(
    store.commits.map((c) => c.offset),
    [5000n],
  );
});

test("every ledger write carries the position (a lane's intent commits what the batches before it resolved); the interval leaves a partition written lately to its next write, a final commit does not", async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const { committer, state, store, plain } = ledgerWorld();
  resolveAll(state, [10n, 11n]);
  await state.saveLedger(store, new AbortController().signal); // a lane's intent write
  assert.deepEqual(
    store.commits.map((c) => [c.offset, c.ledger.resolvedBelow]),
    [[12n, '12']],
    'the position went with it, the ledger pruned to it',
  );
  assert.equal(state.committed, 12n);
  resolveAll(state, [12n]);
  await committer.commit();
  assert.equal(store.attempts, 1, 'written lately: the interval writes nothing');
  t.mock.timers.tick(HALF_INTERVAL);
  await committer.commit();
  assert.deepEqual(
    store.commits.map((c) => c.offset),
    [12n, 13n],
    'half an interval without a write: the interval writes it',
  );
  resolveAll(state, [13n]);
  await committer.commit(true);
  assert.deepEqual(
    store.commits.map((c) => c.offset),
    [12n, 13n, 14n],
    'a final commit writes what moved, written lately or not',
  );
  assert.deepEqual(plain, []);
});

test('a store that cannot commit the position now saves the ledger alone: the position stays uncommitted and goes with the next write', async () => {
  const { committer, state, store } = ledgerWorld();
  store.coordinatorUnknown = true;
  resolveAll(state, [10n, 11n]);
  await committer.commit();
  assert.equal(store.commits.length, 0);
  assert.equal(store.saves.length, 1, 'the ledger was saved alone');
  assert.equal(state.committed, -1n, 'not marked committed');
  store.coordinatorUnknown = false;
  await committer.commit();
  assert.deepEqual(
    store.commits.map((c) => c.offset),
    [12n],
  );
  assert.equal(state.committed, 12n);
});
