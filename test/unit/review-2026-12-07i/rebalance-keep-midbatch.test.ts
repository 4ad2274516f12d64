// Finding 1: an assignment change that KEEPS partition 0 while onRecord's promise for a record in
// the middle of a batch of partition 0 is pending: #deliver returns false (generation changed)
// without advancing #next past the records already delivered (it is set only after a whole batch),
// and the next round fetches partition 0 again from the batch start: offsets 0..2 are delivered
// twice within one ownership (and the order goes backwards: ..., 2, 0, 1, 2, ...).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import { FakeKafka, batch, deferred, delivered, options, recorder } from './fake.ts';

test('sanity: records of one batch are delivered once, in order, and the next fetch starts past the batch', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  const source = new KafkaFetchSource(options());
  const stop = new AbortController();
  const log = recorder();
  const running = source.run(log, stop.signal);
  try {
    const f1 = await kafka.nextFetch();
    assert.deepEqual(
      [...FakeKafka.offsets(f1)],
      [
        [0, 0n],
        [1, 0n],
      ],
    );
    f1.resolve(FakeKafka.response([[0, [batch([0, 1, 2])]]]));
    const f2 = await kafka.nextFetch();
    f2.resolve(FakeKafka.response([]));
    assert.deepEqual(FakeKafka.offsets(f2).get(0), 3n);
    assert.deepEqual(delivered(log, 0), [0, 1, 2]);
  } finally {
    stop.abort();
    for (const f of kafka.fetches) f.resolve(FakeKafka.response([]));
    await running.catch(() => undefined);
    await source.close();
    kafka.restore();
  }
});

test('an assignment change that keeps a partition, during backpressure mid-batch, does not re-deliver that partition', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  const source = new KafkaFetchSource(options());
  const stop = new AbortController();
  const gate = deferred();
  const log = recorder((r) => (r.partition === 0 && r.offset === 2n ? gate.promise : undefined));
  const running = source.run(log, stop.signal);
  try {
    const f1 = await kafka.nextFetch();
    f1.resolve(FakeKafka.response([[0, [batch([0, 1, 2, 3, 4])]]]));
    await new Promise<void>((resolve) => {
      const check = (): void => (delivered(log, 0).length === 3 ? resolve() : void setImmediate(check));
      check();
    });
    kafka.join([0]); // partition 1 revoked, partition 0 kept
    gate.resolve();
    // Serve whatever comes next until partition 0 is past offset 4.
    for (let i = 0; i < 5; i++) {
      const f = await kafka.nextFetch();
      const from = FakeKafka.offsets(f).get(0)!;
      const offs = [0, 1, 2, 3, 4].filter((o) => BigInt(o) >= from);
      f.resolve(FakeKafka.response(offs.length > 0 ? [[0, [batch([0, 1, 2, 3, 4])]]] : []));
      if (from >= 5n) break;
    }
    assert.deepEqual(
      log.events.filter((e) => !e.startsWith('r1')),
      ['assigned 0,1', 'r0:0', 'r0:1', 'r0:2', 'revoked 1', 'r0:3', 'r0:4'],
    );
  } finally {
    stop.abort();
    for (const f of kafka.fetches) f.resolve(FakeKafka.response([]));
    await running.catch(() => undefined);
    await source.close();
    kafka.restore();
  }
});

test('a handler error (rejected backpressure promise) mid-batch: records already delivered are not delivered again without onReset', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  const errors: unknown[] = [];
  const source = new KafkaFetchSource(options({ onError: (e: unknown) => errors.push(e) }));
  const stop = new AbortController();
  let failed = false;
  const log = recorder((r) => {
    if (r.partition === 0 && r.offset === 2n && !failed) {
      failed = true;
      return Promise.reject(new Error('schema registry unavailable'));
    }
  });
  const running = source.run(log, stop.signal);
  try {
    const f1 = await kafka.nextFetch();
    f1.resolve(FakeKafka.response([[0, [batch([0, 1, 2, 3, 4])]]]));
    for (let i = 0; i < 5; i++) {
      const f = await kafka.nextFetch();
      const from = FakeKafka.offsets(f).get(0)!;
      f.resolve(FakeKafka.response(from < 5n ? [[0, [batch([0, 1, 2, 3, 4])]]] : []));
      if (from >= 5n) break;
    }
    const events = log.events.filter((e) => !e.startsWith('r1'));
    // Either the error ends run(), or the source starts over and says so (onReset), or it goes on past offset 2.
    const redelivered = events.filter((e) => e === 'r0:0').length > 1;
    assert.ok(!redelivered || events.includes('reset'), `re-delivered without onReset: ${events.join(' ')}; errors: ${errors.length}`);
  } finally {
    stop.abort();
    for (const f of kafka.fetches) f.resolve(FakeKafka.response([]));
    await running.catch(() => undefined);
    await source.close();
    kafka.restore();
  }
});
