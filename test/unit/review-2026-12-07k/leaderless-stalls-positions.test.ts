// Finding (high, a stall of healthy partitions): positions need the log bounds of WHOLE topics.
// FetchPositions#logBounds calls listOffsets({ topics }) without a `partitions` filter, and the
// real client (consumer.js #listOffsets) then asks for every partition of the topic and fails the
// whole call when one of them has no leader (leader -1: its only replica's broker is down) —
// first test below, against the real client. So while ANY partition of a subscribed topic is
// leaderless, even one another member owns, resolve() fails, the supervisor backs off and retries
// forever, and no partition without a position can start: at start-up, after a rebalance, after a
// reset (handler failure) and after a rewind (pause/resume). One loop per leader keeps healthy
// partitions going only while nothing needs a position; moveIntoLog has the same dependency.
//
// Sequences: (a) this member owns partition 0 (leader 1, healthy); partition 1 (not owned) is
// leaderless → partition 0 is never fetched. (b) both owned and reading; partition 1 loses its
// leader; a handler failure on partition 0 resets → partition 0 is never fetched again.
// Fix: read bounds only for the partitions being resolved (`partitions: { [topic]: [...] }`),
// grouped per leader, and resolve each partition whose bounds (and committed read) came back;
// leave the others without a position (asked again), instead of failing the whole round.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeKafka, TOPIC, batch, delivered, recorder, until } from '../review-2026-12-07i/fake.ts';
import { Consumer, ResponseError } from '@platformatic/kafka';
import { OutageKafka, start, teardown } from './helpers.ts';

test('(evidence, holds) the real client: listOffsets of a topic with a leaderless partition fails as a whole', { timeout: 20_000 }, async () => {
  const consumer = new Consumer({ clientId: 'probe-real', groupId: 'g', bootstrapBrokers: ['127.0.0.1:1'], retries: 0 });
  let proto: object | null = Object.getPrototypeOf(consumer) as object | null;
  let kMetadata: symbol | undefined;
  while (proto !== null && kMetadata === undefined) {
    kMetadata = Object.getOwnPropertySymbols(proto).find((s) => s.description === 'plt.kafka.base.metadata');
    proto = Object.getPrototypeOf(proto) as object | null;
  }
  assert.ok(kMetadata !== undefined);
  const metadata = {
    brokers: new Map([[1, { host: '127.0.0.1', port: 1 }]]),
    topics: new Map([
      [
        TOPIC,
        {
          id: 'tid',
          partitionsCount: 2,
          partitions: [
            { leader: 1, leaderEpoch: 0, replicas: [1], offlineReplicas: [] },
            { leader: -1, leaderEpoch: 0, replicas: [2], offlineReplicas: [2] },
          ],
        },
      ],
    ]),
  };
  Object.defineProperty(consumer, kMetadata, { value: (_options: unknown, callback: (error: Error | null, value: unknown) => void) => callback(null, metadata) });
  try {
    const error = (await consumer.listOffsets({ topics: [TOPIC], timestamp: -2n }).then(
      () => undefined,
      (e: unknown) => e,
    )) as { message?: string; errors?: Array<{ message?: string }> } | undefined;
    assert.ok(error !== undefined, 'listOffsets of the whole topic fails');
    const messages = (error.errors ?? []).map((e) => e.message);
    assert.ok(messages.includes('Cannot get a connection: the broker is not available in the current cluster metadata.'), `the leaderless partition fails the call: ${messages.join(' | ')}`);
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
});

test('(a) a leaderless partition this member does not own: its own healthy partition still starts', { timeout: 20_000 }, async () => {
  const kafka = new OutageKafka();
  kafka.leaders = [1, -1];
  kafka.assignment = [0];
  kafka.committed.set(0, 5n);
  const log = recorder();
  const errors: Array<{ error: unknown; attempt: number }> = [];
  const r = await start(kafka, log, errors);
  try {
    await until(() => kafka.fetches.some((f) => FakeKafka.offsets(f).has(0)), 'a fetch of partition 0', 3_000).catch(() => undefined);
    assert.ok(
      kafka.fetches.some((f) => FakeKafka.offsets(f).get(0) === 5n),
      `partition 0 (leader 1, up) was never fetched: ${kafka.listOffsetsCalls} listOffsets calls failed, ${errors.length} errors reported`,
    );
  } finally {
    await teardown(kafka, r);
  }
});

test('(b) a partition loses its leader, then a handler failure resets: the healthy partition is read again', { timeout: 20_000 }, async () => {
  const kafka = new OutageKafka();
  kafka.leaders = [1, 2];
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  let failed = false;
  const log = recorder((rec) => (rec.partition === 0 && rec.offset === 1n && !failed ? ((failed = true), Promise.reject(new Error('schema load failed'))) : undefined));
  const r = await start(kafka, log, []);
  try {
    await until(() => kafka.fetches.length === 2, 'a fetch to each leader');
    const one = kafka.fetches.find((f) => f.options.node === 1)!;
    const two = kafka.fetches.find((f) => f.options.node === 2)!;
    kafka.fetches.splice(0);
    two.resolve(FakeKafka.response([[1, [batch([0])]]]));
    await until(() => delivered(log, 1).length === 1, 'partition 1 read');
    kafka.leaders = [1, -1]; // broker 2 (partition 1's only replica) goes down
    kafka.down.add(2);
    one.resolve(FakeKafka.response([[0, [batch([0, 1, 2])]]])); // offset 1 fails in the handler: a reset
    await until(() => log.events.includes('reset'), 'the reset');
    await until(() => kafka.fetches.some((f) => FakeKafka.offsets(f).has(0)), 'partition 0 fetched again', 3_000).catch(() => undefined);
    assert.ok(
      kafka.fetches.some((f) => FakeKafka.offsets(f).get(0) === 0n),
      `partition 0 (leader 1, up) not fetched after the reset; events: ${log.events.join(' ')}`,
    );
  } finally {
    await teardown(kafka, r);
  }
});

test('(c) OFFSET_OUT_OF_RANGE below the log start while another partition of the topic is leaderless: moved into the log', { timeout: 20_000 }, async () => {
  const kafka = new OutageKafka();
  kafka.leaders = [1, 2];
  kafka.assignment = [0];
  kafka.committed.set(0, 0n);
  const log = recorder();
  const errors: Array<{ error: unknown; attempt: number }> = [];
  const r = await start(kafka, log, errors);
  try {
    const first = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(first).get(0), 0n);
    kafka.leaders = [1, -1]; // partition 1 (another member's) loses its only replica
    kafka.logStart.set(0, 10n); // retention removed partition 0's first records
    first.reject(new ResponseError(1, 17, { '/responses/0/partitions/0': [1, null] }, undefined));
    const deadline = Date.now() + 3_000;
    let offset: bigint | undefined = 0n;
    while (offset === 0n && Date.now() < deadline) {
      const f = await kafka.nextFetch();
      offset = FakeKafka.offsets(f).get(0);
      if (offset === 0n) f.reject(new ResponseError(1, 17, { '/responses/0/partitions/0': [1, null] }, undefined));
      else kafka.fetches.unshift(f);
    }
    assert.equal(offset, 10n, `partition 0 stays at 0 (out of range) while its log bounds cannot be read: ${errors.length} errors reported`);
  } finally {
    await teardown(kafka, r);
  }
});
