// KafkaFetchSource against a fake broker behind the client's public methods (the review fake):
// leaders that move or fail, compacted batches, empty control batches, deliveries of several leader
// loops one at a time, and a fatal fetch error. The aborted-transaction rules, rewinds, resets and
// positions are probed by test/unit/review-2026-12-07i and -07j.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import { FakeKafka, batch, deferred, delivered, options, recorder, until, type FakeBatch } from '../review-2026-12-07i/fake.ts';

async function start(kafka: FakeKafka, log = recorder(), errors: unknown[] = []): Promise<{ source: KafkaFetchSource; stop: AbortController; running: Promise<void> }> {
  const source = new KafkaFetchSource(options({ onError: (error: unknown) => errors.push(error) }));
  const stop = new AbortController();
  const running = source.run(log, stop.signal);
  await until(() => kafka.consumer !== undefined, 'the join');
  return { source, stop, running };
}

async function teardown(kafka: FakeKafka, source: KafkaFetchSource, stop: AbortController, running: Promise<void>): Promise<void> {
  stop.abort();
  for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response([]));
  await running.catch(() => undefined);
  await source.close();
  kafka.restore();
}

test('a moved leader: the partition is read from the new leader at the same position, nothing again, no reset', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const log = recorder();
  const errors: unknown[] = [];
  const { source, stop, running } = await start(kafka, log, errors);
  try {
    const first = await kafka.nextFetch();
    assert.equal(first.options.node, 1);
    first.resolve(
      FakeKafka.response([
        [0, [batch([0, 1])]],
        [1, [batch([0, 1, 2])]],
      ]),
    );
    await until(() => delivered(log, 1).length === 3, 'the first records');
    kafka.leaders = [1, 2]; // partition 1 moved to node 2
    kafka.leaderEpoch = 1;
    (await kafka.nextFetch()).reject(Object.assign(new Error('NOT_LEADER_OR_FOLLOWER'), { canRetry: true }));
    const moved = await until(() => kafka.fetches.some((f) => f.options.node === 2), 'a fetch to the new leader').then(() => kafka.fetches.find((f) => f.options.node === 2)!);
    assert.deepEqual([...FakeKafka.offsets(moved)], [[1, 3n]]);
    assert.equal(moved.options.topics[0]!.partitions[0]!.currentLeaderEpoch, 1);
    kafka.fetches.splice(kafka.fetches.indexOf(moved), 1);
    moved.resolve(FakeKafka.response([[1, [batch([3, 4])]]]));
    const stayed = await kafka.fetchIncluding(0);
    assert.deepEqual([...FakeKafka.offsets(stayed)], [[0, 2n]], 'node 1 asks only for the partition it still leads');
    stayed.resolve(FakeKafka.response([[0, [batch([2])]]]));
    await until(() => delivered(log, 1).length === 5 && delivered(log, 0).length === 3, 'the records after the move');
    assert.deepEqual(delivered(log, 0), [0, 1, 2]);
    assert.deepEqual(delivered(log, 1), [0, 1, 2, 3, 4]);
    assert.ok(!log.events.includes('reset'), log.events.join(' '));
    assert.equal(errors.length, 1);
  } finally {
    await teardown(kafka, source, stop, running);
  }
});

test('a compacted batch: its records with gaps, and the next fetch past its last offset', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 0n);
  const log = recorder();
  const { source, stop, running } = await start(kafka, log);
  try {
    // offsets 1, 3, 4, 6 and 7 compacted away; the batch keeps its last offset delta (7)
    (await kafka.nextFetch()).resolve(FakeKafka.response([[0, [batch([0, 2, 5], { last: 7 })]]]));
    const next = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(next).get(0), 8n);
    next.resolve(FakeKafka.response([[0, [batch([8])]]]));
    await until(() => delivered(log, 0).length === 4, 'the records');
    assert.deepEqual(delivered(log, 0), [0, 2, 5, 8]);
  } finally {
    await teardown(kafka, source, stop, running);
  }
});

test('an empty control batch (its marker compacted away) is skipped, the position past it', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 0n);
  const log = recorder();
  const { source, stop, running } = await start(kafka, log);
  try {
    const empty: FakeBatch = { ...batch([2], { control: true }), records: [] };
    (await kafka.nextFetch()).resolve(FakeKafka.response([[0, [batch([0, 1]), empty]]]));
    const next = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(next).get(0), 3n);
    next.resolve(FakeKafka.response([[0, [batch([3])]]]));
    await until(() => delivered(log, 0).length === 3, 'the records');
    assert.deepEqual(delivered(log, 0), [0, 1, 3]);
  } finally {
    await teardown(kafka, source, stop, running);
  }
});

test('two leaders: the core gets one record at a time (a held record holds the other leader’s response)', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.leaders = [1, 2];
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const hold = deferred();
  let inside = 0;
  let overlapped = false;
  const log = recorder(async (r) => {
    overlapped ||= inside > 0;
    inside++;
    if (r.partition === 0 && r.offset === 0n) await hold.promise;
    inside--;
  });
  const { source, stop, running } = await start(kafka, log);
  try {
    await until(() => kafka.fetches.length === 2, 'a fetch to each leader');
    const [a, b] = [kafka.fetches.find((f) => f.options.node === 1)!, kafka.fetches.find((f) => f.options.node === 2)!];
    kafka.fetches.splice(0);
    a.resolve(FakeKafka.response([[0, [batch([0, 1])]]]));
    await until(() => delivered(log, 0).length === 1, 'partition 0 held at 0');
    b.resolve(FakeKafka.response([[1, [batch([0, 1])]]]));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(delivered(log, 1), [], 'nothing of node 2 while a record of node 1 is held');
    hold.resolve();
    await until(() => delivered(log, 0).length === 2 && delivered(log, 1).length === 2, 'both partitions');
    assert.equal(overlapped, false);
  } finally {
    await teardown(kafka, source, stop, running);
  }
});

test('a fetch error that is not transient fails run() and stops the other leaders’ loops', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.leaders = [1, 2];
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const log = recorder();
  const { source, stop, running } = await start(kafka, log);
  try {
    await until(() => kafka.fetches.length === 2, 'a fetch to each leader');
    const denied = Object.assign(new Error('TOPIC_AUTHORIZATION_FAILED'), { canRetry: false });
    const down = kafka.fetches.find((f) => f.options.node === 2)!;
    kafka.fetches.splice(kafka.fetches.indexOf(down), 1);
    down.reject(denied);
    let outcome: unknown;
    running.then(
      () => (outcome = 'resolved'),
      (error: unknown) => (outcome = error),
    );
    // node 1 answers empty until run() ends: it waits for every loop
    await until(() => {
      for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response([]));
      return outcome !== undefined;
    }, 'run() to end');
    assert.equal(outcome, denied);
    const requested = kafka.requested;
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(kafka.requested, requested, 'no fetch after run() failed');
  } finally {
    await teardown(kafka, source, stop, running);
  }
});
