// Review 2026-12-07f of Apache Pulsar as a source (src/source/pulsar-*.ts, commit f0d5c34), against
// one real Pulsar 4.0.7 standalone broker for this file (test/helpers/pulsar.ts): the real
// PulsarSource, PulsarLedgerStore and, where the consequence is the point, the real Pipeline with an
// in-memory warehouse that deduplicates by token (test/helpers/pipeline-world.ts). The claims: every
// record delivered in order, once per ownership, acknowledged only below a committed position;
// backpressure; a stalled owner records nothing after a takeover; a takeover reads every record;
// the lease is given back when a partition is given up. Tests marked "Fixed, was finding N" demonstrated a finding and pass since it was fixed.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import type { LedgerJson, LedgerStore } from '../../../src/ack/ledger.ts';
import { Pipeline } from '../../../src/pipeline/pipeline.ts';
import { PulsarLedgerStore } from '../../../src/source/pulsar-ledger-store.ts';
import { decodeMessageId, offsetOf } from '../../../src/source/pulsar-message-id.ts';
import { PulsarSource, PulsarSubscriptionBusyError } from '../../../src/source/pulsar-source.ts';
import type { Source, SourceHandler, SourceRecord } from '../../../src/source/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { Metrics } from '../../../src/telemetry/metrics.ts';
import { event, FedSource, HeldDeadLetters, TokenWarehouse, worldConfig } from '../../helpers/pipeline-world.ts';
import { createPartitionedTopic, produce, REPO_ROOT, startPulsar, subscriptionStats, uniqueTopic, waitUntil, type PulsarBroker } from '../../helpers/pulsar.ts';
import { settle } from './fake-pulsar.ts';
import { startTcpProxy } from './tcp-proxy.ts';

const TENANT = 'public';
const NAMESPACE = 'default';
const FAST_RETRY = { baseMs: 50, factor: 2, capMs: 200 };
let broker: PulsarBroker;

before(async () => {
  broker = await startPulsar();
});

after(async () => {
  await broker?.stop();
});

const ledger = (n: number): LedgerJson => ({ v: 2, resolvedBelow: String(n), intents: [] });
const json = (i: number): string => JSON.stringify({ team_id: 1, uuid: `u${i}` });

function common(subscription: string): { url: string; tenant: string; namespace: string; subscription: string; retry: typeof FAST_RETRY } {
  return { url: broker.url, tenant: TENANT, namespace: NAMESPACE, subscription, retry: FAST_RETRY };
}

async function backlog(topic: string, subscription: string): Promise<number | undefined> {
  return (await subscriptionStats(broker.url, TENANT, NAMESPACE, `${topic}-partition-0`, subscription))?.msgBacklog;
}

async function publishers(topic: string): Promise<number> {
  const response = await fetch(`${broker.url}/admin/v2/persistent/${TENANT}/${NAMESPACE}/${topic}/stats`);
  return ((await response.json()) as { publishers?: unknown[] }).publishers?.length ?? 0;
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
        log.push(`record ${record.offset}`);
      },
      onAssigned: (refs) => log.push(...refs.map((r) => `assigned ${r.partition}`)),
      onRevoked: (refs) => log.push(...refs.map((r) => `revoked ${r.partition}`)),
      onReset: () => log.push('reset'),
    },
  };
}

/** The real Pipeline on the given source and ledger store, inserting into `warehouse` (team 1 → d1). */
function pipelineOn(
  topic: string,
  source: Source,
  ledgers: LedgerStore,
  warehouse: TokenWarehouse,
  sinkFactory = warehouse.sinksWith((inner, batch, signal) => inner.insert(batch, signal)),
): Pipeline {
  const config = worldConfig({
    routes: [{ name: 'events', topic, table: 'events', createTable: { enabled: false } }],
    teams: { map: { 1: 'd1' } },
    batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 },
    commitIntervalMs: 100,
  });
  return new Pipeline({ config, source, sinkFactory, deadLetters: new HeldDeadLetters(), ledgers, logger: createLogger(process.env.TEST_LOG ?? 'silent'), metrics: new Metrics() });
}

// Fixed, was finding 1: no rewind — the abandoned records are never read again, and the next commit acknowledges them
test('a partition whose ledger write is fenced while the source still owns it: every record read before is inserted once (none acknowledged unread)', async () => {
  const topic = uniqueTopic('fenced');
  const sub = `${topic}-sub`;
  await createPartitionedTopic(broker.url, TENANT, NAMESPACE, topic, 1);
  await produce(
    broker.url,
    TENANT,
    NAMESPACE,
    `${topic}-partition-0`,
    Array.from({ length: 100 }, (_, i) => ({ payload: json(i) })),
  );
  const warehouse = new TokenWarehouse();
  let release: (() => void) | undefined;
  let first = true;
  // The first insert waits on the wire until the test lets it answer; the other batches queue behind it.
  const sinkFactory = warehouse.sinksWith(async (inner, batch, signal) => {
    if (first) {
      first = false;
      await new Promise<void>((resolve) => (release = resolve));
    }
    return inner.insert(batch, signal);
  });
  const source = new PulsarSource({ ...common(sub), topics: [topic] });
  const ledgers = new PulsarLedgerStore(common(sub));
  const pipeline = pipelineOn(topic, source, ledgers, warehouse, sinkFactory);
  const running = pipeline.start();
  try {
    await waitUntil('the first insert on the wire', () => release !== undefined);
    // A late write of an owner that lost the partition lands in the ledger topic (the hole the
    // design's checked writes are for, pulsar.md "Checked writes"; pulsar-source.test.ts does the same).
    const key = `${sub}/${topic}/0`;
    const stale = { v: 1, key, owner: 'zombie', takeover: false, after: '1:0', ledger: ledger(0) };
    await produce(broker.url, TENANT, NAMESPACE, ledgers.ledgerTopic(topic, 0), [{ payload: JSON.stringify(stale), key }]);
    release?.(); // its `done` write lands after the zombie's record: fenced; the partition is taken over again
    await waitUntil('the partition taken over again', () => warehouse.rows.length >= 10);
    await produce(broker.url, TENANT, NAMESPACE, `${topic}-partition-0`, [{ payload: json(100) }]);
    const distinct = (): number => new Set(warehouse.uuids()).size;
    await waitUntil('every record inserted, or the backlog acknowledged', async () => distinct() === 101 || (await backlog(topic, sub)) === 0, 20_000);
    await waitUntil('the last record inserted', () => warehouse.uuids().includes('u100'), 10_000).catch(() => undefined);
    const left = await backlog(topic, sub);
    assert.equal(distinct(), 101, `${101 - distinct()} records never inserted, backlog ${left}: acknowledged without being inserted`);
  } finally {
    release?.();
    await pipeline.destroy();
    await running.catch(() => undefined);
    await Promise.all([source.close(), ledgers.close()]);
  }
});

// Fixed, was finding 2: release() does not stop a load in progress; the lease is taken after the revocation and kept
test('a partition revoked while its takeover waits for the lease: the lease is not taken afterwards (the next owner can load)', async () => {
  const sub = uniqueTopic('revoked');
  const holder = new PulsarLedgerStore(common(sub));
  const waiting: unknown[] = [];
  const ledgers = new PulsarLedgerStore({ ...common(sub), onWaiting: (w) => waiting.push(w) });
  const next = new PulsarLedgerStore(common(sub));
  const source = new FedSource();
  const warehouse = new TokenWarehouse();
  const pipeline = pipelineOn('t', source, ledgers, warehouse);
  const running = pipeline.start();
  try {
    await holder.load('t', 0, AbortSignal.timeout(10_000)); // the previous owner (still holding its lease)
    source.assign(pipeline, [0]);
    void source.append([event(0, 1)]); // the first record: its ledger must be loaded — the takeover waits for the lease
    await waitUntil('the takeover to wait for the lease', () => waiting.length >= 2);
    source.revoke(pipeline, [0]); // the partition goes elsewhere meanwhile (the pipeline releases its ledger)
    await holder.release('t', 0); // the previous owner lets go
    const topic = ledgers.ledgerTopic('t', 0);
    // The revoked process's load, if it goes on, writes its takeover record right after this.
    const entries = async (): Promise<number> =>
      ((await (await fetch(`${broker.url}/admin/v2/persistent/${TENANT}/${NAMESPACE}/${topic}/internalStats`)).json()) as { numberOfEntries: number }).numberOfEntries;
    await waitUntil('the revoked process to take the lease (or not)', async () => (await entries()) >= 2 && (await publishers(topic)) === 1, 3_000).catch(() => undefined);
    const outcome = await settle(next.load('t', 0, AbortSignal.timeout(4_000)), 6_000);
    assert.ok(typeof outcome.outcome === 'object' && outcome.outcome !== null && 'resolved' in outcome.outcome, `the next owner's load: ${String(outcome.outcome)}`);
  } finally {
    await pipeline.destroy();
    await running.catch(() => undefined);
    await Promise.all([holder.close(), ledgers.close(), next.close()]);
  }
});

// Fixed, was finding 3: a load that completes after close() registers its producer; the closed store keeps the lease
test('close() while a load is between taking the lease and returning: nothing is held afterwards', async () => {
  const sub = uniqueTopic('closing');
  const store = new PulsarLedgerStore(common(sub));
  const realFetch = globalThis.fetch;
  let hold: (() => void) | undefined;
  // The load's first examinemessage (right after it took the lease) waits until the test lets it go.
  globalThis.fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    if (hold === undefined && String(input instanceof Request ? input.url : input).includes('/examinemessage')) await new Promise<void>((resolve) => (hold = resolve));
    return realFetch(input, init);
  };
  try {
    const loading = store.load('t', 0, AbortSignal.timeout(20_000));
    await waitUntil('the load to hold the lease and read', () => hold !== undefined);
    await store.close();
    hold?.();
    const loaded = await settle(loading, 10_000);
    globalThis.fetch = realFetch;
    const topic = store.ledgerTopic('t', 0);
    await waitUntil('the lease given back', async () => (await publishers(topic)) === 0, 3_000).catch(() => undefined);
    assert.equal(
      await publishers(topic),
      0,
      `a closed store still holds the lease (its load ${loaded.outcome === 'pending' ? 'still pending' : 'resolved after close()'}); every takeover of the partition waits for it`,
    );
  } finally {
    globalThis.fetch = realFetch;
    hold?.();
    await store.release('t', 0); // the leaked lease, if any
  }
});

// Fixed, was finding 4: the source awaits the record whose ledger load waits for the lease; close() arms its deadline only after the source returns
test('Pipeline.close() while a takeover waits for the previous owner’s lease ends within its deadline', async () => {
  const topic = uniqueTopic('closewait');
  const sub = `${topic}-sub`;
  await createPartitionedTopic(broker.url, TENANT, NAMESPACE, topic, 1);
  await produce(broker.url, TENANT, NAMESPACE, `${topic}-partition-0`, [{ payload: json(0) }]);
  const holder = new PulsarLedgerStore(common(sub)); // a stalled previous owner's lease
  await holder.load(topic, 0, AbortSignal.timeout(10_000));
  const waiting: unknown[] = [];
  const source = new PulsarSource({ ...common(sub), topics: [topic] });
  const ledgers = new PulsarLedgerStore({ ...common(sub), onWaiting: (w) => waiting.push(w) });
  const pipeline = pipelineOn(topic, source, ledgers, new TokenWarehouse());
  const running = pipeline.start();
  try {
    await waitUntil('the takeover to wait for the lease', () => waiting.length >= 2);
    const closing = await settle(pipeline.close(200), 3_000);
    assert.notEqual(closing.outcome, 'pending', 'close(200) still waiting after 3 s (it waits as long as the previous owner holds the lease: 5 minutes for a stalled one)');
  } finally {
    await holder.close();
    await pipeline.destroy();
    await running.catch(() => undefined);
    await Promise.all([source.close(), ledgers.close()]);
  }
});

// Fixed, was finding 5: a silent reconnect of the consumer inside the WebSocket service redelivers every unacknowledged message: offsets go back
test('within one ownership every record is delivered once with an increasing offset, also when the broker moves the topic', async () => {
  const topic = uniqueTopic('moved');
  const sub = `${topic}-sub`;
  await createPartitionedTopic(broker.url, TENANT, NAMESPACE, topic, 1);
  await produce(
    broker.url,
    TENANT,
    NAMESPACE,
    `${topic}-partition-0`,
    Array.from({ length: 50 }, (_, i) => ({ payload: `m${i}` })),
  );
  const source = new PulsarSource({ ...common(sub), topics: [topic], receiverQueueSize: 20 });
  const seen = collector();
  const stop = new AbortController();
  const running = source.run(seen.handler, stop.signal);
  try {
    await waitUntil('the 50 records', () => seen.records.length >= 50);
    const unload = await fetch(`${broker.url}/admin/v2/persistent/${TENANT}/${NAMESPACE}/${topic}-partition-0/unload`, { method: 'PUT' });
    assert.equal(unload.status, 204);
    // A record produced after the move arrives after anything the move redelivers.
    await produce(broker.url, TENANT, NAMESPACE, `${topic}-partition-0`, [{ payload: 'after' }]);
    await waitUntil('the record produced after the move', () => seen.records.some((r) => r.value?.toString() === 'after'), 15_000);
    assert.deepEqual(
      seen.log.filter((l) => !l.startsWith('record')),
      ['assigned 0'],
      'one ownership throughout',
    );
    const offsets = seen.records.map((r) => r.offset);
    const backwards = offsets.filter((o, i) => i > 0 && o <= (offsets[i - 1] as bigint)).length;
    assert.equal(backwards, 0, `${offsets.length} records for 51 messages; ${backwards} deliveries with an offset not above the previous one`);
  } finally {
    stop.abort();
    await running;
    await source.close();
  }
});

// Fixed, was finding 6: parseEntryId throws on it; every load of the partition fails and is retried forever
test('a ledger record with the partition’s key and no valid `after` is skipped by loads like any invalid record', async () => {
  const sub = uniqueTopic('malformed');
  const one = new PulsarLedgerStore(common(sub));
  const two = new PulsarLedgerStore(common(sub));
  try {
    await one.load('t', 0, AbortSignal.timeout(10_000));
    await one.save('t', 0, ledger(7), AbortSignal.timeout(10_000));
    await one.release('t', 0);
    const key = `${sub}/t/0`;
    // A record of the partition's key another writer (an older version, a tool) left without `after`.
    await produce(broker.url, TENANT, NAMESPACE, one.ledgerTopic('t', 0), [{ payload: JSON.stringify({ v: 1, key, owner: 'other', takeover: false, ledger: ledger(99) }), key }]);
    const loaded = await settle(two.load('t', 0, AbortSignal.timeout(4_000)), 6_000);
    assert.deepEqual(loaded.outcome, { resolved: ledger(7) }, String(loaded.outcome));
  } finally {
    await Promise.all([one.close(), two.close()]);
  }
});

test('holds: backpressure — frames received never exceed the records the core accepted by more than receiverQueueSize', async () => {
  const topic = uniqueTopic('permits');
  const sub = `${topic}-sub`;
  const queue = 10;
  await createPartitionedTopic(broker.url, TENANT, NAMESPACE, topic, 1);
  await produce(
    broker.url,
    TENANT,
    NAMESPACE,
    `${topic}-partition-0`,
    Array.from({ length: 120 }, (_, i) => ({ payload: `m${i}` })),
  );
  const Real = globalThis.WebSocket;
  let received = 0;
  let accepted = 0;
  let most = 0;
  // Counts the message frames reaching the adapter's sockets (the keepalive's answers have no messageId).
  globalThis.WebSocket = class extends Real {
    constructor(url: string | URL, options?: string | string[]) {
      super(url, options);
      this.addEventListener('message', (e: MessageEvent) => {
        if (typeof e.data === 'string' && e.data.includes('"messageId"')) most = Math.max(most, ++received - accepted);
      });
    }
  } as typeof WebSocket;
  const source = new PulsarSource({ ...common(sub), topics: [topic], receiverQueueSize: queue });
  const offsets: bigint[] = [];
  const stop = new AbortController();
  const running = source.run(
    {
      onRecord: async (record) => {
        offsets.push(record.offset);
        await new Promise((resolve) => setTimeout(resolve, offsets.length < 40 ? 20 : 1)); // a slow core
        accepted++;
      },
      onAssigned: () => undefined,
      onRevoked: () => undefined,
      onReset: () => undefined,
    },
    stop.signal,
  );
  try {
    await waitUntil('every record', () => offsets.length === 120, 20_000);
    assert.ok(most >= 1 && most <= queue, `at most ${queue} frames ahead of the core, saw ${most}`);
    assert.deepEqual(
      [...offsets].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
      offsets,
      'in order',
    );
    assert.equal(new Set(offsets).size, 120, 'once each');
  } finally {
    globalThis.WebSocket = Real;
    stop.abort();
    await running;
    await source.close();
  }
});

test('holds: commit acknowledges exactly the delivered messages below the position (a position far ahead acknowledges nothing undelivered; a batched entry acknowledged in part is redelivered whole)', async () => {
  const topic = uniqueTopic('acks');
  const sub = `${topic}-sub`;
  await createPartitionedTopic(broker.url, TENANT, NAMESPACE, topic, 1);
  const ids = await produce(
    broker.url,
    TENANT,
    NAMESPACE,
    `${topic}-partition-0`,
    Array.from({ length: 30 }, (_, i) => ({ payload: `m${i}` })),
  );
  const offsets = ids.map((id) => offsetOf(decodeMessageId(id)));
  // Then 20 batched messages (entries of 10): the source hands out one offset per message.
  const batched = new WebSocket(
    `${broker.url.replace(/^http/, 'ws')}/ws/v2/producer/persistent/${TENANT}/${NAMESPACE}/${topic}-partition-0?batchingEnabled=true&batchingMaxMessages=10&batchingMaxPublishDelay=200`,
  );
  await new Promise((resolve) => batched.addEventListener('open', resolve, { once: true }));
  const receipts: string[] = [];
  batched.addEventListener('message', (e) => receipts.push(String(e.data)));
  for (let i = 0; i < 20; i++) batched.send(JSON.stringify({ payload: Buffer.from(`b${i}`).toString('base64'), context: String(i) }));
  await waitUntil('the batched receipts', () => receipts.length === 20);
  batched.close();

  const a = new PulsarSource({ ...common(sub), topics: [topic], receiverQueueSize: 10 });
  const got: SourceRecord[] = [];
  let gate: (() => void) | undefined;
  const stopA = new AbortController();
  const runningA = a.run(
    {
      onRecord: (record) => {
        got.push(record);
        // The 16th record is handed over and not accepted: nothing more is taken meanwhile.
        if (got.length === 16) return new Promise<void>((resolve) => (gate = resolve));
      },
      onAssigned: () => undefined,
      onRevoked: () => undefined,
      onReset: () => undefined,
    },
    stopA.signal,
  );
  const b = new PulsarSource({ ...common(sub), topics: [topic] });
  const seenB = collector();
  const stopB = new AbortController();
  let runningB: Promise<void> | undefined;
  try {
    await waitUntil('16 records handed over', () => gate !== undefined);
    // A position far past what was handed over (the 26th message): only the 16 delivered are acknowledged.
    await a.commit([{ topic, partition: 0, offset: offsets[25] as bigint, epoch: 0 }]);
    await waitUntil('the 16 acknowledged', async () => (await backlog(topic, sub)) === 30 - 16 + 2);
    gate?.();
    await waitUntil('every record', () => got.length === 50);
    // A position inside the first batched entry (its 6th message): the entry stays unacknowledged.
    const inside = (got[35] as SourceRecord).offset;
    await a.commit([{ topic, partition: 0, offset: inside, epoch: 0 }]);
    await waitUntil('everything below it acknowledged', async () => (await backlog(topic, sub)) === 2);
    stopA.abort();
    await runningA;
    await a.close();
    runningB = b.run(seenB.handler, stopB.signal);
    await waitUntil('the new owner to receive the rest', () => seenB.records.length >= 20);
    const atOrAbove = got.filter((r) => r.offset >= inside).map((r) => r.value?.toString());
    const bGot = seenB.records.map((r) => r.value?.toString());
    for (const value of atOrAbove) assert.ok(bGot.includes(value), `${value} (at or above the position) redelivered`);
    assert.deepEqual(
      bGot,
      got.slice(30).map((r) => r.value?.toString()),
      'the whole entry that was acknowledged in part, and the next, in order',
    );
  } finally {
    gate?.();
    stopA.abort();
    stopB.abort();
    await runningA;
    await runningB;
    await Promise.all([a.close(), b.close()]);
  }
});

test('holds: a stalled owner (SIGSTOP) keeps its partition; once the broker ends its sessions another process takes over and inserts everything once, and the woken owner records and inserts nothing', async () => {
  const topic = uniqueTopic('stalled');
  const sub = `${topic}-sub`;
  const total = 100;
  await createPartitionedTopic(broker.url, TENANT, NAMESPACE, topic, 1);
  await produce(
    broker.url,
    TENANT,
    NAMESPACE,
    `${topic}-partition-0`,
    Array.from({ length: total }, (_, i) => ({ payload: json(i) })),
  );
  const proxy = await startTcpProxy(broker.url);
  const lines: Array<{ read?: number; insert?: string; uuids?: string[]; log?: string }> = [];
  // A: the real pipeline in a child process, holding every row in one open batch (flushed 500 ms after it was opened).
  const child: ChildProcess = spawn(`${REPO_ROOT}/node_modules/.bin/node`, [`${import.meta.dirname}/stalled-owner.ts`, proxy.url, topic, sub, '500'], { stdio: ['ignore', 'pipe', 'inherit'] });
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => lines.push(JSON.parse(line) as (typeof lines)[number]));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const warehouse = new TokenWarehouse();
  const busy: unknown[] = [];
  const source = new PulsarSource({ ...common(sub), topics: [topic], onError: (error) => busy.push(error) });
  const ledgers = new PulsarLedgerStore(common(sub));
  const pipeline = pipelineOn(topic, source, ledgers, warehouse);
  let running: Promise<void> | undefined;
  try {
    await waitUntil('A to read every record', () => lines.some((l) => l.read === total), 30_000);
    child.kill('SIGSTOP');
    running = pipeline.start();
    await waitUntil('B to be refused while A is stalled', () => busy.filter((e) => e instanceof PulsarSubscriptionBusyError).length >= 3);
    assert.equal(warehouse.rows.length, 0, 'B is given nothing while A holds the partition');
    // The broker ends the stalled process's sessions (its idle timeout, emulated: its connections reset).
    proxy.cut();
    await waitUntil('B to insert every record', () => new Set(warehouse.uuids()).size === total, 20_000);
    await waitUntil('B to commit everything', async () => (await backlog(topic, sub)) === 0, 20_000);
    child.kill('SIGCONT');
    // A wakes with its batch due: its intent cannot be recorded, so it inserts nothing.
    // (It may also learn of its reset connections first, and give the partition up without a write.)
    await waitUntil('A to fail its ledger write', () => lines.some((l) => l.log !== undefined), 5_000).catch(() => undefined);
    assert.deepEqual(
      lines.filter((l) => l.insert !== undefined),
      [],
      'the woken owner inserted nothing',
    );
    assert.equal(warehouse.rows.length, total, 'every row once');
    assert.equal(await backlog(topic, sub), 0);
  } finally {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
    await pipeline.destroy();
    await running?.catch(() => undefined);
    await Promise.all([source.close(), ledgers.close()]);
    await proxy.stop();
  }
});
