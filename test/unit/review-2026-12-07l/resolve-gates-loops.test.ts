// Finding (high, healthy partitions stall): a partition whose position cannot be resolved still
// keeps every loop from starting. #supervise starts loops only after a round where BOTH
// positions.resolve() and the metadata read succeeded: resolve() resolves each partition on its
// own (review 2026-12-07k finding 2) but then throws the first failure, the round `continue`s
// into its backoff, and the `for (… of this.#leaders) startLoop` below is never reached. A node
// whose loop is already running picks the resolved partitions up by itself, but a node without a
// loop gets none — and every node is without a loop at start-up, after a rewind (pause/resume:
// next.clear() ends every loop), after a reset (handler failure, truncation), and when a
// rebalance moves a partition to a node this member did not fetch from. So one owned partition
// whose leader's broker is down (the client's listOffsets fails for it: OutageKafka, like the
// real client) holds every other partition of the member, for as long as the outage lasts; the
// same holds while one resolve merely hangs (a slow committed read: the supervisor awaits it and
// starts nothing).
// Sequences: (a) start-up, partitions 0 (leader 1, up) and 1 (leader 2, down) → partition 0 is
// never fetched. (b) both read; broker 2 goes down; a rewind → partition 0 never fetched again.
// (c) start-up, partition 1's committed read hangs → partition 0 not fetched.
// Fix: start loops for every partition with a position and a leader in every round, also after a
// failed resolve (e.g. resolve() returns the failures instead of throwing, the supervisor reports
// them and waits with #waitForWake(backoff) — its `sleep(backoff)` is not woken by #wake() either:
// after a few failures a rebalance or an ended loop waits up to 10 s); or resolve partitions in the background, each waking
// the supervisor when it gets a position.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeKafka, batch, deferred, delivered, recorder, until } from '../review-2026-12-07i/fake.ts';
import { OutageKafka, start, teardown } from '../review-2026-12-07k/helpers.ts';
import { delayListOffsets } from './helpers.ts';

const fetchedAt = (kafka: FakeKafka, partition: number, offset: bigint): boolean => kafka.fetches.some((f) => FakeKafka.offsets(f).get(partition) === offset);

test('(a) start-up with an owned partition whose leader is down: the healthy partition is fetched', { timeout: 20_000 }, async () => {
  const kafka = new OutageKafka();
  kafka.leaders = [1, 2];
  kafka.down.add(2);
  kafka.committed.set(0, 5n);
  kafka.committed.set(1, 7n);
  const errors: Array<{ error: unknown; attempt: number }> = [];
  const r = await start(kafka, recorder(), errors);
  try {
    await until(() => fetchedAt(kafka, 0, 5n), 'a fetch of partition 0', 2_000).catch(() => undefined);
    assert.ok(fetchedAt(kafka, 0, 5n), `partition 0 (leader 1, up) never fetched: ${errors.length} failed rounds reported, ${kafka.requested} fetches`);
  } finally {
    await teardown(kafka, r);
  }
});

test('(b) a rewind while one owned partition’s broker is down: the healthy partition is read again', { timeout: 20_000 }, async () => {
  const kafka = new OutageKafka();
  kafka.leaders = [1, 2];
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  delayListOffsets(30); // a round trip: the loops' stale fetches return before the positions are read
  const log = recorder();
  const r = await start(kafka, log, []);
  try {
    await until(() => kafka.fetches.length === 2, 'a fetch to each node');
    for (const f of kafka.fetches.splice(0)) {
      const p = f.options.node === 1 ? 0 : 1;
      f.resolve(FakeKafka.response([[p, [batch([0, 1])]]]));
    }
    await until(() => delivered(log, 0).length === 2 && delivered(log, 1).length === 2 && kafka.fetches.length === 2, 'both read, fetching on');
    kafka.down.add(2); // partition 1's leader goes down (the metadata still names node 2)
    await r.source.rewind(() => log.events.push('switch'));
    for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response([])); // in flight: stale now
    await until(() => fetchedAt(kafka, 0, 0n), 'partition 0 fetched from its committed position', 2_000).catch(() => undefined);
    assert.ok(fetchedAt(kafka, 0, 0n), `partition 0 not fetched after the rewind; events: ${log.events.join(' ')}`);
  } finally {
    await teardown(kafka, r);
  }
});

test('(c) start-up with one partition’s committed read hanging: the other partition is fetched', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.leaders = [1, 2];
  const slow = deferred<bigint | undefined>();
  kafka.committedHook = (p) => (p === 1 ? slow.promise : Promise.resolve(3n));
  const r = await start(kafka, recorder(), []);
  try {
    await until(() => fetchedAt(kafka, 0, 3n), 'a fetch of partition 0', 1_500).catch(() => undefined);
    assert.ok(fetchedAt(kafka, 0, 3n), 'partition 0 waits for partition 1’s committed read');
  } finally {
    slow.resolve(3n);
    kafka.committedHook = undefined;
    await teardown(kafka, r);
  }
});
