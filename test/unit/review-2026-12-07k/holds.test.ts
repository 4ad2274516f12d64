// Probes of review 2026-12-07k that HOLD against the per-leader loops: a leader move with two
// loops fetching one partition at one position (both answer orders), one loop per node and no
// stall through churn (rewinds, resets, rebalances, leader moves), OFFSET_OUT_OF_RANGE of one node
// while another node's record is held (serialized, no reset), an owned partition that loses its
// leader after it has a position, a non-retriable error wrapped after a retriable one, and
// nothing left behind after run() (listeners, timers).
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { test } from 'node:test';
import { MultipleErrors, NetworkError, ResponseError } from '@platformatic/kafka';
import { FakeKafka, batch, deferred, delivered, recorder, until, type PendingFetch } from '../review-2026-12-07i/fake.ts';
import { autoAnswer, start, teardown, tick } from './helpers.ts';

const retriable = (message: string): Error => Object.assign(new Error(message), { canRetry: true });

/** Pending fetch of `node` (waits for it); removed from the queue. */
async function fetchOf(kafka: FakeKafka, node: number): Promise<PendingFetch> {
  await until(() => kafka.fetches.some((f) => f.options.node === node), `a fetch to node ${node}`);
  const f = kafka.fetches.find((x) => x.options.node === node)!;
  kafka.fetches.splice(kafka.fetches.indexOf(f), 1);
  return f;
}

for (const order of ['new leader first', 'old leader first'] as const) {
  test(`(holds) a leader move while the old leader's fetch is in flight (${order}): each offset once, in order`, { timeout: 20_000 }, async () => {
    const kafka = new FakeKafka();
    kafka.leaders = [1, 3];
    kafka.committed.set(0, 0n);
    kafka.committed.set(1, 0n);
    const log = recorder();
    const r = await start(kafka, log, []);
    try {
      (await fetchOf(kafka, 1)).resolve(FakeKafka.response([[0, [batch([0, 1])]]]));
      await until(() => delivered(log, 0).length === 2, 'partition 0 read to 1');
      const old = await fetchOf(kafka, 1); // partition 0 at 2, in flight at the old leader
      assert.equal(FakeKafka.offsets(old).get(0), 2n);
      kafka.leaders = [2, 3];
      (await fetchOf(kafka, 3)).reject(retriable('NETWORK_EXCEPTION')); // wakes the supervisor: leaders read again
      const moved = await fetchOf(kafka, 2);
      assert.equal(FakeKafka.offsets(moved).get(0), 2n, 'the new leader is asked from the same position');
      if (order === 'new leader first') {
        moved.resolve(FakeKafka.response([[0, [batch([2, 3, 4])]]]));
        await until(() => delivered(log, 0).length === 5, 'new leader records');
        old.resolve(FakeKafka.response([[0, [batch([0, 1, 2, 3])]]]));
      } else {
        old.resolve(FakeKafka.response([[0, [batch([2, 3])]]]));
        await until(() => delivered(log, 0).length === 4, 'old leader records');
        moved.resolve(FakeKafka.response([[0, [batch([2, 3, 4])]]]));
      }
      const after = await kafka.fetchIncluding(0);
      kafka.fetches.unshift(after);
      assert.equal(after.options.node, 2);
      assert.equal(FakeKafka.offsets(after).get(0), 5n);
      assert.deepEqual(delivered(log, 0), [0, 1, 2, 3, 4]);
      assert.ok(!log.events.includes('reset'));
    } finally {
      await teardown(kafka, r);
    }
  });
}

/** A deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('(holds) churn: at most one fetch per node at a time, no offset twice or skipped between starts, nothing after onRevoked, every partition fetched at the end', { timeout: 30_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 4;
  kafka.leaders = [1, 2, 3, 1];
  kafka.assignment = [0, 1, 2, 3];
  for (let p = 0; p < 4; p++) kafka.committed.set(p, 0n);
  let failNext = false;
  const log = recorder(() => {
    if (!failNext) return undefined;
    failNext = false;
    return Promise.reject(new Error('schema load failed'));
  });
  const r = await start(kafka, log, []);
  let overlap = '';
  const watch = setInterval(() => {
    const nodes = kafka.fetches.map((f) => f.options.node);
    if (new Set(nodes).size !== nodes.length) overlap ||= nodes.join(',');
  }, 1);
  // answers each fetch at its requested offsets (two records), a few ms later
  const stopAnswering = autoAnswer(kafka, (f) => FakeKafka.response([...FakeKafka.offsets(f)].map(([p, o]) => [p, [batch([Number(o), Number(o) + 1])]])));
  const random = prng(7);
  try {
    for (let step = 0; step < 40; step++) {
      const x = random();
      if (step % 12 === 5) failNext = true;
      if (x < 0.25) {
        await r.source.rewind(() => log.events.push('switch'));
      } else if (x < 0.5) {
        const owned = [0, 1, 2, 3].filter(() => random() < 0.7);
        log.events.push('join'); // a join with the same partitions starts over without an event (as the stream path)
        kafka.join(owned.length === 0 ? [0] : owned);
      } else if (x < 0.8) {
        kafka.leaders = kafka.leaders.map((l) => (random() < 0.3 ? 1 + Math.floor(random() * 3) : l));
      }
      await tick(10 + Math.floor(random() * 20));
    }
    log.events.push('join');
    kafka.join([0, 1, 2, 3]); // leaders read again
    await until(() => [0, 1, 2, 3].every((p) => kafka.requested > 0 && log.records.some((rec) => rec.partition === p && rec.offset >= 4n)), 'every partition read on', 15_000);
    assert.equal(overlap, '', `two fetches in flight to one node: ${overlap}`);
    // between two starts (reset, rewind switch, join), each partition's offsets go up by one
    // and nothing of a partition between its onRevoked and its next onAssigned
    const last = new Map<number, number>();
    const owned = new Set<number>();
    for (const e of log.events) {
      if (e === 'reset' || e === 'switch' || e === 'join') {
        last.clear();
        continue;
      }
      const change = /^(assigned|revoked) ([\d,]+)$/.exec(e);
      if (change !== null) {
        for (const q of change[2]!.split(',').map(Number)) {
          if (change[1] === 'assigned') owned.add(q);
          else owned.delete(q);
          last.delete(q);
        }
        continue;
      }
      const m = /^r(\d+):(\d+)$/.exec(e);
      if (m === null) continue;
      const [p, o] = [Number(m[1]), Number(m[2])];
      assert.ok(owned.has(p), `partition ${p}: offset ${o} after onRevoked`);
      const prev = last.get(p);
      assert.ok(prev === undefined || o === prev + 1, `partition ${p}: ${o} after ${prev}`);
      last.set(p, o);
    }
  } finally {
    clearInterval(watch);
    stopAnswering();
    await teardown(kafka, r);
  }
});

test('(holds) OFFSET_OUT_OF_RANGE of node 1 while node 2 holds a record: moved after that record, node 2 not reset', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.leaders = [1, 2];
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const hold = deferred();
  let inside = 0;
  let overlapped = false;
  const log = recorder(async (rec) => {
    overlapped ||= inside > 0;
    inside++;
    if (rec.partition === 1 && rec.offset === 0n) await hold.promise;
    inside--;
  });
  const r = await start(kafka, log, []);
  try {
    const one = await fetchOf(kafka, 1);
    (await fetchOf(kafka, 2)).resolve(FakeKafka.response([[1, [batch([0, 1])]]]));
    await until(() => delivered(log, 1).length === 1, 'partition 1 held at 0');
    kafka.logStart.set(0, 10n); // retention removed partition 0's first records
    one.reject(new ResponseError(1, 17, { '/responses/0/partitions/0': [1, null] }, undefined));
    await tick(700);
    assert.equal(
      kafka.fetches.some((f) => f.options.node === 1),
      false,
      'node 1 waits for the held record before moving into the log',
    );
    hold.resolve();
    const moved = await kafka.fetchIncluding(0);
    kafka.fetches.unshift(moved);
    assert.equal(FakeKafka.offsets(moved).get(0), 10n);
    const two = await fetchOf(kafka, 2);
    kafka.fetches.unshift(two);
    assert.equal(FakeKafka.offsets(two).get(1), 2n);
    assert.deepEqual(delivered(log, 1), [0, 1]);
    assert.ok(!log.events.includes('reset'));
    assert.equal(overlapped, false);
  } finally {
    await teardown(kafka, r);
  }
});

test('(holds) an owned partition loses its leader after it has a position: the others go on, it resumes where it was', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.leaders = [1, 2];
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const log = recorder();
  const r = await start(kafka, log, []);
  try {
    (await fetchOf(kafka, 2)).resolve(FakeKafka.response([[1, [batch([0, 1])]]]));
    await until(() => delivered(log, 1).length === 2, 'partition 1 read');
    kafka.leaders = [1, -1];
    (await fetchOf(kafka, 2)).reject(retriable('Connection refused'));
    (await fetchOf(kafka, 1)).resolve(FakeKafka.response([[0, [batch([0, 1])]]]));
    (await fetchOf(kafka, 1)).resolve(FakeKafka.response([[0, [batch([2])]]]));
    await until(() => delivered(log, 0).length === 3, 'partition 0 goes on');
    kafka.leaders = [1, 2];
    const back = await fetchOf(kafka, 2);
    assert.deepEqual([...FakeKafka.offsets(back)], [[1, 2n]]);
    back.resolve(FakeKafka.response([[1, [batch([2])]]]));
    await until(() => delivered(log, 1).length === 3, 'partition 1 resumes');
    assert.ok(!log.events.includes('reset'));
  } finally {
    await teardown(kafka, r);
  }
});

test('(holds) a non-retriable error after a retriable attempt (wrapped by the client) is retried once, then fatal', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 1;
  kafka.assignment = [0];
  kafka.committed.set(0, 0n);
  const errors: Array<{ error: unknown; attempt: number }> = [];
  const r = await start(kafka, recorder(), errors);
  try {
    const denied = (): ResponseError => new ResponseError(1, 17, { '/responses/0/partitions/0': [29, null] }, undefined);
    (await kafka.nextFetch()).reject(new MultipleErrors('fetch failed 2 times.', [new NetworkError('Connection refused'), denied()]));
    (await kafka.nextFetch()).reject(denied());
    await until(() => r.outcome() !== undefined, 'run() to end');
    assert.equal(errors.length, 1);
    assert.ok(r.outcome() instanceof ResponseError);
  } finally {
    await teardown(kafka, r);
  }
});

test('(holds) after run(): no join listener, no abort listener, no timer left (leaderless rounds and a loop in backoff)', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.partitions = 3;
  kafka.leaders = [1, 2, -1];
  kafka.assignment = [0, 1, 2];
  for (let p = 0; p < 3; p++) kafka.committed.set(p, 0n);
  const timers = (): number => process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
  const before = timers();
  const r = await start(kafka, recorder(), []);
  const consumer = kafka.consumer!;
  try {
    (await fetchOf(kafka, 2)).reject(retriable('Connection refused')); // node 2's loop backs off
    await tick(300); // a leaderless round's 250 ms wait
    r.stop.abort();
    for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response([]));
    await until(() => r.outcome() !== undefined, 'run() to end');
    assert.equal(r.outcome(), 'resolved');
    assert.equal(consumer.listenerCount('consumer:group:join'), 0);
    assert.equal(getEventListeners(r.stop.signal, 'abort').length, 0);
    assert.equal(timers(), before);
  } finally {
    await teardown(kafka, r);
  }
});
