// Probes of review 2026-12-07m that HOLD: a stale background resolve (its committed read hung
// across a rewind, then answered with an older offset) sets no position — the partition is read
// from the rewind's committed offset; a partition resolved while its leader's loop is mid-fetch
// with a request that did not include it joins that loop's next request at its committed offset,
// and the in-flight response hands nothing of it over.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeKafka, batch, deferred, delivered, recorder, until } from '../review-2026-12-07i/fake.ts';
import { start, teardown, tick } from '../review-2026-12-07k/helpers.ts';

test('(holds) a resolve hung across a rewind, then answered with an older offset: read from the rewind’s offset', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 7n);
  const hung = deferred<bigint | undefined>();
  let reads = 0;
  kafka.committedHook = () => (++reads === 1 ? hung.promise : Promise.resolve(kafka.committed.get(0)));
  const log = recorder();
  const r = await start(kafka, log, []);
  try {
    await until(() => reads === 1, 'the first committed read');
    await r.source.rewind(() => log.events.push('switch'));
    const f = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(f).get(0), 7n);
    hung.resolve(3n); // stale
    f.resolve(FakeKafka.response([[0, [batch([7])]]]));
    await until(() => delivered(log, 0).length === 1, 'offset 7');
    const next = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(next).get(0), 8n);
    kafka.fetches.unshift(next);
    assert.deepEqual(delivered(log, 0), [7]);
  } finally {
    kafka.committedHook = undefined;
    await teardown(kafka, r);
  }
});

test('(holds) a partition resolved while its leader’s loop is mid-fetch without it: it joins the next request', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 2;
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 5n);
  const hung = deferred<bigint | undefined>();
  let reads1 = 0;
  kafka.committedHook = (p) => (p === 1 && ++reads1 === 1 ? hung.promise : Promise.resolve(kafka.committed.get(p)));
  const log = recorder();
  const r = await start(kafka, log, []);
  try {
    const first = await kafka.nextFetch();
    assert.deepEqual([...FakeKafka.offsets(first).keys()], [0]);
    hung.resolve(5n);
    await tick(10); // partition 1's position is set while the first fetch is in flight
    first.resolve(FakeKafka.response([[0, [batch([0])]]]));
    await until(() => delivered(log, 0).length === 1, 'partition 0 read');
    const next = await kafka.fetchIncluding(1);
    assert.equal(FakeKafka.offsets(next).get(1), 5n);
    assert.equal(FakeKafka.offsets(next).get(0), 1n);
    kafka.fetches.unshift(next);
    assert.deepEqual(delivered(log, 1), []);
  } finally {
    kafka.committedHook = undefined;
    await teardown(kafka, r);
  }
});
