// Finding (medium, every partition of a broker stalls ~10 s on each leader move): a loop's request
// is built from the adapter's #leaders, which are read again only when the supervisor wakes (a
// fetch failed, an assignment, a reset...), while the client routes each Fetch by ITS OWN,
// fresher metadata (consumer.js #fetchNodeForRequest: all partitions on one node → that node;
// leaders that disagree → `options.node`). After a leader move (preferred-leader election,
// rolling broker restart, reassignment), node 1's loop still asks for {moved partition, staying
// partition} together; the client sends it to node 1, which answers NOT_LEADER_OR_FOLLOWER for the
// moved one; that error is retriable, so the client repeats THE SAME mixed request `retries` (10)
// times, `retryDelay` (1 s) apart, dropping the staying partition's records each time. Only then
// does fetch() reject, the supervisor read the leaders again and split the request. The stream
// path never mixes: it groups partitions by the client's kGetFetchNode every round.
// Sequence (the real client's fetch, the broker simulated below it): partitions 0 and 1 on node 1,
// read; partition 0 moves to node 2; new records on both → partition 1 (still on node 1) gets
// nothing for the client's whole retry budget (asserted: nothing within 2 s; about 10 s in fact).
// Fix: build each request from the client's current leaders (a cached `metadata()` call before
// each fetch is cheap) and hand a partition that moved to its node's loop at once, or wake the
// supervisor when the cached leaders differ from #leaders; and/or give fetch() a small retry budget
// of its own (its retries are the loop's job).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { delivered, recorder, until } from '../review-2026-12-07i/fake.ts';
import { RealFetchKafka, start, teardown } from './helpers.ts';

test('a leader move does not stall the partitions that stayed on the old leader', { timeout: 30_000 }, async () => {
  const kafka = new RealFetchKafka();
  kafka.leaders = [1, 1];
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  kafka.available.set(0, 4n);
  kafka.available.set(1, 4n);
  const log = recorder();
  const r = await start(kafka, log, []);
  try {
    await until(() => delivered(log, 0).length === 4 && delivered(log, 1).length === 4, 'both partitions read to 4');
    kafka.leaders = [2, 1]; // partition 0 moves to node 2; partition 1 stays on node 1
    kafka.available.set(0, 8n);
    kafka.available.set(1, 8n);
    await until(() => delivered(log, 1).length === 8, 'partition 1 reads on', 2_000).catch(() => undefined);
    const failed = kafka.calls.filter((c) => c.failed);
    assert.deepEqual(
      delivered(log, 1),
      [0, 1, 2, 3, 4, 5, 6, 7],
      `partition 1 (node 1, not moved) stalled: ${failed.length} fetches of {${[...(failed[0]?.partitions.keys() ?? [])].join(',')}} sent to node ${failed[0]?.node} failed with NOT_LEADER_OR_FOLLOWER`,
    );
  } finally {
    kafka.healed = true;
    await teardown(kafka, r);
  }
});

test('(holds) without a leader move the real client path reads both partitions', { timeout: 30_000 }, async () => {
  const kafka = new RealFetchKafka();
  kafka.leaders = [1, 2];
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  kafka.available.set(0, 5n);
  kafka.available.set(1, 3n);
  const log = recorder();
  const r = await start(kafka, log, []);
  try {
    await until(() => delivered(log, 0).length === 5 && delivered(log, 1).length === 3, 'both partitions');
    assert.deepEqual(delivered(log, 0), [0, 1, 2, 3, 4]);
    assert.deepEqual(delivered(log, 1), [0, 1, 2]);
  } finally {
    kafka.healed = true;
    await teardown(kafka, r);
  }
});
