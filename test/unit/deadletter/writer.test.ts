// The dead-letter writer (deadletter/writer.ts) driven through a fake bus: a missing topic fails
// each attempt at once, classified and counted, and the write goes through once the topic exists; a
// send the bus never acknowledges fails the attempt after writeTimeoutMs and is joined, not sent
// again, so a send that lands late is one dead letter, not two; a dead letter too large is written
// without its value, then without its key and original headers; refused even then, it is a
// permanent error retried only every capMs, never a spin; an abort ends a write at once; a dead
// letter written without its value is read back with its reason and never replayed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeadLetterPublisher, DeadLetterWriteError, missingTopic, type DeadLetterMessage, type DeadLetterTransport, type DeadLetterWriteCode } from '../../../src/deadletter/writer.ts';
import { parseDeadLetter } from '../../../src/deadletter/record.ts';
import { replayable } from '../../../src/deadletter/replay-select.ts';
import { emptyReport } from '../../../src/deadletter/replay-report.ts';
import type { LedgerView } from '../../../src/deadletter/replay-ledger.ts';
import { deadLetterHeader } from '../../../src/deadletter/types.ts';
import type { DeadLetterReason } from '../../../src/deadletter/types.ts';
import { AbortedError } from '../../../src/errors/inserter-error.ts';
import type { SourceRecord } from '../../../src/source/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';

class TooLarge extends Error {
  readonly apiId = 'MESSAGE_TOO_LARGE';
}

/** A bus: topics that exist, a size limit, sends that can be held back. */
class FakeBus implements DeadLetterTransport {
  readonly topics = new Set<string>();
  readonly written: DeadLetterMessage[] = [];
  sends = 0;
  limit = Infinity;
  /** While set, sends wait until release() (the broker does not answer). */
  holding = false;
  readonly #held: Array<{ message: DeadLetterMessage; resolve: () => void; reject: (e: unknown) => void }> = [];

  async prepare(topic: string): Promise<void> {
    if (!this.topics.has(topic)) throw missingTopic(topic, new Error(`Unknown topic ${topic}.`));
  }

  send(message: DeadLetterMessage): Promise<void> {
    this.sends++;
    if (this.holding) return new Promise((resolve, reject) => this.#held.push({ message, resolve, reject }));
    return this.#land(message);
  }

  async #land(message: DeadLetterMessage): Promise<void> {
    if (!this.topics.has(message.topic)) throw Object.assign(new Error(`Unknown topic ${message.topic}.`), { apiCode: 3 });
    if (size(message) > this.limit) throw new TooLarge('too large');
    this.written.push(message);
  }

  /** Answers the held sends: they land (or fail as the bus is now). */
  release(fail?: Error): void {
    this.holding = false;
    for (const h of this.#held.splice(0)) {
      if (fail !== undefined) h.reject(fail);
      else this.#land(h.message).then(h.resolve, h.reject);
    }
  }

  isTooLarge(error: unknown): boolean {
    return error instanceof TooLarge;
  }

  isUnknownTopic(error: unknown): boolean {
    return (error as { apiCode?: unknown }).apiCode === 3;
  }

  async close(): Promise<void> {}
}

function size(m: DeadLetterMessage): number {
  let n = (m.key?.length ?? 0) + (m.value?.length ?? 0);
  for (const [k, v] of m.headers) n += k.length + v.length;
  return n;
}

function headers(m: DeadLetterMessage): Map<string, string> {
  return new Map([...m.headers].map(([k, v]) => [k.toString(), v.toString()]));
}

const record: SourceRecord = {
  topic: 'events',
  partition: 3,
  offset: 42n,
  timestamp: 1_700_000_000_000n,
  key: Buffer.alloc(2_000, 0x6b),
  value: Buffer.alloc(10_000, 0x76),
  headers: [[Buffer.from('origin'), Buffer.alloc(3_000, 0x68)]],
  epoch: 0,
};
const reason: DeadLetterReason = { errorClass: 'row_data', code: 'INSERTER_SINK_ROW_DATA', message: 'Cannot parse input', route: 'r', destination: 'd', table: 'db.t', attempts: 2 };

interface Seen {
  failures: Array<[string, DeadLetterWriteCode]>;
  waiting: number;
  omitted: string[];
  logs: string[];
}

function writer(bus: FakeBus, options: { capMs?: number; writeTimeoutMs?: number } = {}): { w: DeadLetterPublisher; seen: Seen } {
  const seen: Seen = { failures: [], waiting: 0, omitted: [], logs: [] };
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      seen.logs.push(chunk.toString());
      done();
    },
  });
  const w = new DeadLetterPublisher(bus, {
    retry: { baseMs: 5, factor: 2, capMs: options.capMs ?? 20 },
    writeTimeoutMs: options.writeTimeoutMs ?? 50,
    logger: createLogger('warn', sink),
    hooks: {
      onFailure: (topic, code) => seen.failures.push([topic, code]),
      onStuck: (_topic, delta) => (seen.waiting += delta),
      onOmitted: (_topic, what) => seen.omitted.push(what),
    },
  });
  return { w, seen };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test('a missing dead-letter topic fails each attempt at once (INSERTER_DLQ_TOPIC_MISSING, naming it), counted and logged; the write lands once the topic exists', async () => {
  const bus = new FakeBus();
  const { w, seen } = writer(bus);
  let done = false;
  const writing = w.write('events.dlq', record, reason, new AbortController().signal).then(() => (done = true));
  await until(() => seen.failures.length >= 3, 'three failed attempts');
  assert.equal(done, false, 'unresolved while the topic is missing');
  assert.equal(bus.sends, 0, 'nothing sent to a topic the bus does not know (the client would wait inside)');
  assert.deepEqual(new Set(seen.failures.map(([t, c]) => `${t} ${c}`)), new Set(['events.dlq INSERTER_DLQ_TOPIC_MISSING']));
  assert.equal(seen.waiting, 1, 'one dead letter waiting');
  const logged = seen.logs.join('');
  assert.match(logged, /the dead-letter topic events\.dlq does not exist/);
  assert.match(logged, /"code":"INSERTER_DLQ_TOPIC_MISSING"/);
  bus.topics.add('events.dlq');
  await writing;
  assert.equal(bus.written.length, 1);
  assert.equal(seen.waiting, 0, 'no longer waiting');
});

test('a send never acknowledged fails the attempt after writeTimeoutMs (INSERTER_DLQ_WRITE_TIMEOUT) and is joined, not repeated: landing late, it is one dead letter', async () => {
  const bus = new FakeBus();
  bus.topics.add('events.dlq');
  bus.holding = true;
  const { w, seen } = writer(bus, { writeTimeoutMs: 30 });
  const writing = w.write('events.dlq', record, reason, new AbortController().signal);
  await until(() => seen.failures.length >= 4, 'several timed-out attempts');
  assert.ok(seen.failures.every(([, c]) => c === 'INSERTER_DLQ_WRITE_TIMEOUT'));
  assert.equal(bus.sends, 1, 'the send in flight is waited on again, never sent a second time');
  assert.match(seen.logs.join(''), /was not acknowledged by the broker within 30 ms \(topic events\.dlq\)/);
  bus.release();
  await writing;
  assert.equal(bus.written.length, 1, 'one dead letter');
  assert.equal(seen.waiting, 0);
});

test('a send that timed out and then fails is sent again (nothing of it landed)', async () => {
  const bus = new FakeBus();
  bus.topics.add('events.dlq');
  bus.holding = true;
  const { w, seen } = writer(bus, { writeTimeoutMs: 30 });
  const writing = w.write('events.dlq', record, reason, new AbortController().signal);
  await until(() => seen.failures.length >= 1, 'a timed-out attempt');
  bus.release(new Error('connection closed'));
  await writing;
  assert.equal(bus.sends, 2);
  assert.equal(bus.written.length, 1);
  assert.ok(seen.failures.some(([, c]) => c === 'INSERTER_DLQ_FAILED'));
});

test('the topic deleted while a send waits: the timed-out attempt is named INSERTER_DLQ_TOPIC_MISSING', async () => {
  const bus = new FakeBus();
  bus.topics.add('events.dlq');
  bus.holding = true;
  const { w, seen } = writer(bus, { writeTimeoutMs: 30 });
  const writing = w.write('events.dlq', record, reason, new AbortController().signal);
  bus.topics.delete('events.dlq');
  await until(() => seen.failures.length >= 2, 'two failed attempts');
  assert.ok(seen.failures.every(([, c]) => c === 'INSERTER_DLQ_TOPIC_MISSING'));
  bus.topics.add('events.dlq');
  bus.release();
  await writing;
  assert.equal(bus.sends, 1);
  assert.equal(bus.written.length, 1);
});

test('too large: written without its value; still too large: without its key and original headers too, the reason and coordinates kept', async () => {
  const bus = new FakeBus();
  bus.topics.add('events.dlq');
  bus.limit = 9_000; // the key and the original header (5 KB) fit, the value (10 KB) does not
  const first = writer(bus);
  await first.w.write('events.dlq', record, reason, new AbortController().signal);
  let h = headers(bus.written[0]!);
  assert.equal(bus.written[0]!.value, undefined);
  assert.equal(bus.written[0]!.key?.length, 2_000);
  assert.equal(h.get(deadLetterHeader.valueOmitted), '10000');
  assert.equal(h.get('origin')?.length, 3_000);
  assert.deepEqual(first.seen.omitted, ['value']);

  bus.limit = 2_000; // only the writer's headers fit
  const second = writer(bus);
  await second.w.write('events.dlq', record, reason, new AbortController().signal);
  const bare = bus.written[1]!;
  h = headers(bare);
  assert.equal(bare.value, undefined);
  assert.equal(bare.key, undefined);
  assert.equal(h.has('origin'), false);
  assert.equal(h.get(deadLetterHeader.valueOmitted), '10000');
  assert.equal(h.get(deadLetterHeader.keyHeadersOmitted), 'key 2000 bytes, 1 headers 3006 bytes');
  assert.equal(h.get(deadLetterHeader.offset), '42');
  assert.equal(h.get(deadLetterHeader.code), 'INSERTER_SINK_ROW_DATA');
  assert.deepEqual(second.seen.omitted, ['key_headers']);
  assert.deepEqual(second.seen.failures, [], 'no failed attempt: the fallbacks are one attempt');
  assert.match(second.seen.logs.join(''), /still too large without its value: written without its key and original headers too/);

  // Read back: the reason is found, the missing parts are named, and it is never replayed.
  const letter = parseDeadLetter({ topic: 'events.dlq', partition: 0, offset: 1n, timestamp: 0n, key: undefined, value: undefined, headers: [...bare.headers] });
  assert.equal(letter.code, 'INSERTER_SINK_ROW_DATA');
  assert.equal(letter.original?.offset, 42n);
  assert.match(letter.omitted ?? '', /value \(10000 bytes\), key and headers/);
  const report = emptyReport('original', false);
  const ledger: LedgerView = { entries: new Map(), recordedFor: () => undefined, write: async () => {} };
  assert.deepEqual(replayable([letter], ledger, report, false), []);
  assert.match(report.skipped[0]?.detail ?? '', /written without its value.*still in events\/3 at offset 42/);
});

test('refused even bare: a permanent INSERTER_DLQ_REFUSED, retried every capMs (not a spin); raising the limit lets the whole dead letter through', async () => {
  const bus = new FakeBus();
  bus.topics.add('events.dlq');
  bus.limit = 100;
  const { w, seen } = writer(bus, { capMs: 40 });
  const started = Date.now();
  const writing = w.write('events.dlq', record, reason, new AbortController().signal);
  await until(() => seen.failures.length >= 3, 'three refusals');
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 80, `two waits of capMs between three attempts (${elapsed} ms)`);
  assert.ok(seen.failures.every(([, c]) => c === 'INSERTER_DLQ_REFUSED'));
  assert.ok(bus.sends <= 3 * (seen.failures.length + 1), 'three sends per attempt at most');
  assert.match(seen.logs.join(''), /refuses the dead letter of events\/3\/42 as too large even without its value, key and original headers: raise the topic's max\.message\.bytes/);
  assert.equal(seen.waiting, 1);
  bus.limit = Infinity;
  await writing;
  assert.equal(bus.written.at(-1)?.value?.length, 10_000, 'the whole dead letter once it fits');
  assert.equal(seen.waiting, 0);
});

test('an abort ends a write at once, whatever it waits on; it rejects (the record stays unresolved)', async () => {
  for (const setUp of [(bus: FakeBus) => (bus.holding = true), () => {}]) {
    const bus = new FakeBus();
    bus.topics.add('events.dlq');
    setUp(bus);
    if (!bus.holding) bus.topics.delete('events.dlq');
    const { w, seen } = writer(bus, { writeTimeoutMs: 60_000, capMs: 60_000 });
    const abort = new AbortController();
    const writing = w.write('events.dlq', record, reason, abort.signal);
    await sleep(20);
    abort.abort();
    await assert.rejects(writing, (e: unknown) => e instanceof AbortedError);
    assert.equal(seen.waiting, 0, 'the waiting gauge is balanced');
  }
});

test('DeadLetterWriteError names its topic and is retryable, except a refusal', () => {
  const e = missingTopic('x.dlq');
  assert.ok(e instanceof DeadLetterWriteError);
  assert.equal(e.topic, 'x.dlq');
  assert.equal(e.retryable, true);
  assert.equal(e.code, 'INSERTER_DLQ_TOPIC_MISSING');
});
