// Finding (low, a reset storm): the source's count of handler failures in a row is ended by ANY
// partition's records going through (#deliverResponse: `handed && next moved` → 0). After each
// reset every partition starts over from its committed position, so a healthy partition on
// another node re-delivers records right away — the count goes back to 0 before the failing
// record (a schema that cannot load, a ledger that cannot be read) fails again, and the backoff
// never grows past its first step: a reset of EVERY partition (onReset: the core drops all its
// in-memory progress; 3 reads per partition) every ~500 ms for as long as the dependency is down,
// and onError's attempt stays 1. Review 2026-12-07k's fix holds only when every partition fails
// (its probe's handler rejects every record). The design says "resets in a row back off by one
// count for the source". (The stream path restarts every 500 ms in this case too.)
// Sequence: partitions 0 (node 1: every record fails) and 1 (node 2: records go through);
// fetches answered at once for 4 s.
// Fix: end the count only when the partition (or the offset) that failed goes past the failure,
// or after a quiet period without failures — not on another partition's records.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeKafka, batch, recorder } from '../review-2026-12-07i/fake.ts';
import { autoAnswer, start, teardown, tick } from '../review-2026-12-07k/helpers.ts';

test('a record of partition 0 failing every time while partition 1 (another node) reads fine: the resets back off', { timeout: 30_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.leaders = [1, 2];
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const log = recorder((rec) => (rec.partition === 0 ? Promise.reject(new Error('schema registry unavailable')) : undefined));
  const errors: Array<{ error: unknown; attempt: number }> = [];
  const r = await start(kafka, log, errors);
  const stopAnswering = autoAnswer(kafka, (f) => FakeKafka.response([...FakeKafka.offsets(f)].map(([p, o]) => [p, [batch([Number(o), Number(o) + 1])]])));
  try {
    await tick(4_000);
  } finally {
    stopAnswering();
    await teardown(kafka, r);
  }
  const resets = log.events.filter((e) => e === 'reset').length;
  const attempts = errors.map((e) => e.attempt);
  // one backoff in a row (500, 1000, 2000 ms): at most ~4 resets in 4 s, attempts reaching 3
  assert.ok(resets <= 5 && Math.max(0, ...attempts) >= 3, `${resets} resets in 4 s, onError attempts ${attempts.join(',')}`);
});
