// Records of aborted transactions on a source topic (read_committed), on both read paths. The
// fetch path (the default with the classic protocol) filters them itself by Kafka's consumer rules.
// The client's message stream (`kafka.readPath: stream`, and the consumer protocol) relies on
// @platformatic/kafka's Consumer#filterUncommittedMessages (2.12.1, the newest), which keeps one
// aborted range per producer id: a producer's earlier aborted transaction in the same response is
// delivered (review 2026-12-07i finding 5). docs/operations.md, "Transactional producers".
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Producer } from '@platformatic/kafka';
import { KafkaSource } from '../../src/source/kafka.ts';
import { KafkaFetchSource } from '../../src/source/kafka-fetch.ts';
import type { SourceHandler, SourceRecord } from '../../src/source/types.ts';
import { createTopic, sharedKafka, stopSharedKafka, uniqueTopic } from '../helpers/kafka.ts';

after(() => stopSharedKafka());

/** Writes each transaction's values to partition 0 of `topic`, then commits or aborts it. */
async function produce(bootstrap: string, topic: string, transactions: ReadonlyArray<readonly [string, 'commit' | 'abort']>): Promise<void> {
  const producer = new Producer({ clientId: 'aborted-tx', bootstrapBrokers: [bootstrap], idempotent: true, acks: -1, transactionalId: `${topic}-producer` });
  try {
    for (const [prefix, outcome] of transactions) {
      const tx = await producer.beginTransaction();
      await tx.send({ messages: [1, 2, 3].map((i) => ({ topic, partition: 0, value: Buffer.from(`${prefix}${i}`) })) });
      await (outcome === 'abort' ? tx.abort() : tx.commit());
    }
  } finally {
    await producer.close();
  }
}

type ReadPath = 'fetch' | 'stream';

/** The values the source delivers until `last` arrives. */
async function consume(path: ReadPath, bootstrap: string, topic: string, last: string): Promise<string[]> {
  const options = { brokers: [bootstrap], clientId: 'aborted-tx', groupId: `${topic}-group`, topics: [topic], fetchMaxBytes: 1 << 20, fetchMaxWaitMs: 100, sessionTimeoutMs: 10_000 };
  const source = path === 'fetch' ? new KafkaFetchSource(options) : new KafkaSource(options);
  const values: string[] = [];
  const stop = new AbortController();
  let seen: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (seen = resolve));
  const handler: SourceHandler = {
    onRecord: (r: SourceRecord) => {
      values.push(r.value?.toString() ?? '');
      if (r.value?.toString() === last) seen();
    },
    onAssigned: () => undefined,
    onRevoked: () => undefined,
    onReset: () => undefined,
  };
  const running = source.run(handler, stop.signal);
  try {
    await Promise.race([done, running.then(() => Promise.reject(new Error('the source stopped')))]);
    return values;
  } finally {
    stop.abort();
    await running.catch(() => undefined);
    await source.close();
  }
}

/** The values a fresh topic delivers on `path` after `transactions` (the last one commits c1-c3). */
async function deliveredAfter(path: ReadPath, name: string, transactions: ReadonlyArray<readonly [string, 'commit' | 'abort']>): Promise<string[]> {
  const bootstrap = await sharedKafka();
  const topic = uniqueTopic(`${name}-${path}`);
  await createTopic(bootstrap, topic, 1);
  await produce(bootstrap, topic, transactions);
  return consume(path, bootstrap, topic, 'c3');
}

const streamDefect = "review 2026-12-07i finding 5: the Kafka client's read_committed filter keeps one aborted range per producer id, so a1-a3 are delivered";

for (const path of ['fetch', 'stream'] as const) {
  test(`${path}: a source topic with one aborted transaction: only the committed records are delivered`, { timeout: 120_000 }, async () => {
    assert.deepEqual(
      await deliveredAfter(path, 'aborted-once', [
        ['a', 'abort'],
        ['c', 'commit'],
      ]),
      ['c1', 'c2', 'c3'],
    );
  });

  test(`${path}: a source topic where one producer aborted twice: only the committed records are delivered`, { timeout: 120_000, todo: path === 'stream' ? streamDefect : false }, async () => {
    assert.deepEqual(
      await deliveredAfter(path, 'aborted-twice', [
        ['a', 'abort'],
        ['b', 'abort'],
        ['c', 'commit'],
      ]),
      ['c1', 'c2', 'c3'],
    );
  });
}
