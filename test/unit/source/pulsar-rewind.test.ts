// PulsarSource.rewind (src/source/pulsar-source.ts) against the fake web service of review 2026-12-07f
// (test/unit/review-2026-12-07f/fake-pulsar.ts), which shows what the adapter sends and lets the test
// say what the broker sends back: a consumer that handed records on is closed (not revoked) and
// subscribed again, and nothing it had received is handed on after the switch; one that handed
// nothing on is kept; a subscription taken by another process meanwhile is revoked, then assigned
// again once this process gets it back.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, test } from 'node:test';
import { encodeMessageId, offsetOf, type PulsarMessageId } from '../../../src/source/pulsar-message-id.ts';
import { PulsarSource } from '../../../src/source/pulsar-source.ts';
import type { SourceHandler } from '../../../src/source/types.ts';
import { startFakePulsar, until, type FakeConnection, type FakePulsar } from '../review-2026-12-07f/fake-pulsar.ts';

let fake: FakePulsar;
const closers: Array<() => Promise<unknown>> = [];

beforeEach(async () => {
  fake = await startFakePulsar();
});

afterEach(async () => {
  await fake.close();
  for (const close of closers.splice(0)) await close();
});

const id = (entryId: bigint): PulsarMessageId => ({ ledgerId: 9n, entryId, partition: -1, batchIndex: -1 });
const message = (n: number): { messageId: string; payload: string } => ({ messageId: encodeMessageId(id(BigInt(n))), payload: Buffer.from(`m${n}`).toString('base64') });
const acks = (connection: FakeConnection): string[] =>
  connection.frames.filter((f): f is { messageId: string } => typeof (f as { messageId?: unknown }).messageId === 'string').map((f) => f.messageId);

function start(handler: SourceHandler): PulsarSource {
  const source = new PulsarSource({ url: fake.url, tenant: 'public', namespace: 'default', subscription: 'sub', topics: ['t'], retry: { baseMs: 20, factor: 1, capMs: 20 } });
  const stop = new AbortController();
  const running = source.run(handler, stop.signal);
  closers.push(async () => {
    stop.abort();
    await running.catch(() => undefined);
    await source.close();
  });
  return source;
}

function logging(log: string[], onRecord: (value: string) => void | Promise<void> = () => undefined): SourceHandler {
  return {
    onRecord: (record) => {
      log.push(`${record.partition}:${record.value?.toString()}`);
      return onRecord(record.value?.toString() ?? '');
    },
    onAssigned: (refs) => log.push(...refs.map((r) => `assigned ${r.partition}`)),
    onRevoked: (refs) => log.push(...refs.map((r) => `revoked ${r.partition}`)),
    onReset: () => log.push('reset'),
  };
}

/** The first consumer of the partition accepted that is not one of `known`. */
async function consumerOf(partition: number, known: readonly FakeConnection[] = []): Promise<FakeConnection> {
  const find = (): FakeConnection | undefined => fake.connections.find((c) => c.kind === 'consumer' && c.path.includes(`/t-partition-${partition}/`) && !known.includes(c));
  await until(() => find() !== undefined, `a consumer of partition ${partition}`);
  return find() as FakeConnection;
}

test('rewind: a consumer that handed records on is closed and subscribed again (no revocation), and nothing it had received is handed on after the switch; one that handed nothing on is kept', async () => {
  fake.admin = (request) => (request.path.endsWith('/t/partitions') ? { status: 200, body: { partitions: 2 } } : { status: 404 });
  const log: string[] = [];
  let gate: (() => void) | undefined;
  // The core holds m3 (its onRecord waits) while m4 and m5 are received.
  const source = start(logging(log, (value) => (value === 'm3' && gate === undefined ? new Promise<void>((resolve) => (gate = resolve)) : undefined)));
  const [first, idle] = [await consumerOf(0), await consumerOf(1)];
  await until(() => log.includes('assigned 0') && log.includes('assigned 1'), 'both partitions assigned');
  for (let n = 1; n <= 5; n++) first.send(message(n));
  await until(() => gate !== undefined, 'm3 handed over');
  await sleep(100); // m4 and m5 arrive meanwhile
  await source.commit([{ topic: 't', partition: 0, offset: offsetOf(id(2n)), epoch: 0 }]);
  assert.deepEqual(acks(first), [message(1).messageId]);

  const rewinding = source.rewind(() => log.push('switch'), AbortSignal.timeout(10_000));
  assert.equal(log.at(-1), 'switch', 'the switch happens at once (the old consumer is closed in the same turn)');
  gate?.(); // m3 accepted: the delivery loop must not go on with the old consumer's m4 and m5
  const second = await consumerOf(0, [first]);
  await rewinding;
  assert.deepEqual(first.closeCodes, [4002]);
  assert.deepEqual([idle.closeCodes, idle.ended], [[], false], 'the consumer that handed nothing on is kept');
  // The broker redelivers every message not acknowledged to the new consumer.
  for (let n = 2; n <= 5; n++) second.send(message(n));
  await until(() => log.includes('0:m5'), 'the redelivered records');
  await sleep(50);
  assert.deepEqual(log.slice(log.indexOf('switch') + 1), ['0:m2', '0:m3', '0:m4', '0:m5'], log.join(', '));
  assert.deepEqual(
    log.filter((l) => /assigned|revoked/.test(l)),
    ['assigned 0', 'assigned 1'],
    'one ownership throughout',
  );
  await source.commit([{ topic: 't', partition: 0, offset: offsetOf(id(5n)) + 1n, epoch: 0 }]);
  assert.deepEqual(
    acks(second),
    [2, 3, 4, 5].map((n) => message(n).messageId),
  );
  assert.deepEqual(acks(first), [message(1).messageId], 'nothing acknowledged on the closed consumer');
});

test('rewind: a subscription another process took meanwhile revokes the partition; it is assigned again once this process subscribes again', async () => {
  let holders = [{ consumerName: 'someone-else' }];
  fake.admin = (request) => (request.path.endsWith('/stats') ? { status: 200, body: { subscriptions: { sub: { consumers: holders } } } } : { status: 404 });
  const log: string[] = [];
  const source = start(logging(log));
  const consumer = await fake.next('consumer');
  consumer.send(message(1));
  await until(() => log.includes('0:m1'), 'm1');
  fake.accept = (kind) => (kind === 'consumer' ? 409 : true); // held by another process now
  await source.rewind(() => log.push('switch'), AbortSignal.timeout(10_000));
  await until(() => log.includes('revoked 0'), 'the partition revoked');
  holders = [];
  fake.accept = () => true;
  await until(() => log.filter((l) => l === 'assigned 0').length === 2, 'assigned again');
  assert.deepEqual(log.slice(0, 4), ['assigned 0', '0:m1', 'switch', 'revoked 0']);
});

test('rewind: subscribing again is retried without a revocation while no other process holds the subscription (this process’s old consumer lingering)', async () => {
  fake.admin = (request) => (request.path.endsWith('/stats') ? { status: 200, body: { subscriptions: { sub: { consumers: [] } } } } : { status: 404 });
  const log: string[] = [];
  const source = start(logging(log));
  const consumer = await fake.next('consumer');
  consumer.send(message(1));
  await until(() => log.includes('0:m1'), 'm1');
  let refusals = 2;
  fake.accept = (kind) => (kind === 'consumer' && refusals-- > 0 ? 409 : true);
  await source.rewind(() => log.push('switch'), AbortSignal.timeout(10_000));
  const again = await fake.next('consumer');
  again.send(message(1));
  await until(() => log.filter((l) => l === '0:m1').length === 2, 'm1 again');
  assert.deepEqual(log, ['assigned 0', '0:m1', 'switch', '0:m1']);
});
