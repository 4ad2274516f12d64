// Probes of the aborted-transaction filter against Kafka's rules (what holds).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import { FakeKafka, TOPIC_ID, batch, delivered, options, recorder, until, type FakeBatch } from '../review-2026-12-07i/fake.ts';

function txn(offsets: number[], pid: bigint): FakeBatch {
  return { ...batch(offsets), attributes: 0x10, producerId: pid };
}
function marker(offset: number, pid: bigint, commit: boolean, empty = false): FakeBatch {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(commit ? 1 : 0, 2);
  const b = batch([offset], { control: true });
  return { ...b, attributes: 0x30, producerId: pid, records: empty ? [] : [{ ...b.records[0]!, key, value: Buffer.alloc(6) }] };
}
function response(batches: FakeBatch[], aborted: Array<[bigint, number]>): unknown {
  return {
    responses: [
      { topicId: TOPIC_ID, partitions: [{ partitionIndex: 0, errorCode: 0, records: batches, abortedTransactions: aborted.map(([producerId, f]) => ({ producerId, firstOffset: BigInt(f) })) }] },
    ],
  };
}

async function run(responses: Array<(from: bigint) => unknown>, expect: number[]): Promise<void> {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 0n);
  const source = new KafkaFetchSource(options());
  const stop = new AbortController();
  const log = recorder();
  const running = source.run(log, stop.signal);
  try {
    for (const r of responses) {
      const f = await kafka.nextFetch();
      f.resolve(r(FakeKafka.offsets(f).get(0)!));
    }
    const f = await kafka.nextFetch();
    kafka.fetches.unshift(f);
    assert.deepEqual(delivered(log, 0), expect);
  } finally {
    stop.abort();
    for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response([]));
    await running.catch(() => undefined);
    await source.close();
    kafka.restore();
  }
}

test('interleaved producers: aborted P1, committed P2, P1 again committed', async () => {
  await run([() => response([txn([0], 1n), txn([1], 2n), txn([2], 1n), marker(3, 2n, true), marker(4, 1n, false), txn([5], 1n), marker(6, 1n, true), batch([7])], [[1n, 0]])], [1, 5, 7]);
});

test('abort marker in a later response than the data', async () => {
  await run(
    [
      () => response([txn([0, 1], 1n)], [[1n, 0]]),
      (from) => {
        assert.equal(from, 2n);
        return response([marker(2, 1n, false), txn([3], 1n), marker(4, 1n, true)], [[1n, 0]]);
      },
    ],
    [3],
  );
});

test('two aborted transactions of one producer around a committed one (list unsorted)', async () => {
  await run(
    [
      () =>
        response(
          [txn([0], 1n), marker(1, 1n, false), txn([2], 1n), marker(3, 1n, true), txn([4], 1n), marker(5, 1n, false), batch([6])],
          [
            [1n, 4],
            [1n, 0],
          ],
        ),
    ],
    [2, 6],
  );
});

test('fetch starting inside an aborted transaction (first offset below the fetch offset)', async () => {
  await run(
    [
      () => response([batch([0, 1])], []),
      (from) => {
        assert.equal(from, 2n);
        return response([txn([2], 7n), marker(3, 7n, false), txn([4], 7n), marker(5, 7n, true)], [[7n, 1]]);
      },
    ],
    [0, 1, 4],
  );
});

test('an empty control batch is not an abort marker (as Kafka: its producer stays aborted until a marker)', async () => {
  await run([() => response([txn([0], 1n), marker(1, 1n, false, true), marker(2, 1n, false), txn([3], 1n), marker(4, 1n, true)], [[1n, 0]])], [3]);
});
void until;
