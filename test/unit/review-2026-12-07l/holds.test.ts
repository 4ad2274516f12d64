// Probes of review 2026-12-07l that HOLD against the fixes of 2026-12-07k: a response abandoned by
// a halted run is never handed over (not even to the next run); a partition revoked and assigned
// again while its first resolve hangs starts at the new assignment's committed offset (the stale
// read succeeding or failing); OFFSET_OUT_OF_RANGE of a request built before such a re-assignment
// neither moves nor resets the new position; a leader epoch bump on the same node (the next
// request carries it, no reset); the topic missing from the metadata for a while (every loop ends,
// the supervisor polls, the partitions resume where they were); a record held by backpressure when
// close() comes (nothing after it; run() ends once it settles — as the stream path, the core
// releases its waiters on close); run() after close().
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Consumer, ResponseError } from '@platformatic/kafka';
import { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import { FakeKafka, batch, deferred, delivered, options, recorder, until, type PendingFetch } from '../review-2026-12-07i/fake.ts';
import { start, teardown, tick } from '../review-2026-12-07k/helpers.ts';

async function fetchOf(kafka: FakeKafka, node: number): Promise<PendingFetch> {
  await until(() => kafka.fetches.some((f) => f.options.node === node), `a fetch to node ${node}`);
  const f = kafka.fetches.find((x) => x.options.node === node)!;
  kafka.fetches.splice(kafka.fetches.indexOf(f), 1);
  return f;
}

test('(holds) a fetch abandoned by a halted run, answered later (with records) while the next run reads: never handed over', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 4n);
  const source = new KafkaFetchSource(options());
  try {
    const first = new AbortController();
    const run1 = source.run(recorder(), first.signal);
    const abandoned = await kafka.nextFetch();
    first.abort();
    await run1; // ended without the fetch
    const log = recorder();
    const second = new AbortController();
    const run2 = source.run(log, second.signal);
    const next = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(next).get(0), 4n);
    abandoned.resolve(FakeKafka.response([[0, [batch([4, 5, 6])]]]));
    await tick(20);
    assert.deepEqual(delivered(log, 0), [], 'the abandoned response was handed over');
    next.resolve(FakeKafka.response([[0, [batch([4])]]]));
    await until(() => delivered(log, 0).length === 1, 'run 2 reads');
    const after = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(after).get(0), 5n);
    second.abort();
    after.resolve(FakeKafka.response([]));
    await run2;
    assert.deepEqual(delivered(log, 0), [4]);
  } finally {
    await source.close();
    kafka.restore();
  }
});

for (const stale of ['succeeds', 'fails'] as const) {
  test(`(holds) revoked and assigned again while its first committed read hangs (the stale read ${stale}): starts at the new assignment's offset`, { timeout: 20_000 }, async () => {
    const kafka = new FakeKafka();
    kafka.partitions = 1;
    kafka.assignment = [0];
    const firstRead = deferred<bigint | undefined>();
    let reads = 0;
    kafka.committedHook = () => (++reads === 1 ? firstRead.promise : Promise.resolve(9n));
    const log = recorder();
    const r = await start(kafka, log, []);
    try {
      await until(() => reads === 1, 'the first committed read');
      kafka.join([]);
      kafka.join([0]);
      await until(() => reads === 2, 'the new assignment’s read');
      if (stale === 'succeeds') firstRead.resolve(3n);
      else firstRead.reject(Object.assign(new Error('NOT_COORDINATOR'), { canRetry: true }));
      const f = await kafka.nextFetch();
      assert.equal(FakeKafka.offsets(f).get(0), 9n);
      kafka.fetches.unshift(f);
      assert.deepEqual(log.events, ['assigned 0', 'revoked 0', 'assigned 0']);
    } finally {
      kafka.committedHook = undefined;
      await teardown(kafka, r);
    }
  });
}

test('(holds) OFFSET_OUT_OF_RANGE of a request built before the partition was revoked and assigned again: the new position stays, no reset', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 2;
  kafka.leaders = [1, 2];
  kafka.committed.set(0, 100n);
  kafka.committed.set(1, 0n);
  const log = recorder();
  const r = await start(kafka, log, []);
  try {
    const old = await fetchOf(kafka, 1);
    assert.equal(FakeKafka.offsets(old).get(0), 100n);
    kafka.logEnd.set(0, 80n); // truncated: 100 is above the end now
    kafka.committed.set(0, 60n); // the next owner committed 60 meanwhile
    kafka.join([1]);
    kafka.join([0, 1]);
    await until(() => log.events.length === 3, 'revoked and assigned again');
    await tick(20); // the new position is resolved; node 1's loop still waits for the old request
    old.reject(new ResponseError(1, 17, { '/responses/0/partitions/0': [1, null] }, undefined));
    const f = await fetchOf(kafka, 1);
    assert.equal(FakeKafka.offsets(f).get(0), 60n);
    f.resolve(FakeKafka.response([[0, [batch([60, 61])]]]));
    await until(() => delivered(log, 0).length === 2, 'partition 0 read from 60');
    const next = await fetchOf(kafka, 1);
    assert.equal(FakeKafka.offsets(next).get(0), 62n);
    kafka.fetches.unshift(next);
    assert.ok(!log.events.includes('reset'), log.events.join(' '));
  } finally {
    await teardown(kafka, r);
  }
});

test('(holds) a leader epoch bump on the same node: the next request carries it, no reset', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 0n);
  const log = recorder();
  const r = await start(kafka, log, []);
  try {
    const first = await kafka.nextFetch();
    assert.equal(first.options.topics[0]!.partitions[0]!.currentLeaderEpoch, 0);
    kafka.leaderEpoch = 3;
    first.resolve(FakeKafka.response([[0, [batch([0, 1])]]]));
    const second = await kafka.nextFetch();
    assert.equal(second.options.topics[0]!.partitions[0]!.currentLeaderEpoch, 3);
    assert.equal(FakeKafka.offsets(second).get(0), 2n);
    kafka.fetches.unshift(second);
    assert.ok(!log.events.includes('reset'));
  } finally {
    await teardown(kafka, r);
  }
});

test('(holds) the topic missing from the metadata for a while: the loops end, the partitions resume where they were, no reset', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.leaders = [1, 2];
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const proto = Consumer.prototype as unknown as Record<string, unknown>;
  const inner = proto.metadata as (this: Consumer, o: object) => Promise<{ topics: Map<string, unknown> }>;
  let missing = false;
  let asked = 0;
  Object.defineProperty(proto, 'metadata', {
    configurable: true,
    writable: true,
    value: function (this: Consumer, o: object) {
      asked++;
      return missing ? Promise.resolve({ topics: new Map() }) : inner.call(this, o);
    },
  });
  const log = recorder();
  const r = await start(kafka, log, []);
  try {
    (await fetchOf(kafka, 1)).resolve(FakeKafka.response([[0, [batch([0, 1])]]]));
    (await fetchOf(kafka, 2)).resolve(FakeKafka.response([[1, [batch([0])]]]));
    await until(() => delivered(log, 0).length === 2 && delivered(log, 1).length === 1 && kafka.fetches.length === 2, 'both read, fetching on');
    missing = true;
    for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response([]));
    const before = asked;
    await tick(600);
    assert.equal(kafka.fetches.length, 0, 'no fetch while no leader is known');
    assert.ok(asked - before >= 2 && asked - before <= 8, `metadata asked ${asked - before} times in 600 ms`);
    missing = false;
    const one = await fetchOf(kafka, 1);
    const two = await fetchOf(kafka, 2);
    assert.equal(FakeKafka.offsets(one).get(0), 2n);
    assert.equal(FakeKafka.offsets(two).get(1), 1n);
    kafka.fetches.push(one, two);
    assert.ok(!log.events.includes('reset'));
  } finally {
    await teardown(kafka, r);
  }
});

test('(holds) a record held by backpressure when close() comes: nothing after it, run() ends once it settles', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.leaders = [1, 2];
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const hold = deferred();
  const log = recorder((rec) => (rec.partition === 0 && rec.offset === 0n ? hold.promise : undefined));
  const r = await start(kafka, log, []);
  try {
    (await fetchOf(kafka, 1)).resolve(FakeKafka.response([[0, [batch([0, 1, 2])]]]));
    await until(() => delivered(log, 0).length === 1, 'record 0 held');
    (await fetchOf(kafka, 2)).resolve(FakeKafka.response([[1, [batch([0, 1])]]])); // queued behind it
    const closing = r.source.close();
    await tick(50);
    hold.resolve();
    await until(() => r.outcome() !== undefined, 'run() to end');
    await closing;
    assert.equal(r.outcome(), 'resolved');
    assert.deepEqual(delivered(log, 0), [0]);
    assert.deepEqual(delivered(log, 1), []);
  } finally {
    hold.resolve();
    await teardown(kafka, r);
  }
});

test('(holds) run() after close(): resolves at once, no fetch', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  const source = new KafkaFetchSource(options());
  try {
    await source.close();
    await source.run(recorder(), new AbortController().signal); // its joinGroup call is abandoned (the client answers it: closed)
    await tick(20);
    assert.equal(kafka.requested, 0);
  } finally {
    kafka.restore();
  }
});
