// Review 2026-12-07f of Apache Pulsar as a source (src/source/pulsar-*.ts, commit f0d5c34), against a
// fake web service the test controls (fake-pulsar.ts: node:http and a minimal WebSocket server of its
// own) for what a real broker will not do on demand: a close handshake never answered, a message id
// with a smaller offset than the one before, ids at the packing limits, a receipt that never comes or
// cannot be decoded, admin calls that hang or are redirected to another broker. The real classes
// throughout; the real Pipeline where the consequence is the point. Tests marked "Fixed, was finding N"
// demonstrated a finding and pass since it was fixed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { inspect } from 'node:util';
import { afterEach, beforeEach, test } from 'node:test';
import { MemoryLedgerStore, type LedgerJson } from '../../../src/ack/ledger.ts';
import { Secret } from '../../../src/config/secret.ts';
import { ConfigError } from '../../../src/errors/inserter-error.ts';
import { Pipeline } from '../../../src/pipeline/pipeline.ts';
import { PulsarLedgerStore } from '../../../src/source/pulsar-ledger-store.ts';
import { encodeMessageId, offsetOf, type PulsarMessageId } from '../../../src/source/pulsar-message-id.ts';
import { PulsarSource } from '../../../src/source/pulsar-source.ts';
import type { SourceHandler, SourceRecord } from '../../../src/source/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { Metrics } from '../../../src/telemetry/metrics.ts';
import { HeldDeadLetters, TokenWarehouse, worldConfig } from '../../helpers/pipeline-world.ts';
import { REPO_ROOT } from '../../helpers/pulsar.ts';
import { settle, startFakePulsar, until, type AdminRequest, type FakeConnection, type FakePulsar } from './fake-pulsar.ts';

let fake: FakePulsar;
const closers: Array<() => Promise<unknown>> = [];

beforeEach(async () => {
  fake = await startFakePulsar();
});

afterEach(async () => {
  await fake.close(); // first: a socket the adapter waits on ends here
  for (const close of closers.splice(0)) await close();
});

const id = (ledgerId: bigint, entryId: bigint, batchIndex = -1): PulsarMessageId => ({ ledgerId, entryId, partition: -1, batchIndex });
const message = (m: PulsarMessageId, text: string): { messageId: string; payload: string } => ({ messageId: encodeMessageId(m), payload: Buffer.from(text).toString('base64') });
const ledger = (n: number): LedgerJson => ({ v: 2, resolvedBelow: String(n), intents: [] });
const OPTIONS = { tenant: 'public', namespace: 'default', subscription: 'sub', topics: ['t'], retry: { baseMs: 20, factor: 1, capMs: 20 } };

function source(options: Partial<ConstructorParameters<typeof PulsarSource>[0]> = {}): PulsarSource {
  const made = new PulsarSource({ url: fake.url, ...OPTIONS, ...options });
  closers.push(() => made.close());
  return made;
}

function collector(): { handler: SourceHandler; records: SourceRecord[]; log: string[] } {
  const records: SourceRecord[] = [];
  const log: string[] = [];
  return {
    records,
    log,
    handler: {
      onRecord: (record) => {
        records.push(record);
        log.push(`record ${record.value?.toString()}`);
      },
      onAssigned: (refs) => log.push(...refs.map((r) => `assigned ${r.partition}`)),
      onRevoked: (refs) => log.push(...refs.map((r) => `revoked ${r.partition}`)),
      onReset: () => log.push('reset'),
    },
  };
}

/** Runs the source until the test ends. */
function run(made: PulsarSource, handler: SourceHandler): { running: Promise<void>; stop: AbortController } {
  const stop = new AbortController();
  const running = made.run(handler, stop.signal);
  closers.unshift(async () => {
    stop.abort();
    await running.catch(() => undefined);
  });
  return { running, stop };
}

const acks = (connection: FakeConnection): string[] =>
  connection.frames.filter((f): f is { messageId: string } => typeof (f as { messageId?: unknown }).messageId === 'string').map((f) => f.messageId);

/** A ledger topic's admin API: create and retention accepted, examinemessage from `log` (newest last), internal stats of `ledgers`. */
function ledgerAdmin(
  log: Array<{ id: [number, number]; envelope: unknown }>,
  ledgers: Array<{ ledgerId: number; entries: number }>,
): (request: AdminRequest) => { status: number; body?: unknown; headers?: Record<string, string> } {
  return (request) => {
    const examine = /\/examinemessage\?initialPosition=latest&messagePosition=(\d+)/.exec(request.path);
    if (examine !== null) {
      const entry = log[log.length - Number(examine[1])];
      if (entry === undefined) return { status: 404 };
      return { status: 200, body: Buffer.from(JSON.stringify(entry.envelope)), headers: { 'x-pulsar-message-id': `${entry.id[0]}:${entry.id[1]}` } };
    }
    if (request.path.endsWith('/internalStats')) return { status: 200, body: { ledgers } };
    if (request.path.endsWith('/retention') && request.method === 'GET') return { status: 404 };
    return { status: 204 };
  };
}

// Fixed, was finding 7: PulsarSocket.close() gives up waiting after 5 s but never reports the socket closed; `closed` never resolves
test('the ownership check closes a session whose peer never answers the close: the partition is revoked within the close bound', async () => {
  fake.admin = (request) => (request.path.endsWith('/stats') ? { status: 200, body: { subscriptions: { sub: { consumers: [] } } } } : { status: 404 });
  const seen = collector();
  run(source({ ownershipCheckMs: 50 }), seen.handler);
  const consumer = await fake.next('consumer');
  consumer.ignoreClose = true; // a broker stalled, or a half-open connection
  consumer.send(message(id(5n, 1n), 'one'));
  await until(() => consumer.closeCodes.includes(4000), 'the ownership check to close the session');
  await until(() => seen.log.includes('revoked 0'), 'onRevoked', 6_500).catch(() => undefined);
  // (Then it is subscribed again at once: an 'assigned 0' may follow.)
  assert.deepEqual(seen.log.slice(0, 3), ['assigned 0', 'record one', 'revoked 0'], 'the partition is revoked (and subscribed again) once the close bound passed');
});

// Fixed, was finding 7: the ownership loop awaits `session.closed`, which never resolves; close() waits for the loop
test('PulsarSource.close() ends within its bound when the broker never answers the close handshake', async () => {
  const seen = collector();
  const made = source();
  const { running, stop } = run(made, seen.handler);
  const consumer = await fake.next('consumer');
  consumer.ignoreClose = true;
  await until(() => seen.log.includes('assigned 0'), 'assigned');
  stop.abort();
  await running;
  const closing = await settle(made.close(), 6_500);
  assert.notEqual(closing.outcome, 'pending', 'close() still pending after 6.5 s (PulsarSocket.close bounds its own wait at 5 s)');
});

// Fixed, was finding 8: the source hands it on; the pipeline drops it as already seen, and the next commit acknowledges it
test('a message id with a smaller offset than one already handed on (never delivered before) is not acknowledged unread', async () => {
  const warehouse = new TokenWarehouse();
  const config = worldConfig({
    routes: [{ name: 'events', topic: 't', table: 'events', createTable: { enabled: false } }],
    teams: { map: { 1: 'd1' } },
    batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 },
    commitIntervalMs: 20,
  });
  const pipeline = new Pipeline({
    config,
    source: source(),
    sinkFactory: (d) => warehouse.sink(d),
    deadLetters: new HeldDeadLetters(),
    ledgers: new MemoryLedgerStore(),
    logger: createLogger('silent'),
    metrics: new Metrics(),
  });
  const running = pipeline.start();
  closers.unshift(async () => {
    await pipeline.destroy();
    await running.catch(() => undefined);
  });
  const consumer = await fake.next('consumer');
  const ids = [id(9n, 10n), id(9n, 11n), id(9n, 5n), id(9n, 12n)];
  const uuids = ['u10', 'u11', 'u5', 'u12'];
  ids.forEach((m, i) => consumer.send(message(m, JSON.stringify({ team_id: 1, uuid: uuids[i] }))));
  await until(() => acks(consumer).includes(encodeMessageId(id(9n, 12n))), 'the last record acknowledged');
  const lostAndAcked = acks(consumer).includes(encodeMessageId(id(9n, 5n))) && !warehouse.uuids().includes('u5');
  assert.equal(lostAndAcked, false, `u5 (offset ${offsetOf(id(9n, 5n))}, after ${offsetOf(id(9n, 11n))}) acknowledged, never inserted; inserted: ${warehouse.uuids().join(' ')}`);
});

test('holds: message ids at the packing limits are delivered with their offsets; a batch index of 1024 is refused loudly (run rejects) and close() leaves no socket', async () => {
  const seen = collector();
  const made = source();
  const { running } = run(made, seen.handler);
  const consumer = await fake.next('consumer');
  consumer.send(message(id(7n, 3n, 1022), 'a'));
  consumer.send(message(id(7n, 3n, 1023), 'b'));
  consumer.send(message(id((1n << 26n) - 1n, (1n << 17n) - 1n, 1023), 'c'));
  consumer.send(message(id(1n << 26n, 0n, 0), 'd'));
  const outcome = await settle(running, 5_000);
  assert.deepEqual(
    seen.records.map((r) => [r.value?.toString(), r.offset]),
    [
      ['a', (7n << 27n) | (3n << 10n) | 1022n],
      ['b', (7n << 27n) | (3n << 10n) | 1023n],
      ['c', (1n << 53n) - 1n],
    ],
  );
  assert.equal((outcome.outcome as { code?: string }).code, 'PULSAR_MESSAGE_ID', `run() rejects: ${String(outcome.outcome)}`);
  await made.close();
  await until(() => consumer.ended, 'the socket closed');

  // A batch index of 1024 on a fresh source.
  const second = collector();
  const other = source();
  const again = run(other, second.handler);
  const next = await fake.next('consumer');
  next.send(message(id(7n, 4n, 1024), 'e'));
  const refused = await settle(again.running, 5_000);
  assert.match(String((refused.outcome as Error).message), /batch index 1024/);
  assert.deepEqual(second.records, []);
  await other.close();
  await until(() => next.ended, 'the socket closed');
});

test('holds: commit acknowledges exactly the delivered ids below the position; none at or above it, none twice, none for a partition not owned; a frame arriving after the session decided to close is not handed on', async () => {
  let owned = true;
  fake.admin = (request) => (request.path.endsWith('/stats') ? { status: 200, body: { subscriptions: { sub: { consumers: owned ? [{ consumerName: made.consumerName }] : [] } } } } : { status: 404 });
  const seen = collector();
  const made = source({ ownershipCheckMs: 50 });
  run(made, seen.handler);
  const consumer = await fake.next('consumer');
  await until(() => consumer.frames.length > 0, 'the first permit'); // (sent once the socket is open on the client's side)
  assert.deepEqual(consumer.frames[0], { type: 'permit', permitMessages: 1000 });
  const ids = [id(5n, 1n), id(5n, 2n, 0), id(5n, 2n, 1), id(6n, 0n)];
  ids.forEach((m, i) => consumer.send(message(m, `m${i}`)));
  await until(() => seen.records.length === 4, 'four records');
  await made.commit([{ topic: 't', partition: 0, offset: offsetOf(ids[2] as PulsarMessageId), epoch: 0 }]);
  assert.deepEqual(
    acks(consumer),
    [ids[0], ids[1]].map((m) => encodeMessageId(m as PulsarMessageId)),
  );
  await made.commit([{ topic: 't', partition: 0, offset: offsetOf(ids[2] as PulsarMessageId), epoch: 0 }]);
  await made.commit([{ topic: 't', partition: 1, offset: 1n << 50n, epoch: 0 }]);
  assert.equal(acks(consumer).length, 2, 'the same position again, and a partition not owned: nothing');
  await made.commit([{ topic: 't', partition: 0, offset: offsetOf(ids[3] as PulsarMessageId) + 1n, epoch: 0 }]);
  assert.deepEqual(
    acks(consumer),
    ids.map((m) => encodeMessageId(m)),
  );
  // The ownership check finds the subscription held by someone else: the session is closed; a frame
  // the broker sends after the client's close frame is not handed on.
  consumer.onCloseFrame = () => consumer.send(message(id(6n, 1n), 'late'));
  owned = false;
  await until(() => seen.log.includes('revoked 0'), 'revoked');
  assert.ok(!seen.log.includes('record late'), seen.log.join(', '));
  await made.commit([{ topic: 't', partition: 0, offset: 1n << 50n, epoch: 0 }]);
  assert.equal(acks(consumer).length, 4, 'nothing acknowledged after the revocation');
});

// Fixed, was finding 9: deadline() adds its abort listener to an aborted signal (never fires); a queued save waits for the chain without its signal
test('ledger store: a save whose signal is aborted ends at once — also when the signal was aborted before, or the save waits behind another', async () => {
  let answer = true;
  let entry = 0n;
  fake.admin = ledgerAdmin([], [{ ledgerId: 7, entries: 0 }]);
  fake.onConnection = (connection) => {
    connection.onFrame = (frame) => {
      const context = (frame as { context?: string }).context;
      if (context !== undefined && answer) connection.send({ result: 'ok', messageId: encodeMessageId(id(7n, entry++)), context });
    };
  };
  const store = new PulsarLedgerStore({ url: fake.url, tenant: 'public', namespace: 'default', subscription: 'sub', retry: { baseMs: 20, factor: 1, capMs: 20 } });
  closers.push(() => store.close());
  await store.load('t', 0, AbortSignal.timeout(5_000));
  answer = false; // receipts stop coming (the broker is away)
  const hung = store.save('t', 0, ledger(1), AbortSignal.timeout(60_000));
  hung.catch(() => undefined);
  const queued = new AbortController();
  const behind = store.save('t', 0, ledger(2), queued.signal);
  queued.abort();
  const waitedBehind = await settle(behind, 1_000);
  const preAborted = await settle(store.save('t', 0, ledger(3), AbortSignal.abort()), 1_000);
  assert.deepEqual(
    [waitedBehind.outcome === 'pending', preAborted.outcome === 'pending'],
    [false, false],
    'a queued save, and a save with an aborted signal, are still waiting after 1 s (up to 15 s)',
  );
});

test('holds: a ledger write whose receipt never comes ends at once when its signal fires; the producer is given up (nothing more is written without a takeover)', async () => {
  let answer = true;
  let entry = 0n;
  fake.admin = ledgerAdmin([], [{ ledgerId: 7, entries: 0 }]);
  fake.onConnection = (connection) => {
    connection.onFrame = (frame) => {
      const context = (frame as { context?: string }).context;
      if (context !== undefined && answer) connection.send({ result: 'ok', messageId: encodeMessageId(id(7n, entry++)), context });
    };
  };
  const store = new PulsarLedgerStore({ url: fake.url, tenant: 'public', namespace: 'default', subscription: 'sub', retry: { baseMs: 20, factor: 1, capMs: 20 } });
  closers.push(() => store.close());
  await store.load('t', 0, AbortSignal.timeout(5_000));
  await store.save('t', 0, ledger(1), AbortSignal.timeout(5_000));
  answer = false;
  const controller = new AbortController();
  const pending = store.save('t', 0, ledger(2), controller.signal);
  const producer = fake.connections.find((c) => c.kind === 'producer') as FakeConnection;
  await until(() => producer.frames.filter((f) => (f as { context?: string }).context !== undefined).length === 3, 'the write sent');
  controller.abort();
  const outcome = await settle(pending, 1_000);
  assert.equal((outcome.outcome as { code?: string }).code, 'INSERTER_LEDGER_FENCED', String(outcome.outcome));
  await until(() => producer.ended, 'the producer closed (the lease handed on)');
  await assert.rejects(store.save('t', 0, ledger(3), AbortSignal.timeout(1_000)), { code: 'INSERTER_LEDGER_FENCED' });
});

// Fixed, was finding 9: #explain asks the admin API under AbortSignal.timeout(5000), not the stop signal
test('PulsarSource.close() while a refused subscribe is being explained (the admin API does not answer) ends at once', async () => {
  fake.accept = (kind) => (kind === 'consumer' ? 409 : true);
  fake.admin = (request) => (request.path.endsWith('/stats') ? 'hang' : { status: 404 });
  const made = source({ onError: () => undefined }); // (without onError no explanation is asked for)
  const { running, stop } = run(made, collector().handler);
  await until(() => fake.requests.some((r) => r.path.endsWith('/stats')), 'the refusal being explained');
  stop.abort();
  const closing = await settle(Promise.all([running, made.close()]), 1_000);
  assert.notEqual(closing.outcome, 'pending', 'close() waits for the explanation (up to 5 s)');
});

test('holds: a load walks back past a record whose `after` is not its predecessor and takes the newest valid one; its takeover record names the topic’s end', async () => {
  const key = 'sub/t/0';
  const envelope = (after: string | null, n: number): unknown => ({ v: 1, key, owner: 'o', takeover: false, after, ledger: ledger(n) });
  // 9:1 valid; 9:2 valid (after 9:1); 9:3 claims to follow 9:1 (a late write: its predecessor is 9:2).
  fake.admin = ledgerAdmin(
    [
      { id: [9, 1], envelope: envelope('9:0', 1) },
      { id: [9, 2], envelope: envelope('9:1', 2) },
      { id: [9, 3], envelope: envelope('9:1', 3) },
    ],
    [{ ledgerId: 9, entries: 0 }],
  );
  fake.onConnection = (connection) => {
    connection.onFrame = (frame) => {
      const context = (frame as { context?: string }).context;
      if (context !== undefined) connection.send({ result: 'ok', messageId: encodeMessageId(id(9n, 4n)), context });
    };
  };
  const store = new PulsarLedgerStore({ url: fake.url, tenant: 'public', namespace: 'default', subscription: 'sub', retry: { baseMs: 20, factor: 1, capMs: 20 } });
  closers.push(() => store.close());
  assert.deepEqual(await store.load('t', 0, AbortSignal.timeout(5_000)), ledger(2));
  const producer = fake.connections.find((c) => c.kind === 'producer') as FakeConnection;
  const written = producer.frames.find((f) => (f as { context?: string }).context !== undefined) as { payload: string };
  const takeover = JSON.parse(Buffer.from(written.payload, 'base64').toString()) as { takeover: boolean; after: string; ledger: LedgerJson };
  assert.deepEqual([takeover.takeover, takeover.after, takeover.ledger], [true, '9:3', ledger(2)]);
});

// Fixed, was finding 10: it throws inside the WebSocket listener: an uncaught exception
test('a frame the adapter cannot take (a consumer frame `null`, a receipt whose messageId is not a MessageIdData) does not end the process', async () => {
  const runChild = (mode: string): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(`${REPO_ROOT}/node_modules/.bin/node`, [`${import.meta.dirname}/malformed-frame.ts`, mode], { timeout: 20_000 }, (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? -1), stdout, stderr }),
      );
    });
  const [consumer, receipt] = await Promise.all([runChild('consumer'), runChild('receipt')]);
  const firstError = (stderr: string): string => /^\w*Error.*$/m.exec(stderr)?.[0] ?? '';
  assert.deepEqual([consumer.stdout.trim(), receipt.stdout.trim()], ['survived', 'survived'], `the consumer frame: ${firstError(consumer.stderr)}; the receipt: ${firstError(receipt.stderr)}`);
});

// Fixed, was finding 11: fetch drops Authorization on a cross-origin redirect: 401, the load is retried forever
test('with token authentication, admin calls the broker redirects to the topic’s owner broker keep their token (a takeover completes)', async () => {
  const owner = await startFakePulsar();
  closers.push(() => owner.close());
  let entry = 0n;
  const answer = ledgerAdmin([], [{ ledgerId: 7, entries: 0 }]);
  owner.admin = (request) => (request.headers.authorization === 'Bearer tok' ? answer(request) : { status: 401, body: { reason: 'HTTP 401 Unauthorized' } });
  // The broker in the configured URL does not own the topic: admin calls are redirected (307) to the owner.
  fake.admin = (request) => ({ status: 307, headers: { location: `${owner.url}/admin/v2/${request.path}` } });
  fake.onConnection = (connection) => {
    connection.onFrame = (frame) => {
      const context = (frame as { context?: string }).context;
      if (context !== undefined) connection.send({ result: 'ok', messageId: encodeMessageId(id(7n, entry++)), context });
    };
  };
  const waits: unknown[] = [];
  const store = new PulsarLedgerStore({
    url: fake.url,
    tenant: 'public',
    namespace: 'default',
    subscription: 'sub',
    token: new Secret('tok'),
    retry: { baseMs: 20, factor: 1, capMs: 20 },
    onWaiting: ({ error }) => waits.push(error),
  });
  closers.push(() => store.close());
  const loaded = await settle(store.load('t', 0, AbortSignal.timeout(3_000)), 5_000);
  assert.deepEqual(loaded.outcome, { resolved: undefined }, `${String(loaded.outcome)}; first wait: ${String(waits[0])}`);
});

test('holds: the token travels only in the Authorization header: never in a URL, an error, a log line or util.inspect', async () => {
  const token = 'tok-3f9a-secret-value';
  fake.accept = (kind) => (kind === 'consumer' ? 409 : true);
  fake.admin = (request) => (request.path.endsWith('/stats') ? { status: 500, body: { reason: 'boom' } } : { status: 404 });
  const errors: unknown[] = [];
  const made = source({ token: new Secret(token), onError: (error) => errors.push(error) });
  const store = new PulsarLedgerStore({ url: fake.url, tenant: 'public', namespace: 'default', subscription: 'sub', token: new Secret(token), retry: { baseMs: 20, factor: 1, capMs: 20 } });
  closers.push(() => store.close());
  run(made, collector().handler);
  await until(() => errors.length >= 2, 'two refused subscribes');
  const loading = await settle(store.load('t', 0, AbortSignal.timeout(500)), 2_000);
  const lines: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => lines.push(line) } as unknown as NodeJS.WritableStream);
  for (const error of [...errors, loading.outcome]) logger.warn({ err: error }, 'failed');
  const everything = [
    ...fake.upgrades,
    ...fake.requests.map((r) => r.path),
    ...lines,
    inspect(made, { depth: 5 }),
    inspect(store, { depth: 5 }),
    ...errors.map((e) => inspect(e, { depth: 10 })),
    inspect(loading.outcome, { depth: 10 }),
  ].join('\n');
  assert.ok(!everything.includes(token), 'the token appears somewhere it must not');
  assert.ok(fake.requests.length > 0 && fake.requests.every((r) => r.headers.authorization === `Bearer ${token}`));
  assert.ok(fake.connections.length === 0 || fake.connections.every((c) => c.headers.authorization === `Bearer ${token}`));
});

// Fixed, was finding 12: validatePulsarSourceOptions accepts credentials in the url (the config schema refuses them elsewhere) and echoes the url in errors
test('a url with user:password@ is refused, and no error repeats the password', async () => {
  const url = fake.url.replace('http://', 'http://inserter:pa55-secret@');
  const errors: unknown[] = [];
  let made: PulsarSource | undefined;
  try {
    made = source({ url, onError: (error) => errors.push(error) });
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.ok(!String(error.message).includes('pa55-secret'), error.message);
    return;
  }
  run(made, collector().handler);
  await until(() => errors.length >= 1, 'an error', 5_000).catch(() => undefined);
  const shown = errors.map((e) => inspect(e, { depth: 10 })).join('\n');
  assert.fail(`accepted a url with credentials${shown.includes('pa55-secret') ? ', and an error shows the password' : ''}: ${/pa55-secret.{0,40}/.exec(shown)?.[0] ?? ''}`);
});
