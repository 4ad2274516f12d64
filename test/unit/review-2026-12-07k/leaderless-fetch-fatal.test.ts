// Finding (medium-high, the inserter stops on a broker failure): the client routes a Fetch by ITS
// OWN metadata, not by `options.node` (consumer.js #fetchNodeForRequest / kGetFetchNode: the
// partitions' leader from its cache, which it refreshes itself on a retriable error). When that
// metadata says leader -1 for the requested partitions (their only replica's broker died; or no
// in-sync replica left), fetch() rejects with UserError('Cannot find broker with node id -1'),
// canRetry: false, without retrying (first test, against the real client). isTransient() says
// false, #fetchLoop sets #fatal and run() throws: the pipeline stops on a broker outage that the
// adapter itself handles as "leaderless, ask again in 250 ms" when it sees it in #readLeaders.
// Typical sequence: broker 1 is killed; node 1's in-flight fetch fails with a network error; the
// client retries with forced metadata, which by then names leader -1 → UserError → fatal.
// Fix: treat this client error as transient (e.g. `code === 'PLT_KFK_USER'` and message
// /Cannot find broker/ → retry with #forceMetadata), or classify UserError as fatal only when
// #closing; better, re-read leaders before retrying and drop leaderless partitions from requests.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTransient } from '../../../src/source/kafka-fetch-response.ts';
import { FakeKafka, batch, delivered, recorder, until } from '../review-2026-12-07i/fake.ts';
import { realFetchError, start, teardown } from './helpers.ts';

test('(evidence, holds) the real client: a fetch whose partitions its metadata says are leaderless rejects with a non-retriable UserError', { timeout: 20_000 }, async () => {
  const error = (await realFetchError([1, -1], [1])) as { code?: string; canRetry?: boolean; message?: string } | undefined;
  assert.ok(error !== undefined);
  assert.equal(error.code, 'PLT_KFK_USER');
  assert.equal(error.canRetry, false);
  assert.equal(error.message, 'Cannot find broker with node id -1');
  assert.equal(isTransient(error), true, 'the adapter retries it (it classified it as fatal before the fix)');
});

test('a fetch rejected because the partition became leaderless is retried, not fatal', { timeout: 20_000 }, async () => {
  const leaderless = await realFetchError([1, -1], [1]); // built by the real client, before the fake stubs fetch
  const kafka = new FakeKafka();
  kafka.leaders = [1, 2];
  kafka.committed.set(0, 0n);
  kafka.committed.set(1, 0n);
  const log = recorder();
  const errors: Array<{ error: unknown; attempt: number }> = [];
  const r = await start(kafka, log, errors);
  try {
    await until(() => kafka.fetches.length === 2, 'a fetch to each leader');
    const two = kafka.fetches.find((f) => f.options.node === 2)!;
    kafka.fetches.splice(kafka.fetches.indexOf(two), 1);
    kafka.leaders = [1, -1]; // broker 2 died; the client's refreshed metadata says so
    two.reject(leaderless);
    // node 1 answers (with partition 0's records) until run() ended or the error was reported
    await until(() => {
      for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response(delivered(log, 0).length === 0 ? [[0, [batch([0])]]] : []));
      return r.outcome() !== undefined || errors.length > 0;
    }, 'the error handled');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(r.outcome() === undefined, `run() ended with "${String(r.outcome())}": the inserter stops because one broker died`);
    await until(() => {
      for (const f of kafka.fetches.splice(0)) f.resolve(FakeKafka.response(delivered(log, 0).length === 0 ? [[0, [batch([0])]]] : []));
      return delivered(log, 0).length === 1;
    }, 'partition 0 goes on');
  } finally {
    await teardown(kafka, r);
  }
});
