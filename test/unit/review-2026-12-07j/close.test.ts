// Finding (low): close() while the handler holds a record (backpressure) does not stop the delivery:
// when the hold ends, the rest of the response is handed over AFTER close() resolved, i.e. after this
// member left the group (its partitions may already be another member's). #deliver checks the
// generation and the signal, not #closing. The stream path stops: a closed stream reads nothing more.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import { FakeKafka, batch, deferred, delivered, options, recorder, until } from '../review-2026-12-07i/fake.ts';

test('nothing is delivered after close() resolved', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 0n);
  const hold = deferred();
  const log = recorder((r) => (r.offset === 0n ? hold.promise : undefined));
  const source = new KafkaFetchSource(options());
  const stop = new AbortController();
  const running = source.run(log, stop.signal);
  try {
    (await kafka.nextFetch()).resolve(FakeKafka.response([[0, [batch([0, 1, 2, 3])]]]));
    await until(() => delivered(log, 0).length === 1, 'held at 0');
    await source.close();
    log.events.push('closed');
    hold.resolve();
    // run() ends once close() began (the contract), having handed nothing more over
    await running;
    assert.deepEqual(log.events.slice(log.events.indexOf('closed')), ['closed'], log.events.join(' '));
  } finally {
    stop.abort();
    for (const f of kafka.fetches.splice(0)) f.reject(Object.assign(new Error('Client is closed.'), { canRetry: false }));
    await running.catch(() => undefined);
    kafka.restore();
  }
});
