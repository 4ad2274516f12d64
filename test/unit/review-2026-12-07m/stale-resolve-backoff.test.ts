// Finding (low): a stale background resolve's failure sets the partition's retry backoff
// (`#failures`) for a LATER ownership or generation: the rejection handler records the failure
// when `done()` is true, and done() asks only whether the key is owned now, not whether this
// resolve is the current one. The next time the partition must be resolved (a rewind, a reset) it
// waits out a backoff it never earned (500 ms, more after several such stale failures); a stale
// success likewise clears a current partition's backoff.
// Sequence: owned [0, 1]; partition 0's committed read hangs; 0 is revoked and assigned again (its
// new resolve succeeds, it is read); the hung read then fails (a transient error) → #failures[0]
// is set; a rewind → partition 1 is fetched at once, partition 0 only ≥ 500 ms later.
// Fix: in resolveMissing's handlers, touch #failures only when the resolve is current
// (`this.#resolving.get(key)?.generation === generation` before deleting it, and still owned).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeKafka, batch, deferred, delivered, recorder, until } from '../review-2026-12-07i/fake.ts';
import { start, teardown, tick } from '../review-2026-12-07k/helpers.ts';

test('a stale resolve failing after a re-assignment: the next resolve of the partition (after a rewind) is not held back', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 2;
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const hung = deferred<bigint | undefined>();
  let reads0 = 0;
  kafka.committedHook = (p) => (p === 0 && ++reads0 === 1 ? hung.promise : Promise.resolve(kafka.committed.get(p) ?? -1n));
  const log = recorder();
  const r = await start(kafka, log, []);
  try {
    await until(() => reads0 === 1, 'partition 0’s committed read');
    kafka.join([1]);
    kafka.join([0, 1]);
    const f = await kafka.fetchIncluding(0);
    f.resolve(FakeKafka.response([[0, [batch([0])]]]));
    await until(() => delivered(log, 0).length === 1, 'partition 0 read in its new ownership');
    hung.reject(Object.assign(new Error('NOT_COORDINATOR'), { canRetry: true })); // stale
    await tick(20);
    const pending = await kafka.nextFetch();
    await r.source.rewind(() => log.events.push('switch'));
    pending.resolve(FakeKafka.response([]));
    const t0 = Date.now();
    const again = await kafka.fetchIncluding(0);
    const waited = Date.now() - t0;
    kafka.fetches.unshift(again);
    assert.ok(waited < 250, `partition 0 was fetched again only ${waited} ms after the rewind`);
  } finally {
    kafka.committedHook = undefined;
    await teardown(kafka, r);
  }
});
