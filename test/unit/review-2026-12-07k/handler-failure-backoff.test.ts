// Finding (low, resets multiply with the number of leader nodes): with a handler that fails on
// every record (schema registry down, a ledger that cannot load), each leader loop backs off on
// its OWN count of failures, but every failure resets EVERY partition (#reset: all committed
// offsets and both log bounds read again, onReset). With partitions on k nodes the resets come k
// times as often as with one (measured: 8 resets in 4 s on 2 nodes, onError attempts
// 1,1,2,2,3,3,4,4; 4 on one node), and a response made stale by another loop's reset counts as a
// success (`failures = 0`), which can restart a loop's count (seen: 1,2,1,3,1,2,4,3 when one node
// answers slower). Not a spin (each loop sleeps at least 500 ms), but an amplified load on the
// coordinator during an outage of a dependency, and attempts that understate how long it lasts.
// Sequence: partitions 0 (node 1) and 1 (node 2); every record rejects; fetches answered at once;
// count resets and onError attempts over 4 s.
// Fix: count handler failures once for the source (not per loop), reset that count only after a
// record was handed over without failure, back every loop off by it; a stale response is neither
// a success nor a failure.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeKafka, batch, recorder, type PendingFetch } from '../review-2026-12-07i/fake.ts';
import { autoAnswer, start, teardown, tick } from './helpers.ts';

function answerAtRequested(f: PendingFetch): unknown {
  return FakeKafka.response([...FakeKafka.offsets(f)].map(([p, offset]) => [p, [batch([Number(offset), Number(offset) + 1])]]));
}

async function storm(leaders: number[], ms: number): Promise<{ resets: number; maxAttempt: number; attempts: number[] }> {
  const kafka = new FakeKafka();
  kafka.partitions = leaders.length;
  kafka.leaders = leaders;
  kafka.assignment = leaders.map((_, i) => i);
  for (let p = 0; p < leaders.length; p++) kafka.committed.set(p, 0n);
  const log = recorder(() => Promise.reject(new Error('schema registry unavailable')));
  const errors: Array<{ error: unknown; attempt: number }> = [];
  const r = await start(kafka, log, errors);
  const stopAnswering = autoAnswer(kafka, answerAtRequested);
  try {
    await tick(ms);
  } finally {
    stopAnswering();
    await teardown(kafka, r);
  }
  const attempts = errors.map((e) => e.attempt);
  return { resets: log.events.filter((e) => e === 'reset').length, maxAttempt: Math.max(0, ...attempts), attempts };
}

test('a handler failing on every record, partitions on two leaders: the resets back off', { timeout: 30_000 }, async () => {
  const { resets, maxAttempt, attempts } = await storm([1, 2], 4_000);
  // one shared exponential backoff (500, 1000, 2000 ms): at most 4 resets in 4 s, attempts reaching 3
  assert.ok(resets <= 5 && maxAttempt >= 3, `${resets} resets in 4 s, onError attempts ${attempts.join(',')}`);
});

test('(holds) a handler failing on every record, one leader: the resets back off', { timeout: 30_000 }, async () => {
  const { resets, maxAttempt, attempts } = await storm([1], 4_000);
  assert.ok(resets <= 5 && maxAttempt >= 3, `${resets} resets in 4 s, onError attempts ${attempts.join(',')}`);
});
