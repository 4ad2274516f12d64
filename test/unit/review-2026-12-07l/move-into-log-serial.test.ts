// Finding (low–medium: it takes a leader that answers OFFSET_OUT_OF_RANGE and then stops answering;
// one leader's trouble then stalls every leader, and the shutdown): #moveIntoLog reads the
// log bounds (two listOffsets per partition) INSIDE #serially, the queue every loop's delivery
// goes through, and neither that read nor the queue is raced with the halt. After
// OFFSET_OUT_OF_RANGE from node 2, the bounds of node 2's partitions are read from node 2 — the
// broker that is in trouble (an unclean election, a restart) — with the client's retries (10,
// 1 s apart, plus its connection timeouts): meanwhile no response of any other node is handed
// over, and "a partition whose bounds cannot be read is left (the fetch fails again, and this runs
// again)", so it repeats on every retry of node 2's loop. The per-leader loops exist so that a
// failing broker stalls only the partitions it leads (review 2026-12-07j finding 1). Also run()
// does not end on the signal while that read hangs: the loop's catch awaits it, run()'s finally
// awaits the loop, and Pipeline.close() awaits run() before it closes the client.
// Sequence: partitions 0 (node 1) and 1 (node 2); node 2's fetch fails OFFSET_OUT_OF_RANGE; the
// listOffsets of partition 1 hangs; node 1's response with records of partition 0 → (a) not handed
// over; (b) stop.abort() → run() still pending.
//
// Also (low): the truncation reset that follows the read is not guarded like a handler failure's
// (`#closing === undefined && !signal.aborted`): onReset reaches the core after the signal, while
// Pipeline.close() drains — the core drops every partition's in-memory progress, so the final
// commit commits less and the next owner reads it all again. Sequence (c): partition 0 at 100;
// its log truncated to 80; the fetch fails OFFSET_OUT_OF_RANGE; the bounds read is slow; the
// signal fires; the read returns → onReset after the signal.
// Fix: read the bounds outside the queue (raced with the halt), then apply them in a short
// serialized task that checks the generation and the position it read (and keeps the rule that
// positions only move up into the log).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResponseError } from '@platformatic/kafka';
import { FakeKafka, batch, delivered, recorder, until } from '../review-2026-12-07i/fake.ts';
import { start, teardown } from '../review-2026-12-07k/helpers.ts';
import { holdListOffsets } from './helpers.ts';

async function setUp(): Promise<{ kafka: FakeKafka; log: ReturnType<typeof recorder>; r: Awaited<ReturnType<typeof start>>; hold: ReturnType<typeof holdListOffsets> }> {
  const kafka = new FakeKafka();
  kafka.leaders = [1, 2];
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const log = recorder();
  const r = await start(kafka, log, []);
  await until(() => kafka.fetches.length === 2, 'a fetch to each node');
  const hold = holdListOffsets(1); // from now on: partition 1's bounds cannot be read (its leader is in trouble)
  const two = kafka.fetches.find((f) => f.options.node === 2)!;
  kafka.fetches.splice(kafka.fetches.indexOf(two), 1);
  two.reject(new ResponseError(1, 17, { '/responses/0/partitions/0': [1, null] }, undefined));
  await until(() => hold.held() > 0, 'the bounds of partition 1 asked for');
  return { kafka, log, r, hold };
}

test('(a) OFFSET_OUT_OF_RANGE of node 2 whose bounds read hangs: node 1’s records are still handed over', { timeout: 20_000 }, async () => {
  const { kafka, log, r, hold } = await setUp();
  try {
    const one = kafka.fetches.find((f) => f.options.node === 1)!;
    kafka.fetches.splice(kafka.fetches.indexOf(one), 1);
    one.resolve(FakeKafka.response([[0, [batch([0, 1, 2])]]]));
    await until(() => delivered(log, 0).length === 3, 'partition 0 read', 1_000).catch(() => undefined);
    assert.deepEqual(delivered(log, 0), [0, 1, 2], 'node 1’s response waits in the queue behind node 2’s bounds read');
  } finally {
    hold.release();
    await teardown(kafka, r);
  }
});

test('(b) the signal while node 2’s bounds read hangs: run() ends', { timeout: 20_000 }, async () => {
  const { kafka, r, hold } = await setUp();
  try {
    r.stop.abort();
    for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response([]));
    await until(() => r.outcome() !== undefined, 'run() to end', 1_000).catch(() => undefined);
    assert.equal(r.outcome(), 'resolved', 'run() still waits for the listOffsets of the out-of-range partition 1 s after the signal');
  } finally {
    hold.release();
    await teardown(kafka, r);
  }
});

test('(c) the signal while a truncation’s bounds read is under way: no onReset after the signal', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 100n);
  const log = recorder();
  const r = await start(kafka, log, []);
  try {
    const f = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(f).get(0), 100n);
    kafka.logEnd.set(0, 80n); // an unclean election truncated the log below the position
    const hold = holdListOffsets(0);
    f.reject(new ResponseError(1, 17, { '/responses/0/partitions/0': [1, null] }, undefined));
    await until(() => hold.held() > 0, 'the bounds asked for');
    r.stop.abort();
    const atStop = log.events.length;
    hold.release();
    await until(() => r.outcome() !== undefined, 'run() to end');
    assert.deepEqual(log.events.slice(atStop), [], 'events after the signal');
  } finally {
    await teardown(kafka, r);
  }
});
