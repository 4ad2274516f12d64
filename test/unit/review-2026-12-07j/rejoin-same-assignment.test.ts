// Finding: a group join that gives back the SAME assignment is ignored (#applyAssignments returns
// when nothing was added or revoked): the positions stay the in-memory ones. When this member had
// lost its membership meanwhile (session timeout: a blocked event loop, a network partition), the
// group gave its partitions to another member, which read and committed past them, and then gave
// them back (range assignor: same members, same split). The source then reads again from its old
// in-memory position what the other member already inserted (and the core may commit below the other
// member's commit). The stream path (MessagesStream#onConsumerGroupJoin) re-reads the committed
// offsets on EVERY join.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KafkaFetchSource } from '../../../src/source/kafka-fetch.ts';
import { FakeKafka, batch, delivered, options, recorder, until } from '../review-2026-12-07i/fake.ts';

test('a rejoin after losing the membership reads again from the committed position', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 100n);
  const log = recorder();
  const source = new KafkaFetchSource(options({ onError: () => undefined }));
  const stop = new AbortController();
  const running = source.run(log, stop.signal);
  try {
    (await kafka.nextFetch()).resolve(FakeKafka.response([[0, [batch([100, 101])]]]));
    await until(() => delivered(log, 0).length === 2, 'records');
    // this member is kicked out (session timeout); another member owns partition 0, reads and commits to 200
    kafka.committed.set(0, 200n);
    const consumer = kafka.consumer as unknown as { memberId: string; generationId: number; emit(e: string, p: unknown): void; assignments: unknown };
    consumer.memberId = 'new-member-id';
    consumer.generationId = 3;
    const assignments = [{ topic: 't', partitions: [0] }];
    consumer.assignments = assignments;
    consumer.emit('consumer:group:join', { groupId: 'g', memberId: 'new-member-id', generationId: 3, isLeader: false, assignments });
    const f = await kafka.fetchAfter(kafka.requested);
    const offset = FakeKafka.offsets(f).get(0);
    kafka.fetches.unshift(f);
    assert.ok(offset === 200n || log.events.includes('revoked 0'), `after the rejoin the source fetches from ${offset} (the group is at 200), no revoke/assign/reset: ${log.events.join(' ')}`);
  } finally {
    stop.abort();
    for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response([]));
    await running.catch(() => undefined);
    await source.close();
    kafka.restore();
  }
});
