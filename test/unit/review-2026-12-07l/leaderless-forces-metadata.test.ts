// Finding (medium, one leaderless partition slows every partition): while ANY owned partition has
// no leader in the metadata, every loop forces a metadata request before EVERY fetch. #readLeaders
// (which each loop now runs on the metadata it reads before each fetch) sets `#forceMetadata =
// true` for each leaderless partition on every call, and #metadata() consumes the flag on the next
// call — the next fetch of any loop. A forced metadata read is a network round trip to a bootstrap
// broker (the client's getFirstAvailable tries the configured brokers IN ORDER: when the first is
// the dead one, each forced read first waits for its connection attempt — connectTimeout 5 s when
// its host is gone), with the client's retries (10, 1 s apart).
// So during an outage of one broker (its partitions leaderless until re-elected, or for good with
// one replica), the healthy nodes' loops each wait for that round trip before every fetch: their
// throughput drops to one fetch per metadata round trip, and a metadata outage stops them. The
// supervisor already polls the metadata every 250 ms while a partition is leaderless (forced):
// that alone suffices to find the new leader.
// Sequence: partitions 0 (node 1) and 1 (leaderless); a forced metadata read takes 50 ms, a cached
// one nothing; fetches answered at once for 1 s → partition 0 is fetched ~20 times instead of
// hundreds (baseline: the same with partition 1 led by node 2).
// Fix: only the supervisor's leaderless polling forces the metadata; a loop forces it only after
// its own fetch failed (or read leaders from the client's cache without forcing when a partition
// it does not fetch is leaderless).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeKafka, batch, recorder } from '../review-2026-12-07i/fake.ts';
import { autoAnswer, start, teardown, tick } from '../review-2026-12-07k/helpers.ts';
import { slowForcedMetadata } from './helpers.ts';

async function fetchesOfNode1(leaderOf1: number): Promise<{ fetches: number; forced: number }> {
  const kafka = new FakeKafka();
  kafka.leaders = [1, leaderOf1];
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const metadata = slowForcedMetadata(50);
  let fetches = 0;
  const r = await start(kafka, recorder(), []);
  const stopAnswering = autoAnswer(kafka, (f) => {
    if (f.options.node === 1) fetches++;
    return FakeKafka.response([...FakeKafka.offsets(f)].map(([p, o]) => [p, [batch([Number(o)])]]));
  });
  try {
    await tick(1_000);
  } finally {
    stopAnswering();
    await teardown(kafka, r);
  }
  return { fetches, forced: metadata.forced() };
}

test('a leaderless partition: the healthy node’s loop fetches as often as without it', { timeout: 30_000 }, async () => {
  const baseline = await fetchesOfNode1(2);
  const leaderless = await fetchesOfNode1(-1);
  assert.ok(
    leaderless.fetches >= baseline.fetches / 2,
    `node 1 fetched ${leaderless.fetches} times in 1 s with partition 1 leaderless (${leaderless.forced} forced metadata reads), ${baseline.fetches} times without (${baseline.forced} forced)`,
  );
});
