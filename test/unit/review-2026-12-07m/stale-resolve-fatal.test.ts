// Finding (low-medium): a background resolve that settles AFTER its partition was revoked still
// reaches the supervisor's `settled` callback, which does not ask whether the resolve is current:
// a non-retriable error of a partition this member no longer owns ends the whole run (fatal).
// FetchPositions.resolveMissing's rejection handler calls `settled(error, attempt)` whatever
// `done()` says (done() is false when the key is not owned any more; the generation is stale too).
// Sequence: owned [0, 1]; partition 0's committed read hangs; the group revokes 0 (join [1]);
// partition 1 is read; the hung read of partition 0 then fails with an error the client does not
// retry (an authorization error: e.g. the ACL was removed along with the reassignment) → run()
// rejects with it, though nothing owned failed.
// Fix: report (and fail on) an outcome only when it is current — pass done()'s verdict (owned AND
// the generation it was started for) to `settled`, and drop stale errors (or log them only).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeKafka, batch, deferred, delivered, recorder, until } from '../review-2026-12-07i/fake.ts';
import { start, teardown, tick } from '../review-2026-12-07k/helpers.ts';

test('a revoked partition’s stale resolve failing with a non-retriable error: the run goes on', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 2;
  kafka.committed.set(1, 0n);
  const hung = deferred<bigint | undefined>();
  let reads0 = 0;
  kafka.committedHook = (p) => (p === 0 && ++reads0 === 1 ? hung.promise : Promise.resolve(kafka.committed.get(p) ?? -1n));
  const log = recorder();
  const r = await start(kafka, log, []);
  try {
    await until(() => reads0 === 1, 'partition 0’s committed read');
    kafka.join([1]);
    await until(() => log.events.includes('revoked 0'), 'partition 0 revoked');
    // A fetch built before the revoke is stale: answer every fetch of partition 1 until it is read.
    await until(() => {
      for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response(FakeKafka.offsets(f).has(1) ? [[1, [batch([0])]]] : []));
      return delivered(log, 1).length === 1;
    }, 'partition 1 read');
    hung.reject(Object.assign(new Error('TOPIC_AUTHORIZATION_FAILED'), { canRetry: false }));
    await tick(50);
    assert.equal(r.outcome(), undefined, `run() ended: ${String(r.outcome())}`);
  } finally {
    kafka.committedHook = undefined;
    await teardown(kafka, r);
  }
});
