// Finding: one failing leader node stalls every partition. #round sends one Fetch per node and
// awaits them with Promise.all: when one node's fetch fails (after the client's own retries), the
// responses of the healthy nodes are dropped, and the transient path resets every partition
// (onReset). While a broker is down, partitions led by healthy brokers never progress. The design
// says "one fetch loop per leader node".
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import { FakeKafka, batch, delivered, options, recorder, until } from '../review-2026-12-07i/fake.ts';

test('a failing leader does not stall partitions of a healthy leader', { timeout: 30_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.leaders = [1, 2];
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const source = new KafkaFetchSource(options({ onError: () => undefined }));
  const stop = new AbortController();
  const log = recorder();
  const running = source.run(log, stop.signal);
  try {
    for (let round = 0; round < 3 && delivered(log, 0).length === 0; round++) {
      await until(() => kafka.fetches.length >= 2, 'two fetches', 10_000);
      const fs = kafka.fetches.splice(0);
      const down = fs.find((f) => f.options.node === 2)!;
      const up = fs.find((f) => f.options.node === 1)!;
      up.resolve(FakeKafka.response([[0, [batch([0, 1])]]]));
      await new Promise((r) => setImmediate(r));
      down.reject(Object.assign(new Error('Connection refused'), { code: 'PLT_KFK_NETWORK', canRetry: true }));
    }
    assert.deepEqual(delivered(log, 0), [0, 1], `partition 0 got nothing; events: ${log.events.join(' ')}`);
  } finally {
    stop.abort();
    for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response([]));
    await running.catch(() => undefined);
    await source.close();
    kafka.restore();
  }
});
