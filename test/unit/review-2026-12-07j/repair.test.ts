// Finding (regression of the fixes): the transient-error reset and rewind() overwrite
// #committedAtAssignment with a fresh read, so repairPosition() no longer compares with the position
// committed WHEN THE PARTITION WAS ASSIGNED (types.ts). Sequence: partition assigned while the group
// is at 100 (idle at its end); the previous owner's late commit moves the group back to 50; a broker
// hiccup (transient fetch error), a reset or a rewind re-reads 50: repairPosition() now says "nothing to
// repair" and the source reads again from 50. KafkaSource keeps the value read at assignment.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import { FakeKafka, TOPIC, batch, options, recorder, until } from '../review-2026-12-07i/fake.ts';

async function setup(
  onRecord?: Parameters<typeof recorder>[0],
): Promise<{ kafka: FakeKafka; source: KafkaFetchSource; stop: AbortController; running: Promise<void>; log: ReturnType<typeof recorder> }> {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 100n);
  const source = new KafkaFetchSource(options({ onError: () => undefined }));
  const stop = new AbortController();
  const log = recorder(onRecord);
  const running = source.run(log, stop.signal);
  const f = await kafka.nextFetch();
  assert.equal(FakeKafka.offsets(f).get(0), 100n);
  f.resolve(FakeKafka.response([]));
  kafka.committed.set(0, 50n); // the previous owner's late commit
  return { kafka, source, stop, running, log };
}

async function teardown(kafka: FakeKafka, source: KafkaFetchSource, stop: AbortController, running: Promise<void>): Promise<void> {
  stop.abort();
  for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response([]));
  await running.catch(() => undefined);
  await source.close();
  kafka.restore();
}

test('repairPosition after a transient fetch error and a reset still repairs to the position at assignment', { timeout: 20_000 }, async () => {
  let fail = true;
  const { kafka, source, stop, running, log } = await setup(() => (fail ? ((fail = false), Promise.reject(new Error('schema load failed'))) : undefined));
  try {
    const ref = { topic: TOPIC, partition: 0 };
    assert.deepEqual(await source.repairPosition(ref), { ...ref, offset: 100n, epoch: -1 }, 'before the error');
    (await kafka.nextFetch()).reject(Object.assign(new Error('Connection closed'), { canRetry: true }));
    assert.deepEqual(await source.repairPosition(ref), { ...ref, offset: 100n, epoch: -1 }, 'after a fetch error');
    // a reset (the handler failed) reads the committed positions again
    (await kafka.nextFetch()).resolve(FakeKafka.response([[0, [batch([100])]]]));
    await until(() => log.events.includes('reset'), 'the reset');
    const repair = await source.repairPosition(ref);
    const next = await kafka.nextFetch();
    kafka.fetches.unshift(next);
    assert.deepEqual(repair, { ...ref, offset: 100n, epoch: -1 }, `no repair; the source now reads from ${FakeKafka.offsets(next).get(0)}`);
  } finally {
    await teardown(kafka, source, stop, running);
  }
});

test('repairPosition after a rewind still repairs to the position at assignment', { timeout: 20_000 }, async () => {
  const { kafka, source, stop, running } = await setup();
  try {
    const ref = { topic: TOPIC, partition: 0 };
    await source.rewind(() => undefined);
    assert.deepEqual(await source.repairPosition(ref), { ...ref, offset: 100n, epoch: -1 });
  } finally {
    await teardown(kafka, source, stop, running);
  }
});
