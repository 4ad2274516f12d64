// Probes that hold against the fixed code.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import { FakeKafka, batch, deferred, delivered, options, recorder, until } from '../review-2026-12-07i/fake.ts';

async function teardown(kafka: FakeKafka, source: KafkaFetchSource, stop: AbortController, running: Promise<void>): Promise<void> {
  stop.abort();
  for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response([]));
  await running.catch(() => undefined);
  await source.close();
  kafka.restore();
}

test('a handler promise that rejects: onReset, then the committed position again', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 0n);
  let fail = true;
  const log = recorder((r) => (r.offset === 1n && fail ? ((fail = false), Promise.reject(new Error('schema load failed'))) : undefined));
  const source = new KafkaFetchSource(options({ onError: () => undefined }));
  const stop = new AbortController();
  const running = source.run(log, stop.signal);
  try {
    (await kafka.nextFetch()).resolve(FakeKafka.response([[0, [batch([0, 1, 2])]]]));
    const f = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(f).get(0), 0n);
    f.resolve(FakeKafka.response([[0, [batch([0, 1, 2])]]]));
    await until(() => delivered(log, 0).length === 5, 'redelivery');
    assert.deepEqual(log.events, ['assigned 0', 'r0:0', 'r0:1', 'reset', 'r0:0', 'r0:1', 'r0:2']);
  } finally {
    await teardown(kafka, source, stop, running);
  }
});

test('a rebalance while #resolvePositions awaits a committed read: nothing of the revoked partition after onRevoked', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const gate = deferred<bigint | undefined>();
  kafka.committedHook = (p) => (p === 1 ? gate.promise : Promise.resolve(kafka.committed.get(p)));
  const log = recorder();
  const source = new KafkaFetchSource(options({ onError: () => undefined }));
  const stop = new AbortController();
  const running = source.run(log, stop.signal);
  try {
    await until(() => kafka.consumer !== undefined, 'join');
    await new Promise((r) => setImmediate(r));
    kafka.join([0]); // partition 1 revoked while its read is pending
    gate.resolve(0n);
    kafka.committedHook = undefined;
    // A fetch requested before the join is stale when it returns (dropped): answer until one lands.
    while (delivered(log, 0).length === 0) {
      const f = await kafka.nextFetch();
      assert.deepEqual([...FakeKafka.offsets(f).keys()], [0]);
      f.resolve(
        FakeKafka.response([
          [0, [batch([0])]],
          [1, [batch([0])]],
        ]),
      );
      await new Promise((r) => setImmediate(r));
    }
    await until(() => delivered(log, 0).length === 1, 'partition 0');
    kafka.join([0, 1]);
    const g = await kafka.fetchIncluding(1);
    assert.equal(FakeKafka.offsets(g).get(1), 0n);
    g.resolve(FakeKafka.response([[1, [batch([0])]]]));
    await until(() => delivered(log, 1).length === 1, 'partition 1 after the new assignment');
    const revokedAt = log.events.indexOf('revoked 1');
    const assignedAt = log.events.lastIndexOf('assigned 1');
    assert.ok(!log.events.slice(revokedAt, assignedAt).some((e) => e.startsWith('r1:')), log.events.join(' '));
  } finally {
    await teardown(kafka, source, stop, running);
  }
});

test('rewind while the handler holds a record: the rest of the response is dropped, then the committed position', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 0n);
  const hold = deferred();
  const log = recorder((r) => (r.offset === 1n && log.events.filter((e) => e === 'r0:1').length === 1 ? hold.promise : undefined));
  const source = new KafkaFetchSource(options());
  const stop = new AbortController();
  const running = source.run(log, stop.signal);
  try {
    (await kafka.nextFetch()).resolve(FakeKafka.response([[0, [batch([0, 1, 2, 3])]]]));
    await until(() => delivered(log, 0).length === 2, 'held at 1');
    await source.rewind(() => log.events.push('switch'));
    hold.resolve();
    const f = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(f).get(0), 0n);
    f.resolve(FakeKafka.response([[0, [batch([0, 1])]]]));
    await until(() => delivered(log, 0).length === 4, 'after the switch');
    assert.deepEqual(log.events, ['assigned 0', 'r0:0', 'r0:1', 'switch', 'r0:0', 'r0:1']);
  } finally {
    await teardown(kafka, source, stop, running);
  }
});
