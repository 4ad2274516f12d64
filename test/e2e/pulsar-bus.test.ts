// The three bus adapters `inserter run` needs besides the source and the ledger store, against a real
// Pulsar 4.0 standalone broker (scripts/pulsar.sh): dead letters (every byte and header read back
// from the dead-letter topic with a plain WebSocket reader, a missing topic, a dead letter too large
// for the WebSocket frame limit and for the topic's maxMessageSize), the control log (two replicas see
// each other's records in one order, tombstones, catching up, a new replica reads the whole history,
// no subscription left behind) and the subscription's lag (drops to 0 as a consumer acknowledges).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Writable } from 'node:stream';
import type { ControlRecord } from '../../src/control/control-log.ts';
import { parseDeadLetter, type DeadLetter } from '../../src/deadletter/record.ts';
import { deadLetterHeader, type DeadLetterReason } from '../../src/deadletter/types.ts';
import { DeadLetterWriteError } from '../../src/deadletter/writer.ts';
import { PulsarControlLog } from '../../src/source/pulsar-control-log.ts';
import { fromPulsarMessage, PulsarDeadLetterWriter, type PulsarDeadLetterFrame } from '../../src/source/pulsar-dead-letter-writer.ts';
import { PulsarLagSource } from '../../src/source/pulsar-lag.ts';
import { PulsarSource } from '../../src/source/pulsar-source.ts';
import type { SourceRecord } from '../../src/source/types.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { createPartitionedTopic, produce, startPulsar, subscriptionStats, uniqueTopic, waitUntil, type PulsarBroker } from '../helpers/pulsar.ts';

const TENANT = 'public';
const NAMESPACE = 'default';
const FAST_RETRY = { baseMs: 50, factor: 2, capMs: 500 };
const logger = createLogger(process.env.TEST_LOG ?? 'silent');
let broker: PulsarBroker;

before(async () => {
  broker = await startPulsar(); // counted in the first test's duration (~7 s)
});

after(async () => {
  await broker?.stop();
});

const access = (): { url: string; tenant: string; namespace: string } => ({ url: broker.url, tenant: TENANT, namespace: NAMESPACE });

async function admin(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${broker.url}/admin/v2/persistent/${TENANT}/${NAMESPACE}/${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
}

/** Reads the first `count` messages of a topic with a plain WebSocket reader (not the adapters under test). */
async function readTopic(topic: string, count: number): Promise<PulsarDeadLetterFrame[]> {
  const socket = new WebSocket(`${broker.url.replace(/^http/, 'ws')}/ws/v2/reader/persistent/${TENANT}/${NAMESPACE}/${topic}?messageId=earliest`);
  const frames: PulsarDeadLetterFrame[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${frames.length} of ${count} messages of ${topic}`)), 20_000);
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

/** A logger whose lines (parsed) are kept. */
function capture(level: string): { logger: ReturnType<typeof createLogger>; lines: Array<{ msg: string; err?: { message?: string } }> } {
  const lines: Array<{ msg: string; err?: { message?: string } }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as { msg: string });
      done();
    },
  });
  return { logger: createLogger(level, sink), lines };
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const letters = async (topic: string, count: number): Promise<DeadLetter[]> => (await readTopic(topic, count)).map((f) => parseDeadLetter(fromPulsarMessage(topic, f)));

const reason: DeadLetterReason = {
  errorClass: 'row_data',
  code: 'INSERTER_DECODE_BAD_JSON',
  message: 'not JSON: ünïcode ✓',
  route: 'events',
  destination: 'ch',
  table: 'db.events',
  team: 7,
  attempts: 2,
};

function record(fields: Partial<SourceRecord>): SourceRecord {
  return { topic: 'events', partition: 3, offset: 123_456_789n, timestamp: 1_700_000_000_123n, key: undefined, value: undefined, headers: [], epoch: 0, ...fields };
}

function writer(extra: Partial<ConstructorParameters<typeof PulsarDeadLetterWriter>[0]> = {}): PulsarDeadLetterWriter {
  return new PulsarDeadLetterWriter({ ...access(), createTopics: true, retry: { ...FAST_RETRY, maxAttempts: 1 }, writeTimeoutMs: 20_000, logger, ...extra });
}

test('dead letters: every byte of the key, the value and the headers, and every x-inserter-* header, read back from the topic', async () => {
  const dlq = `${uniqueTopic('events')}.dlq`;
  const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x7f, 0x0a]);
  const headers: Array<readonly [Buffer, Buffer]> = [
    [Buffer.from('trace-id'), Buffer.from('abc-123')],
    [Buffer.from('binary'), bytes],
    [Buffer.from([0xc0, 0xaf, 0x41]), Buffer.from('name is not UTF-8')],
    [Buffer.from('looks-escaped'), Buffer.from('b64:not really base64')],
    [Buffer.from('b64:0:AAAA'), Buffer.from('name looks escaped')],
    [Buffer.from(deadLetterHeader.class), Buffer.from('an original header with a writer name')],
    [Buffer.from('trace-id'), Buffer.from('a second trace-id')],
    [Buffer.from('__proto__'), Buffer.from('')],
  ];
  const original = record({ key: Buffer.from([0x00, 0xff, 0x10, 0x80]), value: Buffer.concat([Buffer.from('{"not":"json"'), bytes]), headers });
  const plain = record({ offset: 7n, key: Buffer.from('user-42'), value: Buffer.from('{"a":1}'), headers: [[Buffer.from('h'), Buffer.from('v')]] });
  const w = writer();
  try {
    await w.write(dlq, original, reason, AbortSignal.timeout(30_000));
    await w.write(dlq, plain, { ...reason, mayHaveLanded: true }, AbortSignal.timeout(30_000));
  } finally {
    await w.close();
  }
  const [first, second] = await letters(dlq, 2);
  assert.equal(second?.raw.key?.toString(), 'user-42');
  assert.ok(first !== undefined && second !== undefined);
  assert.deepEqual(first.original?.key, original.key);
  assert.deepEqual(first.original?.value, original.value);
  const sorted = (hs: ReadonlyArray<readonly [Buffer, Buffer]>): string[] => hs.map(([n, v]) => `${n.toString('hex')}=${v.toString('hex')}`).sort();
  assert.deepEqual(sorted(first.original?.headers ?? []), sorted(headers), 'every original header, byte for byte (duplicates and writer-like names too)');
  assert.equal(first.original?.topic, 'events');
  assert.equal(first.original?.partition, 3);
  assert.equal(first.original?.offset, 123_456_789n);
  assert.equal(first.original?.timestamp, 1_700_000_000_123n);
  assert.deepEqual(
    { errorClass: first.errorClass, code: first.code, message: first.message, route: first.route, destination: first.destination, table: first.table, team: first.team },
    { errorClass: 'row_data', code: 'INSERTER_DECODE_BAD_JSON', message: 'not JSON: ünïcode ✓', route: 'events', destination: 'ch', table: 'db.events', team: 7 },
  );
  assert.equal(first.raw.headers.find(([n]) => n.toString() === deadLetterHeader.attempts)?.[1].toString(), '2');
  assert.equal(first.omitted, undefined);
  assert.equal(second.mayHaveLanded, true);
  assert.deepEqual(
    second.original?.headers.map(([n, v]) => [n.toString(), v.toString()]),
    [['h', 'v']],
  );
  assert.ok(first.raw.offset < second.raw.offset, 'offsets are the packed message ids, in order');
  const retention = (await (await admin('GET', `${dlq}/retention`)).json()) as { retentionTimeInMinutes: number };
  assert.equal(retention.retentionTimeInMinutes, -1, 'a created dead-letter topic keeps its messages (never deleted as inactive)');
  const publishers = ((await (await admin('GET', `${dlq}/stats`)).json()) as { publishers: unknown[] }).publishers;
  assert.equal(publishers.length, 0, 'close() closed the producer');
});

test('dead letters: a missing topic without createTopics is INSERTER_DLQ_TOPIC_MISSING, and the topic is not created', async () => {
  const dlq = `${uniqueTopic('missing')}.dlq`;
  const w = writer({ createTopics: false });
  try {
    await assert.rejects(
      w.write(dlq, record({ value: Buffer.from('x') }), reason, AbortSignal.timeout(30_000)),
      (error: unknown) => error instanceof DeadLetterWriteError && error.code === 'INSERTER_DLQ_TOPIC_MISSING' && error.topic === dlq,
    );
  } finally {
    await w.close();
  }
  // The namespace creates topics on first use: the writer must not have opened a producer on it.
  assert.equal((await admin('GET', `${dlq}/stats`)).status, 404);
  // A partitioned topic is found (its own stats are per partition).
  const partitioned = `${uniqueTopic('partitioned')}.dlq`;
  await createPartitionedTopic(broker.url, TENANT, NAMESPACE, partitioned, 2);
  const w2 = writer({ createTopics: false });
  try {
    await w2.write(partitioned, record({ key: Buffer.from('k'), value: Buffer.from('x') }), reason, AbortSignal.timeout(30_000));
  } finally {
    await w2.close();
  }
});

test('dead letters: too large for the WebSocket frame limit or for the topic — written without the value', async () => {
  const omitted: string[] = [];
  const hooks = { onOmitted: (_topic: string, what: 'value' | 'key_headers') => omitted.push(what) };
  // 1. Over the frame limit (1 MiB by default): refused before sending.
  const dlq = `${uniqueTopic('big')}.dlq`;
  const big = Buffer.alloc(1_500_000, 0xab);
  const w = writer({ hooks });
  try {
    await w.write(dlq, record({ key: Buffer.from('k'), value: big, headers: [[Buffer.from('h'), Buffer.from('v')]] }), reason, AbortSignal.timeout(30_000));
    // 2. Told the frame limit is larger than the broker's: the broker closes the connection (1009,
    // with its limit), the writer learns the limit and refuses the next such frame before sending.
    const errors = capture('error');
    const w2 = writer({ hooks, maxFrameBytes: 8 * 1024 * 1024, logger: errors.logger });
    try {
      await w2.write(dlq, record({ offset: 2n, key: Buffer.from('k2'), value: big }), reason, AbortSignal.timeout(30_000));
      await w2.write(dlq, record({ offset: 4n, key: Buffer.from('k4'), value: big }), reason, AbortSignal.timeout(30_000));
    } finally {
      await w2.close();
    }
    const refusals = errors.lines.map((line) => line.err?.message ?? '');
    assert.match(
      refusals[0] ?? '',
      /^dead-letter producer of .*: the frame of \d+ bytes is over the broker's WebSocket frame limit of 1048576: .*connection closed \(1009 /,
      'the broker closed the connection',
    );
    assert.match(refusals[1] ?? '', /^dead-letter producer of .*: a frame of \d+ bytes is over the broker's WebSocket frame limit of 1048576$/, 'refused before sending');
  } finally {
    await w.close();
  }
  // 3. Over the topic's maxMessageSize: the broker's receipt refuses it.
  const small = `${uniqueTopic('small')}.dlq`;
  await admin('PUT', small);
  assert.equal((await admin('POST', `${small}/maxMessageSize`, 100_000)).status, 204);
  // The topic policy reaches the broker asynchronously: wait until it refuses a large message.
  await waitUntil(
    'the topic policy to apply',
    async () =>
      produce(broker.url, TENANT, NAMESPACE, small, [{ payload: Buffer.alloc(200_000) }]).then(
        () => false,
        () => true,
      ),
    20_000,
  );
  const w3 = writer({ hooks });
  try {
    await w3.write(small, record({ offset: 3n, key: Buffer.from('k3'), value: Buffer.alloc(200_000, 1) }), reason, AbortSignal.timeout(30_000));
  } finally {
    await w3.close();
  }
  assert.deepEqual(omitted, ['value', 'value', 'value', 'value']);
  const written = [...(await letters(dlq, 3)), ...(await letters(small, 1))];
  assert.deepEqual(
    written.map((l) => ({ key: l.original?.key?.toString(), value: l.original?.value?.length, omitted: l.omitted, offset: l.original?.offset })),
    [
      { key: 'k', value: 0, omitted: 'value (1500000 bytes)', offset: 123_456_789n },
      { key: 'k2', value: 0, omitted: 'value (1500000 bytes)', offset: 2n },
      { key: 'k4', value: 0, omitted: 'value (1500000 bytes)', offset: 4n },
      { key: 'k3', value: 0, omitted: 'value (200000 bytes)', offset: 3n },
    ],
  );
  assert.deepEqual(
    written[0]?.original?.headers.map(([n, v]) => [n.toString(), v.toString()]),
    [['h', 'v']],
    'the key and the headers are kept',
  );
});

test('control log: two replicas see each other in one order, tombstones, catching up, the whole history, nothing left behind', async () => {
  const topic = `${uniqueTopic('sub')}.inserter-control`;
  const options = { ...access(), topic, retry: FAST_RETRY, logger, keepaliveMs: 200 };
  const a = new PulsarControlLog({ ...options, replicaId: 'a' });
  const b = new PulsarControlLog({ ...options, replicaId: 'b' });
  const seenA: ControlRecord[] = [];
  const seenB: ControlRecord[] = [];
  const signal = AbortSignal.timeout(30_000);
  const c = new PulsarControlLog({ ...options, replicaId: 'c' });
  try {
    await a.follow((r) => seenA.push(r), signal); // an empty topic: caught up at once
    const offsets = [await a.append('pause/1', '{"scope":"x"}', signal)];
    await b.follow((r) => seenB.push(r), signal);
    assert.deepEqual(
      seenB.map((r) => [r.key, r.value, r.offset]),
      [['pause/1', '{"scope":"x"}', offsets[0]]],
      'follow resolves once the existing record is delivered',
    );
    offsets.push(await b.append('heartbeat/b', 'hb', signal));
    offsets.push(await a.append('pause/1', undefined, signal));
    offsets.push(await b.append('empty', '', signal));
    const expected = [
      ['pause/1', '{"scope":"x"}'],
      ['heartbeat/b', 'hb'],
      ['pause/1', undefined],
      ['empty', ''],
    ].map(([key, value], i) => ({ key, value, offset: offsets[i] }));
    const view = (rs: ControlRecord[]): unknown[] => rs.map(({ key, value, offset }) => ({ key, value, offset }));
    await waitUntil('both replicas to see every record', () => seenA.length >= 4 && seenB.length >= 4, 10_000);
    assert.deepEqual(view(seenA), expected, 'replica a: its own and b’s records, in order, the tombstone as undefined');
    assert.deepEqual(view(seenB), expected, 'replica b: the same');
    assert.ok(seenA.every((r) => Math.abs(r.timestamp - Date.now()) < 60_000));
    // A new replica: follow resolves after the whole history, delivered before it resolves.
    const seenC: ControlRecord[] = [];
    await c.follow((r) => seenC.push(r), signal);
    assert.deepEqual(view(seenC), expected);
    await pause(600);
    assert.ok(a.silenceMs() < 500, `keepalives answered: silence ${a.silenceMs()} ms`);
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
  // The WebSocket service closes a reader's consumer asynchronously, after the socket.
  type Stats = { subscriptions: Record<string, unknown>; publishers: unknown[] };
  const stats = async (): Promise<Stats> => (await (await admin('GET', `${topic}/stats`)).json()) as Stats;
  await waitUntil('the readers to leave no subscription behind', async () => Object.keys((await stats()).subscriptions).length === 0, 10_000);
  assert.equal((await stats()).publishers.length, 0);
  const retention = (await (await admin('GET', `${topic}/retention`)).json()) as { retentionTimeInMinutes: number };
  assert.equal(retention.retentionTimeInMinutes, -1);
});

test('control log: a reader whose connection is reset reads on after its last record, nothing twice', async () => {
  const topic = `${uniqueTopic('sub')}.inserter-control`;
  const proxy = await startFaultProxy(broker.url);
  const options = { ...access(), topic, retry: FAST_RETRY, logger };
  const warnings = capture('warn');
  const a = new PulsarControlLog({ ...options, url: proxy.url, replicaId: 'a', logger: warnings.logger });
  const b = new PulsarControlLog({ ...options, replicaId: 'b' });
  const seen: ControlRecord[] = [];
  const signal = AbortSignal.timeout(30_000);
  try {
    const offsets = [await b.append('k0', 'v0', signal), await b.append('k1', 'v1', signal)];
    await a.follow((r) => seen.push(r), signal);
    assert.equal(seen.length, 2);
    proxy.setMode('reset');
    offsets.push(await b.append('k2', 'v2', signal));
    await pause(300);
    assert.equal(seen.length, 2, 'nothing while the connection is down');
    proxy.setMode('pass');
    offsets.push(await b.append('k3', 'v3', signal));
    await waitUntil('a to read on', () => seen.length >= 4, 10_000);
    await pause(300);
    assert.deepEqual(
      seen.map((r) => [r.key, r.offset]),
      offsets.map((offset, i) => [`k${i}`, offset]),
    );
    assert.ok(
      warnings.lines.some((l) => l.msg === 'control topic reader failed; reading again after the last record'),
      'the reader was cut off and opened again',
    );
  } finally {
    await Promise.all([a.close(), b.close()]);
    await proxy.stop();
  }
});

test('control log: follow is aborted by its signal before catching up', async () => {
  const log = new PulsarControlLog({ ...access(), topic: `${uniqueTopic('sub')}.inserter-control`, replicaId: 'x', retry: FAST_RETRY, logger });
  try {
    const stop = new AbortController();
    stop.abort();
    await assert.rejects(
      log.follow(() => undefined, stop.signal),
      { code: 'INSERTER_CONTROL_ABORTED' },
    );
  } finally {
    await log.close();
  }
});

test('lag: the subscription backlog per partition, dropping to 0 as the consumer acknowledges', async () => {
  const topic = uniqueTopic('lag');
  const sub = `${topic}-sub`;
  await createPartitionedTopic(broker.url, TENANT, NAMESPACE, topic, 2);
  const messages = (n: number): Array<{ payload: string }> => Array.from({ length: n }, (_, i) => ({ payload: `m${i}` }));
  await produce(broker.url, TENANT, NAMESPACE, `${topic}-partition-0`, messages(10));
  await produce(broker.url, TENANT, NAMESPACE, `${topic}-partition-1`, messages(4));
  const lag = new PulsarLagSource({ ...access(), subscription: sub, topics: [topic], intervalMs: 100, logger });
  const source = new PulsarSource({ ...access(), subscription: sub, topics: [topic], retry: FAST_RETRY });
  const running = new AbortController();
  const records: SourceRecord[] = [];
  let run: Promise<void> | undefined;
  try {
    assert.equal(lag.lag(topic, 0), undefined, 'undefined before the first poll');
    lag.start();
    await waitUntil('the first poll', () => lag.lag(topic, 1) !== undefined, 10_000);
    assert.deepEqual([lag.lag(topic, 0), lag.lag(topic, 1)], [10, 4], 'never subscribed: every message is behind');
    run = source.run({ onRecord: (r) => void records.push(r), onAssigned: () => undefined, onRevoked: () => undefined, onReset: () => undefined }, running.signal);
    await waitUntil('every record read', () => records.length === 14, 20_000);
    await waitUntil('the subscription to exist', async () => (await subscriptionStats(broker.url, TENANT, NAMESPACE, `${topic}-partition-1`, sub)) !== undefined);
    await pause(300);
    assert.deepEqual([lag.lag(topic, 0), lag.lag(topic, 1)], [10, 4], 'read but not acknowledged: still behind');
    const at = (p: number, i: number): bigint => records.filter((r) => r.partition === p)[i]?.offset ?? -1n;
    await source.commit([{ topic, partition: 0, offset: at(0, 6), epoch: 0 }]);
    await waitUntil('partition 0 to drop to 4', () => lag.lag(topic, 0) === 4, 10_000);
    await source.commit([
      { topic, partition: 0, offset: at(0, 9) + 1n, epoch: 0 },
      { topic, partition: 1, offset: at(1, 3) + 1n, epoch: 0 },
    ]);
    await waitUntil('both to drop to 0', () => lag.lag(topic, 0) === 0 && lag.lag(topic, 1) === 0, 10_000);
    assert.equal(lag.lag('no-such-topic', 0), undefined);
  } finally {
    await lag.close();
    running.abort();
    await source.close();
    await run;
  }
  const polled = lag.lastPollAt;
  await pause(300);
  assert.equal(lag.lastPollAt, polled, 'no poll after close()');
});
