// Finding: the fix for OFFSET_OUT_OF_RANGE above the log end moves the position back to the log
// start WITHOUT handler.onReset(): offsets the core already received in this ownership are delivered
// again (order within the partition goes backwards), which the contract allows only after onReset
// or a rewind's onSwitch ("every offset once per ownership", docs/design/kafka-fetch.md).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Consumer, ResponseError } from '@platformatic/kafka';
import { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import { FakeKafka, TOPIC, batch, delivered, options, recorder, until } from '../review-2026-12-07i/fake.ts';

function outOfRange(partition: number, logStartOffset: bigint, highWatermark: bigint): ResponseError {
  const response = { errorCode: 0, responses: [{ topicId: 't', partitions: [{ partitionIndex: partition, errorCode: 1, logStartOffset, highWatermark, records: null }] }] };
  return new ResponseError(1, 17, { [`/responses/0/partitions/${partition}`]: [1, null] }, response);
}

test('a log truncated below the position: offsets seen in this ownership come again only after onReset', { timeout: 30_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 0n);
  let end = 10n;
  // listOffsets: earliest (-2) is 0, latest is `end`
  Object.defineProperty(Consumer.prototype, 'listOffsets', {
    configurable: true,
    writable: true,
    value: (o: { timestamp?: bigint }) => Promise.resolve(new Map([[TOPIC, [o.timestamp === -2n ? 0n : end]]])),
  });
  const source = new KafkaFetchSource(options({ onError: () => undefined }));
  const stop = new AbortController();
  const log = recorder();
  const running = source.run(log, stop.signal);
  try {
    const f1 = await kafka.nextFetch();
    f1.resolve(FakeKafka.response([[0, [batch([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])]]]));
    await until(() => delivered(log, 0).length === 10, 'ten records');
    // unclean leader election: the new leader's log ends at 5
    end = 5n;
    const f2 = await kafka.nextFetch();
    assert.equal(FakeKafka.offsets(f2).get(0), 10n);
    f2.reject(outOfRange(0, 0n, 5n));
    const f3 = await kafka.nextFetch();
    const again = FakeKafka.offsets(f3).get(0)!;
    f3.resolve(FakeKafka.response([[0, [batch([0, 1, 2, 3, 4])]]]));
    await until(() => delivered(log, 0).length >= 10 + Number(5n - again), 'records after the reset');
    const i = log.events.indexOf('r0:9');
    const after = log.events.slice(i + 1);
    const firstRecord = after.findIndex((e) => e.startsWith('r0:'));
    assert.ok(after.slice(0, firstRecord).includes('reset'), `offsets ${again}.. delivered again without onReset: ${log.events.join(' ')}`);
  } finally {
    stop.abort();
    for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response([]));
    await running.catch(() => undefined);
    await source.close();
    kafka.restore();
  }
});
