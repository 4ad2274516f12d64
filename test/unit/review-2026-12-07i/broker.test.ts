// Probes against a real Kafka 4.x broker (REVIEW_KAFKA_BOOTSTRAP=host:port; skipped without it):
// Finding 7: two aborted transactions of the same producer in one Fetch response: the client's
// read_committed filter (Consumer#filterUncommittedMessages) keys aborted ranges by producerId, so the
// second aborted transaction overwrites the first and the FIRST one's records are delivered. The
// adapter trusts that filter (docs/design/kafka-fetch.md: "records of aborted transactions removed");
// the stream path shares the same filter, so KafkaSource is affected too.
// Finding 8 (confirmation of the fake probe): close() without aborting the signal does not end run().
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Producer } from '@platformatic/kafka';
import { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import { createTopic } from '../../helpers/kafka.ts';
import type { SourceRecord } from '../../../src/source/types.ts';

const bootstrap = process.env.REVIEW_KAFKA_BOOTSTRAP;
const skip = bootstrap === undefined ? 'REVIEW_KAFKA_BOOTSTRAP not set' : false;
const suffix = `${process.pid}-${Date.now()}`;

function source(topic: string, group: string, errors: unknown[] = []): KafkaFetchSource {
  return new KafkaFetchSource({
    brokers: [bootstrap!],
    clientId: 'review-i',
    groupId: group,
    topics: [topic],
    fetchMaxBytes: 1 << 20,
    fetchMaxWaitMs: 200,
    sessionTimeoutMs: 10_000,
    onError: (e) => errors.push(e),
  });
}

async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function handler(records: SourceRecord[], events: string[] = []) {
  return {
    onRecord: (r: SourceRecord) => void records.push(r),
    onAssigned: (ps: readonly unknown[]) => void events.push(`assigned ${ps.length}`),
    onRevoked: () => void events.push('revoked'),
    onReset: () => void events.push('reset'),
  };
}

test('records of aborted transactions are never delivered (two aborted transactions of one producer in one response)', { skip, timeout: 90_000 }, async () => {
  const topic = `review-i-aborted-${suffix}`;
  await createTopic(bootstrap!, topic, 1);
  const producer = new Producer({ clientId: 'review-i-tx', bootstrapBrokers: [bootstrap!], idempotent: true, acks: -1, transactionalId: `review-i-${suffix}` });
  try {
    for (const [prefix, outcome] of [
      ['a', 'abort'],
      ['b', 'abort'],
      ['c', 'commit'],
    ] as const) {
      const tx = await producer.beginTransaction();
      await tx.send({ messages: [1, 2, 3].map((i) => ({ topic, partition: 0, value: Buffer.from(`${prefix}${i}`) })) });
      await (outcome === 'abort' ? tx.abort() : tx.commit());
    }
  } finally {
    await producer.close();
  }
  const s = source(topic, `review-i-aborted-${suffix}`);
  const records: SourceRecord[] = [];
  const stop = new AbortController();
  const running = s.run(handler(records), stop.signal);
  try {
    await until(() => records.some((r) => r.value?.toString() === 'c3'), 'the committed transaction');
    assert.deepEqual(
      records.map((r) => r.value?.toString()),
      ['c1', 'c2', 'c3'],
    );
  } finally {
    stop.abort();
    await running.catch(() => undefined);
    await s.close();
  }
});

test('close() without aborting the signal ends run()', { skip, timeout: 90_000 }, async () => {
  const topic = `review-i-close-${suffix}`;
  await createTopic(bootstrap!, topic, 1);
  const errors: unknown[] = [];
  const s = source(topic, `review-i-close-${suffix}`, errors);
  const events: string[] = [];
  const stop = new AbortController();
  let ended: string | undefined;
  const running = s.run(handler([], events), stop.signal).then(
    () => void (ended = 'resolved'),
    (e: unknown) => void (ended = `rejected: ${(e as Error).message}`),
  );
  try {
    await until(() => events.includes('assigned 1'), 'the assignment');
    await s.close();
    await until(() => ended !== undefined, 'run() to end', 15_000).catch(() => undefined);
    assert.equal(ended, 'resolved', `run() after close(): ${ended ?? 'still running'}; onError: ${errors.map((e) => (e as Error).message).join(' | ')}`);
  } finally {
    stop.abort();
    await running;
  }
});
