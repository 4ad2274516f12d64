// The start-up check of the dead-letter topics is bounded: against a "broker" that accepts the
// connection and never answers, it fails within its timeout with INSERTER_DLQ_TOPIC_CHECK_FAILED,
// naming the brokers and the topics (on 4942df1 it waited for ever). The dead-letter producer's key
// hash is Kafka's murmur2 (the reference vectors), fast on a 1 MiB key.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { InserterError } from '../../../src/errors/inserter-error.ts';
import { checkDeadLetterTopics, keyPartitioner, murmur2 } from '../../../src/source/kafka-dead-letter-writer.ts';

test('a broker that never answers: the check fails within its timeout, naming the brokers and the topics', async () => {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const broker = `127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    const started = Date.now();
    const error = await checkDeadLetterTopics({ brokers: [broker], clientId: 'check-test', topics: ['a.dlq', 'b.dlq', 'a.dlq'], maxMessageBytes: 1024, timeoutMs: 1_500 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    assert.ok(error instanceof InserterError, `rejected with an InserterError (got ${String(error)})`);
    assert.equal(error.code, 'INSERTER_DLQ_TOPIC_CHECK_FAILED');
    assert.match(error.message, new RegExp(`the dead-letter topics \\(a\\.dlq, b\\.dlq\\) could not be checked on the brokers ${broker.replace(/\./g, '\\.')}: no answer within 1500 ms`));
    assert.ok(elapsed < 5_000, `bounded (${elapsed} ms)`);
    assert.ok(sockets.size > 0, 'it did connect');
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});

test("murmur2 is Kafka's (reference vectors), and a 1 MiB key is hashed at once", () => {
  // org.apache.kafka.common.utils.UtilsTest#testMurmur2
  const vectors: Array<[string, number]> = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ];
  for (const [text, expected] of vectors) assert.equal(murmur2(Buffer.from(text)), expected, text);
  const started = Date.now();
  const p = keyPartitioner(undefined, randomBytes(1024 * 1024));
  assert.ok(p >= 0);
  assert.ok(Date.now() - started < 1_000);
  assert.equal(keyPartitioner(undefined, undefined), 0);
});
