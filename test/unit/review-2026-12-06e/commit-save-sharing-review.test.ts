// Review 2026-12-06e of d2805e0: the Committer (src/ack/committer.ts) and PartitionState.saveLedger
// (src/pipeline/partition-state.ts) driven directly with a ledger store that commits positions in
// the ledger's write (commit-world.ts). A save queued and not started yet takes the commit's
// position, so a lane's intent save and a commit can share one write. Checked: the position is
// written with the ledger pruned to it; `state.committed` moves only once the write landed; a
// failed write leaves it where it was and the next interval writes the position again; a partition
// revoked before its queued write starts writes nothing; a rewind between taking the position and
// the write does not change it; nothing is committed before this ownership resolved a record. One
// finding, fixed since (the test was `todo` until then): a lane waiting on a save that a
// commit joined fails when only the position part fails (the group coordinator is not known:
// KafkaLedgerStore#commit throws INSERTER_SOURCE_COMMIT_FAILED before anything is sent), although
// the lane needed the ledger alone (lane-delivery.ts then holds its batch for retry.capMs).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ledger } from '../../../src/ack/ledger.ts';
import { AckSet } from '../../../src/ack/partition-tracker.ts';
import { Committer } from '../../../src/ack/committer.ts';
import { PartitionState } from '../../../src/pipeline/partition-state.ts';
import { PipelineRuntime } from '../../../src/pipeline/runtime.ts';
import type { Source } from '../../../src/source/types.ts';
import { partitionKey } from '../../../src/source/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { Metrics } from '../../../src/telemetry/metrics.ts';
import { TOPIC, until, worldConfig } from '../../helpers/pipeline-world.ts';
import { CommittingLedgerStore } from './commit-world.ts';

interface Rig {
  readonly rt: PipelineRuntime;
  readonly state: PartitionState;
  readonly store: CommittingLedgerStore;
  readonly committer: Committer;
  /** Plain commits through the source: there must be none with a store that commits positions. */
  readonly plain: unknown[];
  /** A save the way a lane makes one (its intent, a split, a decision): no position. */
  laneSave(): Promise<unknown>;
}

function rig(): Rig {
  const plain: unknown[] = [];
  const source: Source = {
    run: () => Promise.resolve(),
    commit: (positions) => {
      plain.push(...positions);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
  const store = new CommittingLedgerStore();
  const rt = new PipelineRuntime({ config: worldConfig(), logger: createLogger('silent'), metrics: new Metrics(), source, ledgers: store });
  const state = new PartitionState({ topic: TOPIC, partition: 0 }, rt.hardStop.signal);
  state.ledger = Ledger.fromJson(undefined);
  rt.partitions.set(partitionKey(TOPIC, 0), state);
  // Like Ownership.saveForCommit (a fenced write would make the partition be taken over again).
  const committer = new Committer(rt, (s) => s.saveLedger(store, rt.hardStop.signal));
  return { rt, state, store, committer, plain, laneSave: () => state.saveLedger(store, rt.hardStop.signal) };
}

function resolveAll(state: PartitionState, offsets: readonly bigint[]): void {
  for (const offset of offsets) {
    const acks = new AckSet();
    acks.add(state.tracker.track(offset, 0));
    acks.resolve();
  }
}

/** A save in flight (held in the store), then a lane's save queued behind it: the one a commit joins. */
async function inFlightThenQueued(r: Rig): Promise<{ first: Promise<unknown>; queued: Promise<unknown> }> {
  r.store.holding = true;
  r.state.ledger?.markResolved('events', 0n); // something to save
  const first = r.laneSave();
  await until(() => r.store.heldCount === 1, 'the first save in flight');
  r.state.ledger?.markResolved('events', 1n);
  const queued = r.laneSave();
  return { first, queued };
}

test('a commit joining a queued lane save: the write carries the position and the pruned ledger; committed moves only once it landed', async () => {
  const r = rig();
  const { first, queued } = await inFlightThenQueued(r);
  resolveAll(r.state, [10n, 11n, 12n]);
  const committing = r.committer.commit();
  assert.equal(r.state.committed, -1n, 'nothing is committed while the write waits');
  r.store.holding = false;
  r.store.releaseHeld();
  await Promise.all([first, queued, committing]);
  assert.deepEqual(
    r.store.landed.map((w) => [w.kind, w.offset, w.ledger.resolvedBelow]),
    [
      ['save', undefined, undefined],
      ['commit', 13n, '13'],
    ],
    'the queued lane save became the commit: one write, the position with a ledger pruned to it',
  );
  assert.equal(r.state.committed, 13n);
  assert.deepEqual(r.plain, [], 'no plain commit');
});

test('a commit write that fails leaves committed where it was; the next interval writes the same position again', async () => {
  const r = rig();
  resolveAll(r.state, [10n, 11n]);
  r.store.failCommits = 1;
  await r.committer.commit();
  assert.equal(r.state.committed, -1n, 'not committed: the write failed');
  assert.equal(r.state.ledger?.resolvedBelow, 12n, 'the ledger in memory was pruned before the write (it says only what is resolved)');
  assert.equal(r.state.ledger?.dirty, true, 'marked dirty again: the next save writes it');
  await r.committer.commit();
  assert.deepEqual(r.store.committedOffsets(), [12n]);
  assert.equal(r.state.committed, 12n);
  assert.deepEqual(r.plain, []);
});

test('revoked after the position was taken, before its queued write started: nothing is written, committed does not move', async () => {
  const r = rig();
  const { first, queued } = await inFlightThenQueued(r);
  resolveAll(r.state, [10n]);
  const committing = r.committer.commit();
  r.state.revoked = true; // Ownership.revoked / ledgerLost: the new owner decides now
  r.store.holding = false;
  r.store.releaseHeld();
  await Promise.all([first, queued, committing]);
  assert.deepEqual(
    r.store.landed.map((w) => w.kind),
    ['save'],
    'only the write already in flight landed',
  );
  assert.equal(r.state.committed, -1n);
});

test('a rewind between taking the position and its write: the position written is the one taken, everything below it resolved', async () => {
  const r = rig();
  const { first, queued } = await inFlightThenQueued(r);
  resolveAll(r.state, [10n, 11n]);
  const committing = r.committer.commit();
  r.state.reset(() => undefined); // a rewind: resolvedFloor = 12, the tracker starts again
  const again = new AckSet();
  again.add(r.state.tracker.track(5n, 0)); // read again from an older group position, unresolved
  r.store.holding = false;
  r.store.releaseHeld();
  await Promise.all([first, queued, committing]);
  assert.deepEqual(r.store.committedOffsets(), [12n]);
  await r.committer.commit();
  assert.deepEqual(r.store.committedOffsets(), [12n], 'nothing new to commit (never 5 or 6: below what is committed)');
  assert.equal(r.state.committed, 12n);
});

test('with the ledger, a partition read from the group position with nothing resolved commits nothing (not the position it began at)', async () => {
  const r = rig();
  const pending = new AckSet();
  pending.add(r.state.tracker.track(4792n, 0));
  await r.committer.commit();
  assert.deepEqual(r.store.committedOffsets(), [], 'nothing this ownership resolved');
  pending.resolve();
  await r.committer.commit();
  assert.deepEqual(r.store.committedOffsets(), [4793n]);
});

test('the group coordinator unknown: a commit failing before anything is sent leaves a lane save it joined unharmed', async () => {
  const r = rig();
  const { first, queued } = await inFlightThenQueued(r);
  resolveAll(r.state, [10n]);
  const committing = r.committer.commit();
  r.store.coordinatorKnown = false; // KafkaSource.groupCoordinator() is null (e.g. after a network error on the consumer's coordinator connection)
  r.store.holding = false;
  r.store.releaseHeld();
  await first;
  await committing;
  // The lane only needed its intent durable: the ledger alone can be written while the coordinator
  // is unknown. Today the shared write is refused whole and the lane's save rejects.
  const outcome = await queued.then(
    () => 'saved',
    (error: unknown) => `rejected: ${(error as { code?: string }).code}`,
  );
  assert.equal(outcome, 'saved');
});
