// The committer commits only positions the process resolved up to. A partition read again from the
// group's position (a new ownership, or a process fenced off its ledger that still holds the
// partition while a rebalance runs: chaos test seed 1738476044) must not commit the position it
// began reading at: the group's position may have moved on under a newer owner since, and Kafka
// takes a commit from a member of the current generation even while a rebalance is prepared.
import assert from 'node:assert/strict';
import { test } from 'node:test';
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
  return { committer: new Committer(rt, () => Promise.resolve()), state, commits };
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
