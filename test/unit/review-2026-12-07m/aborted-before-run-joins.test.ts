// Finding (low): run() with a signal aborted before it starts (or close() already called) ends at
// once, as review 2026-12-07l asked — but #supervise still calls the client's joinGroup({})
// (untilHalted only drops its outcome). The member joins the group and is assigned partitions
// that nothing reads; with a live signal, the consumer then heartbeats and holds them (the group
// does not rebalance them away) until close(). Sequence: abort the signal; run() → resolves; the
// fake's joinGroup was called (it records the consumer).
// Fix: return before tracking topics and joining when the halt is already aborted
// (`if (halt.aborted) return;` at the top of #supervise).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import { FakeKafka, options, recorder } from '../review-2026-12-07i/fake.ts';

test('run() with an aborted signal: it does not join the group', { timeout: 10_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  const source = new KafkaFetchSource(options());
  try {
    const ac = new AbortController();
    ac.abort();
    await source.run(recorder(), ac.signal);
    assert.ok(kafka.consumer === undefined, 'joinGroup was called by a run that had ended');
  } finally {
    await source.close();
    kafka.restore();
  }
});
