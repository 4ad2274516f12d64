// The Kafka ledger store against the real broker: a load after a takeover sees the newest ledger the
// previous owner committed, whatever other partitions' owners are doing. Found by the chaos test: a
// process killed during a ledger write of one partition left a transaction open, and the owner of
// another partition then loaded a ledger seconds old (read_committed stops at the first open
// transaction), re-forming no batch for rows already inserted: ~1,100 rows twice (seed 29949592).
// A position committed with the ledger is fenced like the ledger (chaos seed 956976370: a stalled
// owner's commit moved a partition back from 5,000 to 3,437).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Admin, Consumer, Producer, type MessagesStream } from '@platformatic/kafka';
import type { LedgerJson } from '../../src/ack/ledger.ts';
import { KafkaLedgerStore } from '../../src/source/kafka-ledger-store.ts';
import { committedOffsets } from '../helpers/bus.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

let bootstrap: string;
const stores: KafkaLedgerStore[] = [];
const producers: Array<Producer<Buffer, Buffer, Buffer, Buffer>> = [];
const consumers: Consumer[] = [];
const streams: Array<MessagesStream<Buffer, Buffer, Buffer, Buffer>> = [];

before(async () => {
  bootstrap = await sharedKafka();
});

after(async () => {
  await Promise.allSettled([...stores.map((s) => s.close()), ...producers.map((p) => p.close(true)), ...streams.map((s) => s.close())]);
  await Promise.allSettled(consumers.map((c) => c.close(true)));
});

const retryPolicy = { baseMs: 50, factor: 2, capMs: 500, maxElapsedMs: 30_000 };

function store(groupId: string, ledgerTopic: string, groupCoordinator?: () => number | null): KafkaLedgerStore {
  const s = new KafkaLedgerStore({ brokers: [bootstrap], clientId: 'ledger-store-test', groupId, topic: ledgerTopic, retry: retryPolicy, ...(groupCoordinator ? { groupCoordinator } : {}) });
  stores.push(s);
  return s;
}

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A source topic of its own, its group, the group's ledger topic and a deadline. */
function fresh(): { source: string; groupId: string; ledgerTopic: string; signal: AbortSignal } {
  const source = uniqueTopic('ledger-src');
  const groupId = `${source}-group`;
  return { source, groupId, ledgerTopic: `${groupId}.inserter-ledger`, signal: AbortSignal.timeout(60_000) };
}

function ledger(to: number): LedgerJson {
  return { v: 2, intents: [{ route: 'r', destination: 'd', token: `t-${to}`, records: '', rows: to + 1 }] };
}

/** A ledger write begun and never finished: the process died in the middle of it. */
async function dieMidWrite(groupId: string, ledgerTopic: string, topic: string, partition: number, value: LedgerJson): Promise<Producer<Buffer, Buffer, Buffer, Buffer>> {
  const zombie = new Producer({
    clientId: 'zombie',
    bootstrapBrokers: [bootstrap],
    idempotent: true,
    acks: -1,
    transactionalId: `${groupId}/ledger/${topic}/${partition}`,
    producerId: -1n,
    producerEpoch: -1,
  });
  producers.push(zombie);
  const tx = await zombie.beginTransaction();
  await tx.send({ messages: [{ topic: ledgerTopic, partition, key: Buffer.from(`${groupId}/${topic}/${partition}`), value: Buffer.from(JSON.stringify(value)) }] });
  return zombie;
}

test('a takeover loads the newest ledger even while another owner of the ledger partition has a transaction left open', async () => {
  const { source, groupId, ledgerTopic, signal } = fresh();
  const other = uniqueTopic('ledger-other');

  // Owner 1 of partition 1 writes a first version.
  const first = store(groupId, ledgerTopic);
  assert.equal(await first.load(source, 1, signal), undefined);
  await first.save(source, 1, ledger(10), signal);

  // The owner of partition 1 of another source topic (same ledger partition) dies mid-write.
  const dying = store(groupId, ledgerTopic);
  await dying.load(other, 1, signal);
  await dieMidWrite(groupId, ledgerTopic, other, 1, ledger(99));

  // Owner 1 goes on recording intents for partition 1 (committed), then loses partition 1.
  await first.save(source, 1, ledger(20), signal);
  await first.save(source, 1, ledger(30), signal);

  // The next owner must see the last committed version: intents 0-30, not 0-10.
  const next = store(groupId, ledgerTopic);
  const loaded = await next.load(source, 1, signal);
  assert.equal(loaded?.intents[0]?.token, 't-30', `stale ledger loaded: ${JSON.stringify(loaded)}`);
  // The other topic's ledger is the dead owner's last committed one: none.
  assert.equal(await store(groupId, ledgerTopic).load(other, 1, signal), undefined);
});

test("a takeover never loads the previous owner's unfinished write, and fences it", async () => {
  const { source, groupId, ledgerTopic, signal } = fresh();
  const first = store(groupId, ledgerTopic);
  await first.load(source, 0, signal);
  await first.save(source, 0, ledger(5), signal);
  await first.close();
  const zombie = await dieMidWrite(groupId, ledgerTopic, source, 0, ledger(77));

  const next = store(groupId, ledgerTopic);
  assert.equal((await next.load(source, 0, signal))?.intents[0]?.token, 't-5');
  // The unfinished write can no longer be committed.
  await assert.rejects(async () => {
    const tx = await zombie.beginTransaction().catch(() => undefined);
    if (tx === undefined) throw new Error('fenced');
    await tx.commit();
  });
  await next.save(source, 0, ledger(6), signal);
  assert.equal((await store(groupId, ledgerTopic).load(source, 0, signal))?.intents[0]?.token, 't-6');
});

test('each source partition has its own ledger partition; the topic grows with the source', async () => {
  const { source, groupId, ledgerTopic, signal } = fresh();
  const owner = store(groupId, ledgerTopic);
  await owner.load(source, 2, signal);
  await owner.save(source, 2, ledger(2), signal);
  await owner.load(source, 7, signal);
  await owner.save(source, 7, ledger(7), signal);
  const admin = new Admin({ clientId: 'ledger-store-test', bootstrapBrokers: [bootstrap] });
  try {
    const metadata = await admin.metadata({ topics: [ledgerTopic], forceUpdate: true });
    assert.equal(metadata.topics.get(ledgerTopic)?.partitionsCount, 8);
  } finally {
    await admin.close();
  }
  const reader = store(groupId, ledgerTopic);
  assert.equal((await reader.load(source, 2, signal))?.intents[0]?.token, 't-2');
  assert.equal((await reader.load(source, 7, signal))?.intents[0]?.token, 't-7');
  assert.equal(await reader.load(source, 3, signal), undefined);
});

test('a save never takes the partition back: after a takeover or a release the old holder fails, the new one goes on', async () => {
  const { source, groupId, ledgerTopic, signal } = fresh();
  const old = store(groupId, ledgerTopic);
  await old.load(source, 3, signal);
  await old.save(source, 3, ledger(1), signal);
  const taker = store(groupId, ledgerTopic);
  assert.equal((await taker.load(source, 3, signal))?.intents[0]?.token, 't-1');

  // The old holder, not yet told it lost the partition, records an intent: fenced.
  await assert.rejects(old.save(source, 3, ledger(50), signal), { code: 'INSERTER_LEDGER_FENCED' });
  // Told now (or its producer given up): it must not initialise a producer again to write.
  await old.release(source, 3);
  await assert.rejects(old.save(source, 3, ledger(60), signal), { code: 'INSERTER_LEDGER_FENCED' });

  await taker.save(source, 3, ledger(2), signal);
  assert.equal((await store(groupId, ledgerTopic).load(source, 3, signal))?.intents[0]?.token, 't-2');
});

test('a position commits with the ledger in one transaction: a fenced owner can no longer move it, even while the group has a member', async () => {
  const { source, groupId, ledgerTopic, signal } = fresh();
  await createTopic(bootstrap, source, 1);
  // A member in the group (a transactional commit carries no generation and is still taken).
  const member = new Consumer({ clientId: 'ledger-store-member', groupId, bootstrapBrokers: [bootstrap], autocommit: false, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
  consumers.push(member);
  const stream = await member.consume({ topics: [source], mode: 'earliest', autocommit: false });
  streams.push(stream);
  await until(() => member.coordinatorId !== null && (member.assignments?.length ?? 0) > 0, 'the member joined');
  const coordinator = (): number | null => member.coordinatorId;
  const at = (offset: bigint) => ({ topic: source, partition: 0, offset, epoch: -1 });
  const committed = async (): Promise<bigint | undefined> => (await committedOffsets(bootstrap, groupId, source, 1))[0];

  const first = store(groupId, ledgerTopic, coordinator);
  await first.load(source, 0, signal);
  assert.ok(first.commit !== undefined, 'a store told the group coordinator commits positions itself');
  await first.commit(at(10n), ledger(10), signal);
  assert.equal(await committed(), 10n);

  const next = store(groupId, ledgerTopic, coordinator);
  assert.equal((await next.load(source, 0, signal))?.intents[0]?.token, 't-10', 'the ledger written with the position');
  await next.commit?.(at(20n), ledger(20), signal);
  assert.equal(await committed(), 20n);

  // The first owner, stalled and not told, commits what it resolved before the takeover: refused.
  await assert.rejects(first.commit(at(15n), ledger(15), signal), { code: 'INSERTER_LEDGER_FENCED' });
  assert.equal(await committed(), 20n, 'the fenced owner did not move the position back');
  assert.equal((await store(groupId, ledgerTopic).load(source, 0, signal))?.intents[0]?.token, 't-20');
});
