// The dev/test Kafka broker (scripts/kafka.sh via test/helpers/kafka.ts) speaks real Kafka:
// produce with keys/headers, consume in a group from the earliest offset, commit, read the
// committed offsets back through the admin API, and keep all of it across a broker restart.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Admin, Consumer, MessagesStreamFallbackModes, MessagesStreamModes, ProduceAcks, Producer } from '@platformatic/kafka';
import type { Message, MessagesStream } from '@platformatic/kafka';
import { createTopic, startKafka, uniqueTopic } from '../helpers/kafka.ts';
import type { KafkaBroker } from '../helpers/kafka.ts';

type RawMessage = Message<Buffer, Buffer, Buffer, Buffer>;
type RawStream = MessagesStream<Buffer, Buffer, Buffer, Buffer>;

interface Plain {
  partition: number;
  offset: bigint;
  key: string;
  value: string;
  headers: [string, string][];
}

function plain(m: RawMessage): Plain {
  return {
    partition: m.partition,
    offset: m.offset,
    key: m.key.toString(),
    value: m.value.toString(),
    headers: m.headerEntries.map(([k, v]): [string, string] => [k.toString(), v.toString()]),
  };
}

function byPosition(a: { partition: number; offset: bigint }, b: { partition: number; offset: bigint }): number {
  return a.partition - b.partition || (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0);
}

/** Resolves with the first n messages of the stream (fails after timeoutMs). */
function take(stream: RawStream, n: number, timeoutMs = 30_000): Promise<RawMessage[]> {
  return new Promise((resolvePromise, reject) => {
    const got: RawMessage[] = [];
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out with ${got.length}/${n} messages`));
    }, timeoutMs);
    const onData = (m: RawMessage): void => {
      got.push(m);
      if (got.length === n) {
        cleanup();
        resolvePromise(got);
      }
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    function cleanup(): void {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('error', onError);
      stream.pause();
    }
    stream.on('data', onData);
    stream.on('error', onError);
    stream.resume();
  });
}

/** Collects whatever arrives within ms (to assert that nothing else does). */
function drain(stream: RawStream, ms: number): Promise<RawMessage[]> {
  return new Promise((resolvePromise) => {
    const got: RawMessage[] = [];
    const onData = (m: RawMessage): void => {
      got.push(m);
    };
    stream.on('data', onData);
    stream.resume();
    setTimeout(() => {
      stream.off('data', onData);
      stream.pause();
      resolvePromise(got);
    }, ms);
  });
}

const produced: Plain[] = [];
for (let partition = 0; partition < 3; partition++) {
  for (let i = 0; i < 2; i++) {
    produced.push({
      partition,
      offset: BigInt(i),
      key: `key-${partition}-${i}`,
      value: JSON.stringify({ partition, i, pad: 'x'.repeat(100 * (i + 1)) }),
      headers: [
        ['ph-event', `event-${partition}-${i}`],
        ['trace', `t${i}`],
      ],
    });
  }
}

void describe('dev/test Kafka broker', { timeout: 180_000 }, () => {
  let broker: KafkaBroker;
  const topic = uniqueTopic('e2e-kafka-broker');
  const groupId = uniqueTopic('e2e-group');
  const clients: { close(force?: boolean): Promise<void> }[] = [];

  function consumer(group: string): Consumer {
    const c = new Consumer({
      clientId: 'e2e-consumer',
      groupId: group,
      bootstrapBrokers: [broker.bootstrap],
      sessionTimeout: 10_000,
      heartbeatInterval: 500,
      maxWaitTime: 200,
    });
    clients.push(c);
    return c;
  }

  async function consumeStream(c: Consumer, mode: (typeof MessagesStreamModes)[keyof typeof MessagesStreamModes]): Promise<RawStream> {
    return c.consume({
      topics: [topic],
      mode,
      fallbackMode: MessagesStreamFallbackModes.EARLIEST,
      autocommit: false,
    });
  }

  async function committedOffsets(group: string): Promise<Map<number, bigint>> {
    const admin = new Admin({ clientId: 'e2e-admin', bootstrapBrokers: [broker.bootstrap] });
    try {
      const groups = await admin.listConsumerGroupOffsets({ groups: [group] });
      const result = new Map<number, bigint>();
      for (const g of groups) {
        assert.equal(g.groupId, group);
        for (const t of g.topics) {
          if (t.name !== topic) continue;
          for (const p of t.partitions) result.set(p.partitionIndex, p.committedOffset);
        }
      }
      return result;
    } finally {
      await admin.close();
    }
  }

  async function closeAll(): Promise<void> {
    for (const c of clients.splice(0).reverse()) await c.close(true).catch(() => undefined);
  }

  before(async () => {
    broker = await startKafka();
    await createTopic(broker.bootstrap, topic, 3, { 'retention.ms': '86400000' });
  });

  after(async () => {
    await closeAll();
    await broker?.stop();
  });

  void it('produces with keys and headers (idempotent, acks=all)', async () => {
    const producer = new Producer({
      clientId: 'e2e-producer',
      bootstrapBrokers: [broker.bootstrap],
      idempotent: true,
      acks: ProduceAcks.ALL,
    });
    try {
      for (const m of produced) {
        const result = await producer.send({
          messages: [
            {
              topic,
              partition: m.partition,
              key: Buffer.from(m.key),
              value: Buffer.from(m.value),
              headers: new Map(m.headers.map(([k, v]): [Buffer, Buffer] => [Buffer.from(k), Buffer.from(v)])),
            },
          ],
        });
        assert.deepEqual(result.offsets, [{ topic, partition: m.partition, offset: m.offset }]);
      }
    } finally {
      await producer.close();
    }
  });

  void it('consumes everything from the earliest offset in a new group and commits', async () => {
    const c = consumer(groupId);
    const stream = await consumeStream(c, MessagesStreamModes.COMMITTED);
    const messages = await take(stream, produced.length);
    messages.sort(byPosition);
    assert.deepEqual(messages.map(plain), produced);
    for (const m of messages) {
      assert.equal(m.topic, topic);
      assert.equal(typeof m.timestamp, 'bigint');
      assert.ok(Buffer.isBuffer(m.value));
    }
    // Nothing else is there.
    assert.deepEqual(await drain(stream, 500), []);

    // Commit everything (message.commit() commits offset + 1, i.e. the next offset to read).
    for (const m of messages) await m.commit();
    assert.deepEqual(
      await committedOffsets(groupId),
      new Map([
        [0, 2n],
        [1, 2n],
        [2, 2n],
      ]),
    );

    await stream.close();
    await c.close();
    clients.splice(clients.indexOf(c), 1);
  });

  void it('keeps data and committed offsets across a broker restart', async () => {
    const bootstrapBefore = broker.bootstrap;
    const t0 = Date.now();
    await broker.restart();
    console.log(`# broker restart took ${Date.now() - t0} ms`);
    assert.equal(broker.bootstrap, bootstrapBefore);

    assert.deepEqual(
      await committedOffsets(groupId),
      new Map([
        [0, 2n],
        [1, 2n],
        [2, 2n],
      ]),
    );

    // All records are still there for a group that reads from the earliest offset.
    const fresh = consumer(uniqueTopic('e2e-group-after-restart'));
    const all = await take(await consumeStream(fresh, MessagesStreamModes.EARLIEST), produced.length);
    all.sort(byPosition);
    assert.deepEqual(all.map(plain), produced);

    // Producing still works, and the old group resumes from its committed offsets: it sees only the new record.
    const producer = new Producer({ clientId: 'e2e-producer-2', bootstrapBrokers: [broker.bootstrap], idempotent: true });
    clients.push(producer);
    const result = await producer.send({
      messages: [{ topic, partition: 1, key: Buffer.from('after'), value: Buffer.from('restart'), headers: new Map([[Buffer.from('h'), Buffer.from('v')]]) }],
    });
    assert.deepEqual(result.offsets, [{ topic, partition: 1, offset: 2n }]);

    const resumed = consumer(groupId);
    const stream = await consumeStream(resumed, MessagesStreamModes.COMMITTED);
    const [next] = await take(stream, 1);
    assert.ok(next);
    assert.deepEqual(plain(next), { partition: 1, offset: 2n, key: 'after', value: 'restart', headers: [['h', 'v']] });
    assert.deepEqual(await drain(stream, 500), []);
    await next.commit();
    assert.deepEqual(
      await committedOffsets(groupId),
      new Map([
        [0, 2n],
        [1, 3n],
        [2, 2n],
      ]),
    );
    await closeAll();
  });
});
