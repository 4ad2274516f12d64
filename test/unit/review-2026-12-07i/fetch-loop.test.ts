// Probes of the fetch loop against a fake broker (fake.ts): what holds, and
// Finding 4: OFFSET_OUT_OF_RANGE above the log end (a truncated log: unclean leader election, a topic
// deleted and created again under its name with the group's offsets kept) is never recovered:
// #clampToLogStart only moves positions BELOW the log start; the same Fetch fails every round, and
// since one Fetch carries every partition of that leader, all partitions led by the node stall
// (onError every ~10 s, forever). The stream falls back to the partition's logStartOffset.
// Finding 5 (low): the epoch handed to the core (and committed as committedLeaderEpoch) is the
// partition's CURRENT leader epoch from metadata, not the batch's partitionLeaderEpoch (what the
// stream hands over and KIP-320 expects).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResponseError } from '@platformatic/kafka';
import { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import { FakeKafka, batch, deferred, delivered, options, recorder, until } from './fake.ts';

async function teardown(kafka: FakeKafka, source: KafkaFetchSource, stop: AbortController, running: Promise<void>): Promise<void> {
  stop.abort();
  await until(() => true, '');
  for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response([]));
  await running.catch(() => undefined);
  await source.close();
  kafka.restore();
}

function outOfRange(partition: number, logStartOffset: bigint, highWatermark: bigint): ResponseError {
  const response = {
    errorCode: 0,
    responses: [{ topicId: 't', partitions: [{ partitionIndex: partition, errorCode: 1, logStartOffset, highWatermark, records: null }] }],
  };
  return new ResponseError(1, 17, { [`/responses/0/partitions/${partition}`]: [1, null] }, response);
}

test('OFFSET_OUT_OF_RANGE above the log end: the partition (and the other partitions of its leader) read on', { timeout: 30_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.committed.set(0, 1000n); // the log was truncated / recreated below the group's position
  kafka.logEnd.set(0, 3n);
  kafka.committed.set(1, 0n);
  const errors: unknown[] = [];
  const source = new KafkaFetchSource(options({ onError: (e: unknown) => errors.push(e) }));
  const stop = new AbortController();
  const log = recorder();
  const running = source.run(log, stop.signal);
  try {
    const deadline = Date.now() + 5_000; // the retry backoff is 0.5, 1, 2 s...
    while (delivered(log, 1).length === 0 && Date.now() < deadline) {
      const f = await kafka.nextFetch();
      const offsets = FakeKafka.offsets(f);
      if (offsets.get(0)! > 3n) f.reject(outOfRange(0, 0n, 3n));
      else f.resolve(FakeKafka.response([[1, [batch([0, 1])]]]));
      await until(() => kafka.fetches.length > 0 || Date.now() > deadline, 'the next fetch', 10_000);
    }
    assert.deepEqual(
      delivered(log, 1),
      [0, 1],
      `partition 1 delivered nothing; ${errors.length} errors, still fetching partition 0 at ${[...FakeKafka.offsets(kafka.fetches[0] ?? ({ options: { node: 0, topics: [] } } as never))].map(([p, o]) => `${p}@${o}`).join(',')}`,
    );
  } finally {
    await teardown(kafka, source, stop, running);
  }
});

test('OFFSET_OUT_OF_RANGE below the log start: moved to the log start (holds)', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 5n);
  const source = new KafkaFetchSource(options());
  const stop = new AbortController();
  const log = recorder();
  const running = source.run(log, stop.signal);
  try {
    const f1 = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(f1).get(0), 5n);
    kafka.logStart.set(0, 20n); // retention deleted below 20 meanwhile
    f1.reject(outOfRange(0, 20n, 30n));
    const f2 = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(f2).get(0), 20n);
    f2.resolve(FakeKafka.response([[0, [batch([20, 21])]]]));
    await until(() => delivered(log, 0).length === 2, 'records');
  } finally {
    await teardown(kafka, source, stop, running);
  }
});

test('a batch starting before the requested offset, compaction gaps and control batches (holds)', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 3n);
  const source = new KafkaFetchSource(options());
  const stop = new AbortController();
  const log = recorder();
  const running = source.run(log, stop.signal);
  try {
    const f1 = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(f1).get(0), 3n);
    f1.resolve(
      FakeKafka.response([
        [
          0,
          [
            batch([0, 2, 4, 6], { first: 0, last: 7 }), // compacted: 1, 3, 5, 7 gone; starts before 3
            batch([8], { control: true }), // a commit marker
            batch([], { first: 9, last: 11 }), // an empty batch (all compacted away)
            batch([12, 13]),
          ],
        ],
      ]),
    );
    const f2 = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(f2).get(0), 14n);
    f2.resolve(FakeKafka.response([[0, [batch([12, 13, 14, 15])]]])); // re-sent batch overlapping the position
    const f3 = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(f3).get(0), 16n);
    assert.deepEqual(delivered(log, 0), [4, 6, 12, 13, 14, 15]);
    f3.resolve(FakeKafka.response([]));
  } finally {
    await teardown(kafka, source, stop, running);
  }
});

test('revocation while onRecord applies backpressure: nothing of the revoked partition after onRevoked (holds)', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  const source = new KafkaFetchSource(options());
  const stop = new AbortController();
  const gate = deferred();
  const log = recorder((r) => (r.partition === 0 && r.offset === 1n ? gate.promise : undefined));
  const running = source.run(log, stop.signal);
  try {
    const f1 = await kafka.nextFetch();
    f1.resolve(
      FakeKafka.response([
        [0, [batch([0, 1, 2])]],
        [1, [batch([0, 1])]],
      ]),
    );
    await until(() => delivered(log, 0).length === 2, 'r0:1 pending');
    kafka.join([1]);
    gate.resolve();
    const f2 = await kafka.fetchAfter(kafka.requested);
    assert.deepEqual([...FakeKafka.offsets(f2).keys()], [1]);
    assert.equal(FakeKafka.offsets(f2).get(1), 0n, 'partition 1 was not delivered: read from its position');
    f2.resolve(FakeKafka.response([[1, [batch([0, 1])]]]));
    await until(() => delivered(log, 1).length === 2, 'partition 1');
    const after = log.events.slice(log.events.indexOf('revoked 0'));
    assert.ok(!after.some((e) => e.startsWith('r0:')), after.join(' '));
  } finally {
    await teardown(kafka, source, stop, running);
  }
});

test(
  'a response carrying a partition not requested (no longer owned) does not drop the other partitions of the response',
  // Finding 6 (fixed): #deliver returned false for an unowned partition and #round dropped the rest of the round.
  { timeout: 20_000 },
  async () => {
    const kafka = new FakeKafka();
    const source = new KafkaFetchSource(options());
    const stop = new AbortController();
    const log = recorder();
    const running = source.run(log, stop.signal);
    try {
      const f1 = await kafka.nextFetch();
      f1.resolve(FakeKafka.response([]));
      kafka.join([1]);
      const f2 = await kafka.fetchAfter(kafka.requested);
      assert.deepEqual([...FakeKafka.offsets(f2).keys()], [1]);
      f2.resolve(
        FakeKafka.response([
          [0, [batch([0, 1])]],
          [1, [batch([0, 1])]],
        ]),
      );
      const f3 = await kafka.nextFetch();
      f3.resolve(FakeKafka.response([]));
      assert.deepEqual(delivered(log, 1), [0, 1], 'partition 1 delivered from the first response that carried it');
      assert.deepEqual(delivered(log, 0), []);
    } finally {
      await teardown(kafka, source, stop, running);
    }
  },
);

test('rewind() while a fetch is in flight: its response is dropped, every record after onSwitch comes from the committed position (holds)', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 0n);
  const source = new KafkaFetchSource(options());
  const stop = new AbortController();
  const log = recorder();
  const running = source.run(log, stop.signal);
  try {
    const f1 = await kafka.nextFetch();
    f1.resolve(FakeKafka.response([[0, [batch([0, 1, 2])]]]));
    const f2 = await kafka.nextFetch(); // in flight, from 3
    assert.equal(FakeKafka.offsets(f2).get(0), 3n);
    kafka.committed.set(0, 1n);
    let mark = -1;
    await source.rewind(() => (mark = log.records.length));
    f2.resolve(FakeKafka.response([[0, [batch([3, 4])]]]));
    const f3 = await kafka.fetchAfter(kafka.requested - kafka.fetches.length);
    assert.equal(FakeKafka.offsets(f3).get(0), 1n);
    f3.resolve(FakeKafka.response([[0, [batch([0, 1, 2, 3, 4])]]]));
    await until(() => log.records.length >= mark + 4, 'the rewound records');
    assert.deepEqual(
      log.records.slice(mark).map((r) => Number(r.offset)),
      [1, 2, 3, 4],
    );
    assert.deepEqual(delivered(log, 0).slice(0, mark), [0, 1, 2]);
  } finally {
    await teardown(kafka, source, stop, running);
  }
});

test('the epoch handed over is the batch leader epoch (as the stream does)', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.leaderEpoch = 7; // the partition's leader changed since the records were written in epoch 3
  const source = new KafkaFetchSource(options());
  const stop = new AbortController();
  const log = recorder();
  const running = source.run(log, stop.signal);
  try {
    const f1 = await kafka.nextFetch();
    f1.resolve(FakeKafka.response([[0, [batch([0, 1], { epoch: 3 })]]]));
    await until(() => log.records.length === 2, 'records');
    assert.deepEqual(
      log.records.map((r) => r.epoch),
      [3, 3],
    );
  } finally {
    await teardown(kafka, source, stop, running);
  }
});

test(
  'close() alone (no abort) ends run() (the contract: "delivers records until close() or the signal fires")',
  // Finding 8 (fixed): run() went on (fake) or rejected with "Client is closed." (real client) after close().
  { timeout: 20_000 },
  async () => {
    const kafka = new FakeKafka();
    const errors: unknown[] = [];
    const source = new KafkaFetchSource(options({ onError: (e: unknown) => errors.push(e) }));
    const stop = new AbortController();
    const running = source.run(recorder(), stop.signal);
    let ended = false;
    void running.then(
      () => (ended = true),
      () => (ended = true),
    );
    try {
      await kafka.nextFetch().then((f) => kafka.fetches.unshift(f));
      await source.close(); // the fake fails the fetch in flight with "Client is closed." as the client does
      await until(() => ended, 'run() to end after close()', 3_000).catch(() => undefined);
      assert.ok(ended, `run() still running after close(); onError called ${errors.length} times`);
    } finally {
      await teardown(kafka, source, stop, running);
    }
  },
);
