// Finding 2: a failed listCommittedOffsets (at assignment or in rewind) is swallowed
// (`.catch(() => undefined)`) and #resolvePositions then starts the partition at the LOG START:
// everything already committed is delivered again as new. The stream (KafkaSource) destroys itself
// when committed offsets cannot be read, and restarts with onReset from the committed positions.
// Finding 3: rewind() reads the committed positions of the partitions owned when it was CALLED, and
// writes them after its await: a partition revoked and assigned again meanwhile gets the rewind's
// older committed position (instead of the one read at its new assignment), and repairPosition
// compares with it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import { FakeKafka, deferred, options, recorder, until } from './fake.ts';

async function teardown(kafka: FakeKafka, source: KafkaFetchSource, stop: AbortController, running: Promise<void>): Promise<void> {
  stop.abort();
  await until(() => true, '');
  for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response([]));
  await running.catch(() => undefined);
  await source.close();
  kafka.restore();
}

test('a transient failure reading the committed offset at assignment does not move the partition to the log start', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.committed.set(0, 100n);
  kafka.committed.set(1, 100n);
  let calls = 0;
  kafka.committedHook = async (p) => {
    calls++;
    if (calls === 1) throw Object.assign(new Error('NOT_COORDINATOR'), { canRetry: true });
    return kafka.committed.get(p);
  };
  const source = new KafkaFetchSource(options());
  const stop = new AbortController();
  const running = source.run(recorder(), stop.signal);
  try {
    // Each partition is resolved on its own: the one whose read failed joins a later fetch.
    const seen = new Map<number, bigint>();
    while (seen.size < 2) {
      const f = await kafka.nextFetch();
      for (const [p, o] of FakeKafka.offsets(f)) if (!seen.has(p)) seen.set(p, o);
      f.resolve(FakeKafka.response([]));
    }
    assert.deepEqual(
      [...seen].sort(([a], [b]) => a - b),
      [
        [0, 100n],
        [1, 100n],
      ],
      'read from the committed positions',
    );
  } finally {
    await teardown(kafka, source, stop, running);
  }
});

test('a transient failure reading the committed offset in rewind() does not rewind to the log start', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.committed.set(0, 100n);
  kafka.committed.set(1, 100n);
  const source = new KafkaFetchSource(options());
  const stop = new AbortController();
  const running = source.run(recorder(), stop.signal);
  try {
    const f1 = await kafka.nextFetch();
    f1.resolve(FakeKafka.response([]));
    kafka.committedHook = async () => {
      throw Object.assign(new Error('COORDINATOR_LOAD_IN_PROGRESS'), { canRetry: true });
    };
    const rewound = source.rewind(() => undefined);
    await rewound.catch(() => undefined);
    kafka.committedHook = undefined;
    const f2 = await kafka.fetchAfter(kafka.requested);
    f2.resolve(FakeKafka.response([]));
    assert.deepEqual(
      [...FakeKafka.offsets(f2)],
      [
        [0, 100n],
        [1, 100n],
      ],
      'rewound to the committed positions, not the log start',
    );
  } finally {
    await teardown(kafka, source, stop, running);
  }
});

test('rewind() racing a revoke + re-assign of a partition uses the position committed at the new assignment', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.committed.set(0, 10n);
  kafka.committed.set(1, 10n);
  const source = new KafkaFetchSource(options());
  const stop = new AbortController();
  const log = recorder();
  const running = source.run(log, stop.signal);
  try {
    const f1 = await kafka.nextFetch();
    f1.resolve(FakeKafka.response([]));
    // rewind() reads partition 0's committed position (10) ... and waits for the answer.
    const gate = deferred();
    kafka.committedHook = async (p) => {
      const v = kafka.committed.get(p);
      await gate.promise;
      return v;
    };
    let switched = false;
    const rewound = source.rewind(() => (switched = true));
    await until(() => true, '');
    kafka.committedHook = undefined;
    kafka.join([1]); // partition 0 revoked; another member resolves and commits up to 50
    kafka.committed.set(0, 50n);
    kafka.join([0, 1]); // partition 0 assigned again: its committed position is 50 now
    gate.resolve();
    await rewound;
    assert.ok(switched);
    let f = await kafka.fetchAfter(kafka.requested);
    while (!FakeKafka.offsets(f).has(0)) {
      f.resolve(FakeKafka.response([]));
      f = await kafka.nextFetch();
    }
    f.resolve(FakeKafka.response([]));
    assert.equal(FakeKafka.offsets(f).get(0), 50n, 'partition 0 is read from the position committed when it was assigned again (50)');
    assert.equal(await source.repairPosition({ topic: 't', partition: 0 }), undefined);
    kafka.committed.set(0, 20n); // a late commit of the previous owner moves it back
    assert.deepEqual(await source.repairPosition({ topic: 't', partition: 0 }), { topic: 't', partition: 0, offset: 50n, epoch: -1 });
  } finally {
    await teardown(kafka, source, stop, running);
  }
});
