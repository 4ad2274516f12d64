// Apache Pulsar as a source, against a real Pulsar 4.0 standalone broker (scripts/pulsar.sh): the
// adapter alone (order, offsets, keys, properties, acknowledgements seen in the broker's stats,
// Exclusive ownership and takeover), and the ledger store's lease and its check that every write
// follows the owner's previous one. The pipeline end to end: pulsar-pipeline.test.ts.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { LedgerJson } from '../../src/ack/ledger.ts';
import { PulsarLedgerStore } from '../../src/source/pulsar-ledger-store.ts';
import { decodeMessageId, offsetOf } from '../../src/source/pulsar-message-id.ts';
import { PulsarSource, PulsarSubscriptionBusyError } from '../../src/source/pulsar-source.ts';
import type { SourceHandler, SourceRecord } from '../../src/source/types.ts';
import { createPartitionedTopic, produce, startPulsar, subscriptionStats, uniqueTopic, waitUntil, type PulsarBroker } from '../helpers/pulsar.ts';

const TENANT = 'public';
const NAMESPACE = 'default';
const FAST_RETRY = { baseMs: 50, factor: 2, capMs: 500 };
let broker: PulsarBroker;

before(async () => {
  broker = await startPulsar();
});

after(async () => {
  await broker?.stop();
});

function collector(): { handler: SourceHandler; records: SourceRecord[]; assigned: string[]; revoked: string[] } {
  const records: SourceRecord[] = [];
  const assigned: string[] = [];
  const revoked: string[] = [];
  const handler: SourceHandler = {
    onRecord: (record) => {
      records.push(record);
    },
    onAssigned: (refs) => assigned.push(...refs.map((r) => `${r.topic}/${r.partition}`)),
    onRevoked: (refs) => revoked.push(...refs.map((r) => `${r.topic}/${r.partition}`)),
    onReset: () => undefined,
  };
  return { handler, records, assigned, revoked };
}

const backlog = async (topic: string, partition: number, sub: string): Promise<number | undefined> =>
  (await subscriptionStats(broker.url, TENANT, NAMESPACE, `${topic}-partition-${partition}`, sub))?.msgBacklog;

test('PulsarSource: every record once, in order, with its offset, key and properties; acknowledged on commit; Exclusive ownership and takeover', async () => {
  const topic = uniqueTopic('src');
  const sub = `${topic}-sub`;
  const perPartition = 300;
  await createPartitionedTopic(broker.url, TENANT, NAMESPACE, topic, 2);
  const produced: Array<Array<{ offset: bigint; payload: string; key: string }>> = [];
  for (const partition of [0, 1]) {
    const messages = Array.from({ length: perPartition }, (_, i) => ({ payload: `p${partition}-m${i}`, key: `k${partition}-${i}`, properties: { index: String(i), partition: String(partition) } }));
    const ids = await produce(broker.url, TENANT, NAMESPACE, `${topic}-partition-${partition}`, messages);
    produced.push(ids.map((id, i) => ({ offset: offsetOf(decodeMessageId(id)), payload: messages[i]?.payload ?? '', key: messages[i]?.key ?? '' })));
  }
  const options = { url: broker.url, tenant: TENANT, namespace: NAMESPACE, subscription: sub, topics: [topic], retry: FAST_RETRY, receiverQueueSize: 25 };

  // A: owns both partitions and reads everything (25 permits at a time).
  const a = new PulsarSource(options);
  const seenA = collector();
  const runA = new AbortController();
  const runningA = a.run(seenA.handler, runA.signal);
  await waitUntil('A to read every record', () => seenA.records.length >= 2 * perPartition);
  assert.deepEqual(seenA.assigned.sort(), [`${topic}/0`, `${topic}/1`]);
  for (const partition of [0, 1]) {
    const got = seenA.records.filter((r) => r.partition === partition);
    assert.deepEqual(
      got.map((r) => ({ offset: r.offset, payload: r.value?.toString(), key: r.key?.toString() })),
      produced[partition],
      `partition ${partition}: every message once, in order, with the offset of its id`,
    );
    for (const [i, r] of got.entries()) assert.deepEqual(Object.fromEntries(r.headers.map(([k, v]) => [k.toString(), v.toString()])), { index: String(i), partition: String(partition) });
  }
  assert.equal(await backlog(topic, 0, sub), perPartition, 'nothing acknowledged before a commit');

  // Commit the first 200 of each partition (the position is the 201st record's offset).
  const keep = 200;
  await a.commit([0, 1].map((partition) => ({ topic, partition, offset: produced[partition]?.[keep]?.offset ?? -1n, epoch: 0 })));
  await waitUntil('the backlog to drop to the uncommitted records', async () => (await backlog(topic, 0, sub)) === perPartition - keep && (await backlog(topic, 1, sub)) === perPartition - keep);

  // B: same subscription. Refused while A owns the partitions (the broker says busy), given nothing.
  const b = new PulsarSource({ ...options, onError: (error) => busy.push(error) });
  const busy: unknown[] = [];
  const seenB = collector();
  const runB = new AbortController();
  const runningB = b.run(seenB.handler, runB.signal);
  await waitUntil('B to be refused on both partitions', () => busy.filter((e) => e instanceof PulsarSubscriptionBusyError).length >= 4);
  assert.equal(seenB.records.length, 0);
  assert.deepEqual(seenB.assigned, []);

  // A closes: B takes over and receives exactly the unacknowledged messages.
  runA.abort();
  await runningA;
  await a.close();
  await waitUntil('B to receive the unacknowledged records', () => seenB.records.length >= 2 * (perPartition - keep));
  for (const partition of [0, 1]) {
    assert.deepEqual(
      seenB.records.filter((r) => r.partition === partition).map((r) => r.offset),
      produced[partition]?.slice(keep).map((m) => m.offset),
    );
  }
  assert.deepEqual(seenB.assigned.sort(), [`${topic}/0`, `${topic}/1`]);
  await b.commit([0, 1].map((partition) => ({ topic, partition, offset: (produced[partition]?.at(-1)?.offset ?? -1n) + 1n, epoch: 0 })));
  await waitUntil('the backlog to reach 0', async () => (await backlog(topic, 0, sub)) === 0 && (await backlog(topic, 1, sub)) === 0);
  runB.abort();
  await runningB;
  await b.close();
  assert.equal(seenB.records.length, 2 * (perPartition - keep), 'nothing delivered twice');
});

test('PulsarLedgerStore: a takeover waits for the lease; the old owner cannot write; a write after another owner is refused and skipped', async () => {
  const ledger = (n: number): LedgerJson => ({ v: 2, resolvedBelow: String(n), intents: [] });
  const options = { url: broker.url, tenant: TENANT, namespace: NAMESPACE, subscription: uniqueTopic('ledger'), retry: FAST_RETRY };
  const waiting: unknown[] = [];
  const one = new PulsarLedgerStore(options);
  const two = new PulsarLedgerStore({ ...options, onWaiting: ({ error }) => waiting.push(error) });
  const three = new PulsarLedgerStore(options);
  const signal = AbortSignal.timeout(60_000);
  try {
    assert.equal(await one.load('t', 0, signal), undefined);
    await one.save('t', 0, ledger(1), signal);
    await one.save('t', 0, ledger(2), signal);
    // Two waits while one holds the lease (its producer is connected).
    const loading = two.load('t', 0, signal);
    await waitUntil('the takeover to wait for the lease', () => waiting.length >= 2);
    await one.save('t', 0, ledger(3), signal); // still the owner
    await one.release('t', 0);
    assert.deepEqual(await loading, ledger(3));
    await assert.rejects(one.save('t', 0, ledger(4), signal), { code: 'INSERTER_LEDGER_FENCED' });
    await two.save('t', 0, ledger(5), signal);
    // The topic moves (unloaded: the broker's client in the WebSocket service reconnects the
    // producer) and its next record opens a new ledger: still checked to follow the previous one.
    const ledgerTopic = two.ledgerTopic('t', 0);
    const unload = await fetch(`${broker.url}/admin/v2/persistent/${TENANT}/${NAMESPACE}/${ledgerTopic}/unload`, { method: 'PUT' });
    assert.equal(unload.status, 204);
    await two.save('t', 0, ledger(50), signal);
    const stats = (await (await fetch(`${broker.url}/admin/v2/persistent/${TENANT}/${NAMESPACE}/${ledgerTopic}/internalStats`)).json()) as { ledgers: unknown[]; lastConfirmedEntry: string };
    assert.ok(stats.ledgers.length >= 2 && stats.lastConfirmedEntry.endsWith(':0'), `the write opened a new ledger: ${JSON.stringify(stats)}`);

    // A write of an owner that lost the partition lands after the new owner's records (the broker's
    // client inside the WebSocket service published it late): it names the record it followed.
    const stale = { v: 1, key: `${options.subscription}/t/0`, owner: 'zombie', takeover: false, after: '1:0', ledger: ledger(99) };
    await produce(broker.url, TENANT, NAMESPACE, ledgerTopic, [{ payload: JSON.stringify(stale), key: stale.key }]);
    // The owner's next write does not follow its previous record: refused, it inserts nothing.
    await assert.rejects(two.save('t', 0, ledger(6), signal), (error: { code?: string; fenced?: boolean }) => error.code === 'INSERTER_LEDGER_FENCED' && error.fenced === true);
    // A later owner skips both (the zombie's and the refused one) and reads the last valid ledger.
    assert.deepEqual(await three.load('t', 0, signal), ledger(50));
    await three.save('t', 0, ledger(7), signal);
    await three.release('t', 0);
    assert.deepEqual(await one.load('t', 0, signal), ledger(7));
  } finally {
    await Promise.all([one.close(), two.close(), three.close()]);
  }
});

test('PulsarSource: a partition lost while its socket stays open (the topic moved, another process subscribed) is revoked', async () => {
  const topic = uniqueTopic('moved');
  const sub = `${topic}-sub`;
  await createPartitionedTopic(broker.url, TENANT, NAMESPACE, topic, 1);
  await produce(broker.url, TENANT, NAMESPACE, `${topic}-partition-0`, [{ payload: 'one' }]);
  const options = { url: broker.url, tenant: TENANT, namespace: NAMESPACE, subscription: sub, topics: [topic] };
  const first = new PulsarSource({ ...options, retry: FAST_RETRY, ownershipCheckMs: 200 });
  const second = new PulsarSource({ ...options, retry: { baseMs: 5, factor: 1, capMs: 5 } });
  const seenFirst = collector();
  const seenSecond = collector();
  const stop = new AbortController();
  const running = [first.run(seenFirst.handler, stop.signal)];
  try {
    await waitUntil('the first to own the partition', () => seenFirst.records.length === 1);
    running.push(second.run(seenSecond.handler, stop.signal));
    // Unloading the topic makes the client inside the WebSocket service reconnect the first's
    // consumer; the second, retrying every 5 ms, subscribes in that gap some of the time.
    for (let i = 0; i < 20 && seenSecond.assigned.length === 0; i++) {
      const unload = await fetch(`${broker.url}/admin/v2/persistent/${TENANT}/${NAMESPACE}/${topic}-partition-0/unload`, { method: 'PUT' });
      assert.equal(unload.status, 204);
      await waitUntil('the topic to be served again', async () => (await subscriptionStats(broker.url, TENANT, NAMESPACE, `${topic}-partition-0`, sub))?.consumers.length === 1, 10_000);
    }
    assert.deepEqual(seenSecond.assigned, [`${topic}/0`], 'the second process took the partition over during a move');
    // The first's socket is still open, but its subscription is gone: the ownership check revokes it.
    await waitUntil('the first to be revoked', () => seenFirst.revoked.length === 1, 10_000);
    assert.equal(seenSecond.records.length, 1, 'the unacknowledged message went to the new owner');
  } finally {
    stop.abort();
    await Promise.all(running);
    await Promise.all([first.close(), second.close()]);
  }
});
