// Finding (low): the source-wide count of handler failures in a row (`#handlerFailures`, which
// sets the failing loop's backoff and the onError attempt) ends only when the partition that
// failed last (`#failedAt`) reads past where it failed. When that partition is revoked it never
// does: the count carries over to the next failure of another partition, whose first failure then
// backs off as the n-th (250 ms · 2^n, up to 10 s) though nothing failed in a row there.
// Sequence: owned [0, 1] on one leader; partition 0's record fails twice (attempts 1, 2); the
// group revokes 0; partition 1's record fails once → reported as attempt 3 (2 s), not 1.
// Fix: in #applyAssignments, when `#failedAt.key` is revoked, clear #failedAt and the count
// (likewise on a rewind's switch, which re-reads everything).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeKafka, batch, recorder, until } from '../review-2026-12-07i/fake.ts';
import { start, teardown } from '../review-2026-12-07k/helpers.ts';

test('handler failures of a partition since revoked do not count for another partition’s first failure', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 2;
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const boom = new Error('handler failed');
  const log = recorder((record) => {
    if (record.partition === 0 || log.events.includes('revoked 0')) throw boom;
  });
  const errors: Array<{ error: unknown; attempt: number }> = [];
  const r = await start(kafka, log, errors);
  const attempts = (): number[] => errors.filter((e) => e.error === boom).map((e) => e.attempt);
  try {
    for (let n = 1; n <= 2; n++) {
      const f = await kafka.fetchIncluding(0);
      f.resolve(FakeKafka.response([[0, [batch([0])]]]));
      await until(() => attempts().length === n, `failure ${n} of partition 0`);
    }
    kafka.join([1]);
    await until(() => log.events.includes('revoked 0'), 'partition 0 revoked');
    const f = await kafka.fetchIncluding(1);
    f.resolve(FakeKafka.response([[1, [batch([0])]]]));
    await until(() => attempts().length === 3, 'the failure of partition 1');
    assert.deepEqual(attempts(), [1, 2, 1]);
  } finally {
    await teardown(kafka, r);
  }
});
