// Review 2026-12-07g: the Pulsar dead-letter writer and control log (src/source/pulsar-dead-letter-writer.ts,
// src/source/pulsar-control-log.ts, over src/source/pulsar-producer.ts) against one real Pulsar 4.0.7
// broker (test/helpers/pulsar.ts), with a TCP proxy that freezes connections (half-open: open, but
// nothing forwarded) or resets them. The findings are fixed and their tests pass, but one: a half-open
// socket outlives close() (Node's WebSocket has no forced close), a `todo` subtest.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ControlRecord } from '../../../src/control/control-log.ts';
import { parseDeadLetter } from '../../../src/deadletter/record.ts';
import type { DeadLetterReason } from '../../../src/deadletter/types.ts';
import { PulsarControlLog } from '../../../src/source/pulsar-control-log.ts';
import { fromPulsarMessage, PulsarDeadLetterWriter, type PulsarDeadLetterFrame } from '../../../src/source/pulsar-dead-letter-writer.ts';
import type { SourceRecord } from '../../../src/source/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { startPulsar, uniqueTopic, waitUntil, type PulsarBroker } from '../../helpers/pulsar.ts';
import { startFakeBroker } from './fake-ws-broker.ts';
import { startFreezeProxy } from './freeze-proxy.ts';

const TENANT = 'public';
const NAMESPACE = 'default';
const FAST_RETRY = { baseMs: 50, factor: 2, capMs: 300 };
const logger = createLogger(process.env.TEST_LOG ?? 'silent');
let broker: PulsarBroker;

before(async () => {
  broker = await startPulsar();
});

after(async () => {
  await broker?.stop();
});

const access = (): { url: string; tenant: string; namespace: string } => ({ url: broker.url, tenant: TENANT, namespace: NAMESPACE });
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const reason: DeadLetterReason = { errorClass: 'row_data', code: 'INSERTER_DECODE_BAD_JSON', message: 'bad', route: 'r', table: 'db.t', team: 1 };

function record(fields: Partial<SourceRecord>): SourceRecord {
  return { topic: 'events', partition: 1, offset: 42n, timestamp: 1_700_000_000_000n, key: undefined, value: undefined, headers: [], epoch: 0, ...fields };
}

/** Reads the first `count` messages of a topic with a plain WebSocket reader. */
async function readTopic(topic: string, count: number): Promise<PulsarDeadLetterFrame[]> {
  const socket = new WebSocket(`${broker.url.replace(/^http/, 'ws')}/ws/v2/reader/persistent/${TENANT}/${NAMESPACE}/${topic}?messageId=earliest`);
  const frames: PulsarDeadLetterFrame[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${frames.length} of ${count} messages of ${topic}`)), 10_000);
      socket.addEventListener('message', (event) => {
        const frame = JSON.parse(String(event.data)) as PulsarDeadLetterFrame;
        socket.send(JSON.stringify({ messageId: frame.messageId }));
        frames.push(frame);
        if (frames.length >= count) {
          clearTimeout(timer);
          resolve();
        }
      });
      socket.addEventListener('error', () => reject(new Error(`reader of ${topic} failed`)), { once: true });
    });
  } finally {
    socket.close();
  }
  return frames;
}

test('control log: a reader connection reset over and over while another replica appends — every record once, in order', async () => {
  const topic = `${uniqueTopic('resets')}.inserter-control`;
  const proxy = await startFreezeProxy(broker.url);
  const a = new PulsarControlLog({ ...access(), url: proxy.url, topic, replicaId: 'a', retry: FAST_RETRY, logger });
  const b = new PulsarControlLog({ ...access(), topic, replicaId: 'b', retry: FAST_RETRY, logger });
  const seen: ControlRecord[] = [];
  const signal = AbortSignal.timeout(30_000);
  try {
    const offsets: bigint[] = [];
    for (let i = 0; i < 20; i++) offsets.push(await b.append(`k${i}`, `v${i}`, signal));
    await a.follow((r) => seen.push(r), signal);
    assert.equal(seen.length, 20, 'caught up: the records existing at the call');
    const writing = (async () => {
      for (let i = 20; i < 80; i++) offsets.push(await b.append(`k${i}`, i % 7 === 0 ? undefined : `v${i}`, signal));
    })();
    for (let i = 0; i < 6; i++) {
      await pause(60);
      proxy.reset();
    }
    await writing;
    await waitUntil('a to read everything', () => seen.length >= 80, 15_000);
    await pause(200);
    assert.deepEqual(
      seen.map((r) => [r.key, r.value, r.offset]),
      offsets.map((offset, i) => [`k${i}`, i >= 20 && i % 7 === 0 ? undefined : `v${i}`, offset]),
    );
    assert.ok(proxy.connections > 1, 'the reader was reconnected');
  } finally {
    await Promise.all([a.close(), b.close()]);
    await proxy.stop();
  }
});

test('control log: a reader whose connection goes half-open (keepalives unanswered) reads on: a pause appended meanwhile is delivered', async () => {
  const topic = `${uniqueTopic('frozen-reader')}.inserter-control`;
  const proxy = await startFreezeProxy(broker.url);
  const a = new PulsarControlLog({ ...access(), url: proxy.url, topic, replicaId: 'a', retry: FAST_RETRY, logger, keepaliveMs: 200 });
  const b = new PulsarControlLog({ ...access(), topic, replicaId: 'b', retry: FAST_RETRY, logger });
  const seen: ControlRecord[] = [];
  const signal = AbortSignal.timeout(30_000);
  try {
    await b.append('pause/1', '{"table":"db.t"}', signal);
    await a.follow((r) => seen.push(r), signal);
    proxy.freeze();
    await b.append('pause/2', '{"table":"db.u"}', signal);
    // Truthful silence: it grows while nothing is heard.
    await waitUntil('silence to grow', () => a.silenceMs() > 1_000, 5_000);
    // Then the reader should give up the dead connection and read on (a new connection passes).
    await waitUntil('the pause appended while frozen to be delivered', () => seen.some((r) => r.key === 'pause/2'), 8_000);
  } finally {
    await proxy.stop(); // first: the frozen sockets die, so close() does not wait out its bound
    await Promise.all([a.close(), b.close()]);
  }
});

test('control log: silenceMs grows while the reader connection is half-open, and stays low on a quiet live topic', async () => {
  const topic = `${uniqueTopic('silence')}.inserter-control`;
  const proxy = await startFreezeProxy(broker.url);
  const a = new PulsarControlLog({ ...access(), url: proxy.url, topic, replicaId: 'a', retry: FAST_RETRY, logger, keepaliveMs: 200 });
  const signal = AbortSignal.timeout(30_000);
  try {
    await a.follow(() => undefined, signal);
    await pause(700);
    assert.ok(a.silenceMs() < 500, `quiet topic, live broker: silence ${a.silenceMs()} ms`);
    proxy.freeze();
    await waitUntil('silence to grow past 1 s', () => a.silenceMs() > 1_000, 5_000);
  } finally {
    await proxy.stop();
    await a.close();
  }
});

test('control log: an append whose producer connection went half-open times out, and a later append goes through a new connection', async () => {
  const topic = `${uniqueTopic('frozen-producer')}.inserter-control`;
  const proxy = await startFreezeProxy(broker.url);
  const a = new PulsarControlLog({ ...access(), url: proxy.url, topic, replicaId: 'a', retry: FAST_RETRY, logger, writeTimeoutMs: 500 });
  const signal = AbortSignal.timeout(30_000);
  try {
    await a.append('heartbeat/a', '1', signal);
    proxy.freeze();
    await assert.rejects(a.append('heartbeat/a', '2', signal), { code: 'INSERTER_CONTROL_WRITE' });
    // New connections pass: within a few seconds (well under the producer's 45 s), appends must work again.
    const deadline = Date.now() + 6_000;
    let ok = false;
    while (!ok && Date.now() < deadline) {
      ok = await a.append('pause/x', '{}', signal).then(
        () => true,
        () => false,
      );
    }
    assert.ok(ok, `appends still fail ${6_000} ms later: ${proxy.connections} connection(s) opened`);
  } finally {
    await proxy.stop();
    await a.close();
  }
});

const PLATFORM = "platform: Node's WebSocket has no forced close";

test('control log: close() with a half-open reader and producer closes both in parallel (within one close bound)', async (t) => {
  const topic = `${uniqueTopic('frozen-close')}.inserter-control`;
  const proxy = await startFreezeProxy(broker.url);
  const a = new PulsarControlLog({ ...access(), url: proxy.url, topic, replicaId: 'a', retry: FAST_RETRY, logger, keepaliveMs: 200 });
  const signal = AbortSignal.timeout(30_000);
  try {
    await a.follow(() => undefined, signal);
    await a.append('heartbeat/a', '1', signal);
    proxy.freeze();
    const started = Date.now();
    await a.close();
    assert.ok(Date.now() - started < 7_000, `close took ${Date.now() - started} ms`);
    await t.test('the client closes its sockets', { todo: PLATFORM }, async () => {
      await waitUntil('the client to close its sockets', () => proxy.open === 0, 3_000);
    });
  } finally {
    await a.close();
    await proxy.stop();
  }
});

test('dead letters: close() while a send waits on a half-open connection returns within the close bound, and the write settles', async (t) => {
  const proxy = await startFreezeProxy(broker.url);
  const dlq = `${uniqueTopic('frozen')}.dlq`;
  const w = new PulsarDeadLetterWriter({ ...access(), url: proxy.url, createTopics: true, retry: { ...FAST_RETRY, maxAttempts: 1 }, writeTimeoutMs: 20_000, logger });
  const signal = AbortSignal.timeout(30_000);
  try {
    await w.write(dlq, record({ value: Buffer.from('first') }), reason, signal);
    proxy.freeze();
    let settled = false;
    const writing = w.write(dlq, record({ offset: 43n, value: Buffer.from('second') }), reason, signal).then(
      () => 'resolved',
      (error: unknown) => `rejected: ${(error as Error).message}`,
    );
    void writing.finally(() => {
      settled = true;
    });
    await pause(300);
    const started = Date.now();
    await w.close();
    assert.ok(Date.now() - started < 7_000, `close took ${Date.now() - started} ms`);
    await waitUntil('the write to settle after close()', () => settled, 3_000);
    assert.match(await writing, /^rejected/, 'not acknowledged: never resolved');
    await t.test('the client closes its sockets', { todo: PLATFORM }, async () => {
      await waitUntil('the client to close its sockets', () => proxy.open === 0, 3_000);
    });
  } finally {
    await w.close();
    await proxy.stop();
  }
});

test('dead letters: a write never resolves on a half-open connection (no loss), and resolves again on a new one', async () => {
  const proxy = await startFreezeProxy(broker.url);
  const dlq = `${uniqueTopic('frozen-loss')}.dlq`;
  // The admin API is not asked again here (topicCheckMs): its pooled HTTP connection is frozen too.
  const w = new PulsarDeadLetterWriter({ ...access(), url: proxy.url, createTopics: true, retry: { ...FAST_RETRY, maxAttempts: 1 }, writeTimeoutMs: 800, logger, topicCheckMs: 60_000 });
  try {
    await w.write(dlq, record({ value: Buffer.from('first') }), reason, AbortSignal.timeout(10_000));
    proxy.freeze();
    await assert.rejects(w.write(dlq, record({ offset: 43n, value: Buffer.from('second') }), reason, AbortSignal.timeout(10_000)), { code: 'INSERTER_DLQ_WRITE_TIMEOUT' });
    // Not acknowledged, and indeed not in the topic (the first dead letter only).
    await pause(300);
    const frames = await readTopic(dlq, 1);
    assert.equal(frames.length, 1);
    assert.equal(parseDeadLetter(fromPulsarMessage(dlq, frames[0] as PulsarDeadLetterFrame)).original?.offset, 42n);
    // The send without a receipt closes its connection (a little after the write timeout): a later write goes through a new one.
    const deadline = Date.now() + 8_000;
    let ok = false;
    while (!ok && Date.now() < deadline) {
      ok = await w.write(dlq, record({ offset: 44n, value: Buffer.from('third') }), reason, AbortSignal.timeout(10_000)).then(
        () => true,
        () => false,
      );
    }
    assert.ok(ok, `writes still fail 8 s later: ${proxy.connections} connection(s) opened`);
    const again = await readTopic(dlq, 2);
    assert.equal(parseDeadLetter(fromPulsarMessage(dlq, again[1] as PulsarDeadLetterFrame)).original?.offset, 44n);
  } finally {
    await proxy.stop();
    await w.close();
  }
});

test('dead letters: an empty key, an empty header name and an empty header value read back as written', async () => {
  const dlq = `${uniqueTopic('empty')}.dlq`;
  const w = new PulsarDeadLetterWriter({ ...access(), createTopics: true, retry: { ...FAST_RETRY, maxAttempts: 1 }, writeTimeoutMs: 10_000, logger });
  const headers: Array<[Buffer, Buffer]> = [
    [Buffer.from(''), Buffer.from('empty-name')],
    [Buffer.from('empty-value'), Buffer.alloc(0)],
  ];
  try {
    await w.write(dlq, record({ key: Buffer.alloc(0), value: Buffer.from('v'), headers }), reason, AbortSignal.timeout(10_000));
  } finally {
    await w.close();
  }
  const [frame] = await readTopic(dlq, 1);
  assert.ok(frame !== undefined);
  const letter = parseDeadLetter(fromPulsarMessage(dlq, frame));
  const hex = (hs: ReadonlyArray<readonly [Buffer, Buffer]>): string[] => hs.map(([n, v]) => `${n.toString('hex')}=${v.toString('hex')}`).sort();
  assert.deepEqual(hex(letter.original?.headers ?? []), hex(headers), 'headers');
  assert.deepEqual(letter.original?.key, Buffer.alloc(0), 'an empty key is not an absent key');
});

test('dead letters: with maxFrameBytes above the service’s frame limit, a frame of several MB (the service drops the connection: 1006) is written without its value', async () => {
  const fake = await startFakeBroker(1024 * 1024);
  const failures: string[] = [];
  const w = new PulsarDeadLetterWriter({
    url: fake.url,
    tenant: TENANT,
    namespace: NAMESPACE,
    createTopics: false,
    maxFrameBytes: 64 * 1024 * 1024,
    retry: { ...FAST_RETRY, maxAttempts: 2 },
    writeTimeoutMs: 5_000,
    logger,
    hooks: { onFailure: (_topic, code) => failures.push(code) },
  });
  try {
    await w.write('huge.dlq', record({ key: Buffer.from('huge'), value: Buffer.alloc(4 * 1024 * 1024, 7) }), reason, AbortSignal.timeout(20_000));
    assert.equal(fake.published.length, 1);
    assert.equal(fake.published[0]?.key, 'huge', 'written without its value, its identity kept');
  } catch (error) {
    throw new Error(`${fake.dropped} connections dropped, failures ${failures.join(', ')}`, { cause: error });
  } finally {
    await w.close();
    await fake.stop();
  }
});

async function topicAdmin(method: string, path: string): Promise<Response> {
  return fetch(`${broker.url}/admin/v2/persistent/${TENANT}/${NAMESPACE}/${path}`, { method, signal: AbortSignal.timeout(10_000) });
}

test('dead letters: a topic deleted while its producer is open, without createTopics, is INSERTER_DLQ_TOPIC_MISSING — not created again', async () => {
  const dlq = `${uniqueTopic('deleted')}.dlq`;
  assert.equal((await topicAdmin('PUT', dlq)).status, 204);
  const w = new PulsarDeadLetterWriter({ ...access(), createTopics: false, retry: { ...FAST_RETRY, maxAttempts: 2 }, writeTimeoutMs: 10_000, logger, topicCheckMs: 200 });
  try {
    await w.write(dlq, record({ value: Buffer.from('first') }), reason, AbortSignal.timeout(10_000));
    await pause(300); // past topicCheckMs: the next write asks the admin API again
    assert.equal((await topicAdmin('DELETE', `${dlq}?force=true`)).status, 204);
    assert.equal((await topicAdmin('GET', `${dlq}/stats`)).status, 404);
    const outcome = await w.write(dlq, record({ offset: 43n, value: Buffer.from('second') }), reason, AbortSignal.timeout(20_000)).then(
      () => 'resolved',
      (error: unknown) => (error as { code?: string }).code,
    );
    assert.equal(outcome, 'INSERTER_DLQ_TOPIC_MISSING', `the write ${outcome}; the topic's stats: ${(await topicAdmin('GET', `${dlq}/stats`)).status}`);
  } finally {
    await w.close();
  }
});

test('dead letters: a topic deleted while its producer is open, with createTopics, is created again WITH its retention before the next dead letter lands', async () => {
  const dlq = `${uniqueTopic('recreated')}.dlq`;
  const w = new PulsarDeadLetterWriter({ ...access(), createTopics: true, retry: { ...FAST_RETRY, maxAttempts: 2 }, writeTimeoutMs: 10_000, logger, topicCheckMs: 200 });
  try {
    await w.write(dlq, record({ value: Buffer.from('first') }), reason, AbortSignal.timeout(10_000));
    await pause(300); // past topicCheckMs: the next write asks the admin API again
    assert.equal((await topicAdmin('DELETE', `${dlq}?force=true`)).status, 204);
    await w.write(dlq, record({ offset: 43n, value: Buffer.from('second') }), reason, AbortSignal.timeout(20_000));
    const retention = await (await topicAdmin('GET', `${dlq}/retention`)).text();
    assert.match(retention, /"retentionTimeInMinutes":-1/, `the re-created topic's retention: ${JSON.stringify(retention)}`);
  } finally {
    await w.close();
  }
});
