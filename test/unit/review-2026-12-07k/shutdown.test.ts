// Finding (medium, shutdown hangs while a broker is unreachable): run() does not end on the signal
// while a fetch is in flight. consumer.fetch() takes no signal, and run()'s finally awaits every
// loop's `done`, which awaits the fetch. Against a healthy broker that is fetchMaxWaitMs; against
// a dead or stopped one it is the client's whole retry budget (retries: 10, retryDelay 1 s,
// request timeout 5 s: about a minute), and Pipeline.close() awaits run() (no deadline) before
// anything else — so a graceful stop during a broker outage outlives any SIGTERM grace period.
// The stream path closes its stream on the signal. Same for a fatal error in one loop: run()
// rejects only once every other loop's fetch returned.
// Sequence: a fetch is in flight (never answered: the broker is stopped); stop.abort() → run()
// is still pending a second later.
// Fix: race each fetch with the loops' signal (drop its late result or error), so that run()'s
// finally waits only for deliveries, not for the network.
//
// Finding (low): the supervisor's backoff after a failed position/leader read
// (`sleep(backoffMs(failures), undefined, { signal })`) is not woken by #wake(): close() without
// the signal (and a #fatal set by a loop, and an assignment change) waits for it, up to 10 s.
// Sequence: committed-offset reads fail (coordinator moving); close() right after the first
// failure → run() ends only when the 500 ms backoff is over.
// Fix: wait with #waitForWake(backoffMs(failures)) instead of sleep (close(), fatal and wakes end it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeKafka, until } from '../review-2026-12-07i/fake.ts';
import { start, teardown, tick } from './helpers.ts';

test('run() ends on the signal while a fetch is in flight (a stopped broker)', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const r = await start(kafka);
  try {
    await until(() => kafka.fetches.length === 1, 'the fetch');
    r.stop.abort();
    await until(() => r.outcome() !== undefined, 'run() to end', 1_000).catch(() => undefined);
    assert.equal(r.outcome(), 'resolved', 'run() is still waiting for the fetch to the stopped broker, one second after the signal');
  } finally {
    await teardown(kafka, r);
  }
});

test('close() (without the signal) ends run() at once while the supervisor backs off', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.committedHook = () => Promise.reject(Object.assign(new Error('NOT_COORDINATOR'), { canRetry: true }));
  const errors: Array<{ error: unknown; attempt: number }> = [];
  const r = await start(kafka, undefined, errors);
  try {
    await until(() => errors.length >= 1, 'the first failed position read');
    const closing = Date.now();
    await r.source.close();
    await until(() => r.outcome() !== undefined, 'run() to end', 5_000);
    const took = Date.now() - closing;
    assert.ok(took < 150, `run() ended ${took} ms after close(): it waited for the supervisor's backoff`);
  } finally {
    kafka.committedHook = undefined;
    await teardown(kafka, r);
  }
});

test('(holds) run() ends once the in-flight fetch returns after the signal, with no fetch after it', { timeout: 20_000 }, async () => {
  const kafka = new FakeKafka();
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const r = await start(kafka);
  try {
    const f = await kafka.nextFetch();
    r.stop.abort();
    f.resolve(FakeKafka.response([]));
    await until(() => r.outcome() !== undefined, 'run() to end');
    const requested = kafka.requested;
    await tick(30);
    assert.equal(r.outcome(), 'resolved');
    assert.equal(kafka.requested, requested);
  } finally {
    await teardown(kafka, r);
  }
});
