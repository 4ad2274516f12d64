// Finding (high, a record lost): a handler failure is not followed by a reset when the assignment
// changed while the record's promise was pending. #deliverResponse resets only when
// `generation === positions.generation`; an assignment change (a partition added or revoked)
// bumps the generation but KEEPS the positions of the partitions kept (FetchPositions.assign), so
// the kept partition's position is already past the failed record. The loop then treats the
// failure as a fetch error (onError, backoff) and fetches on from after it: the record whose
// promise rejected (e.g. its schema load failed: pipeline.ts onRecord rethrows, the record is NOT
// tracked) is never handed over again, and the core commits past it. The pipeline relies on the
// kept partition reading on after that record ("a record of theirs waiting for its schema stays
// valid", pipeline.ts onRevoked); the stream path always restarts (onReset) on a handler failure.
//
// Sequence: partition 0 read from 0; onRecord(0:1) returns a pending promise (a schema load); the
// group adds partition 2 (rebalance: a deploy); the schema load fails (the promise rejects) →
// no onReset, next fetch of partition 0 at offset 2: offset 1 skipped.
// Fix: reset on every handler failure unless closing (drop the generation condition): a second
// start-over after a rewind or a reset costs a re-read, never a record.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeKafka, batch, deferred, delivered, recorder, until } from '../review-2026-12-07i/fake.ts';
import { start, teardown } from './helpers.ts';

test('a handler failure after an assignment change that kept the partition: onReset and the failed record again', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 3;
  kafka.leaders = [1, 1, 1];
  kafka.assignment = [0];
  kafka.committed.set(0, 0n);
  kafka.committed.set(2, 0n);
  const schema = deferred();
  let held = false;
  const log = recorder((r) => {
    if (r.partition === 0 && r.offset === 1n && !held) {
      held = true;
      return schema.promise;
    }
    return undefined;
  });
  const r = await start(kafka, log);
  try {
    (await kafka.nextFetch()).resolve(FakeKafka.response([[0, [batch([0, 1, 2])]]]));
    await until(() => delivered(log, 0).length === 2, 'offset 1 held');
    kafka.join([0, 2]); // partition 2 added, partition 0 kept
    await new Promise((resolve) => setImmediate(resolve));
    schema.reject(new Error('schema load failed'));
    const next = await kafka.fetchIncluding(0);
    const offset = FakeKafka.offsets(next).get(0);
    kafka.fetches.unshift(next);
    assert.ok(
      log.events.includes('reset') && offset !== undefined && offset <= 1n,
      `offset 1 failed in the handler, yet the next fetch of partition 0 is from ${offset}; events: ${log.events.join(' ')}`,
    );
  } finally {
    await teardown(kafka, r);
  }
});

test('(holds) a handler failure with no assignment change: onReset, partition 0 from its committed offset', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 3;
  kafka.leaders = [1, 1, 1];
  kafka.assignment = [0];
  kafka.committed.set(0, 0n);
  const schema = deferred();
  let held = false;
  const log = recorder((r) => {
    if (r.partition === 0 && r.offset === 1n && !held) {
      held = true;
      return schema.promise;
    }
    return undefined;
  });
  const r = await start(kafka, log);
  try {
    (await kafka.nextFetch()).resolve(FakeKafka.response([[0, [batch([0, 1, 2])]]]));
    await until(() => delivered(log, 0).length === 2, 'offset 1 held');
    schema.reject(new Error('schema load failed'));
    const next = await kafka.fetchIncluding(0);
    kafka.fetches.unshift(next);
    assert.equal(FakeKafka.offsets(next).get(0), 0n);
    assert.deepEqual(log.events, ['assigned 0', 'r0:0', 'r0:1', 'reset']);
  } finally {
    await teardown(kafka, r);
  }
});
