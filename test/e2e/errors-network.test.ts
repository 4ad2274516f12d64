// Network faults between inserter and ClickHouse through the TCP fault proxy — connections reset,
// stalled (request timeout), request bodies cut mid-way — while rows keep arriving: every row
// lands exactly once (retries reuse the insert token, so an insert that landed before its
// connection broke is deduplicated), nothing is dead-lettered.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { produceRows, useScenarioStack } from '../helpers/error-scenarios.ts';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.ts';
import { waitFor } from '../helpers/inserter.ts';

const TOTAL = 18_000; // a multiple of the nine fault phases
let proxy: FaultProxy;
const stack = useScenarioStack('errors-network', {
  users: [{ name: 'default', password: '', settings: { optimize_on_insert: '0' } }],
  partitions: 2,
  setup: async ({ ch }) => {
    proxy = await startFaultProxy(ch.url);
  },
  teardown: async () => {
    await proxy?.stop();
  },
});

test('resets, stalls and cut bodies lose and duplicate nothing', async () => {
  const inserter = await stack.start({ url: proxy.url, maxRows: 700, destination: { requestTimeoutMs: 1_500, compression: 'none' } });
  const faults: Array<[Parameters<FaultProxy['setMode']>[0], number]> = [
    ['pass', 700],
    ['reset', 1_200],
    ['pass', 500],
    ['stall', 2_500],
    ['pass', 500],
    ['cut', 1_500],
    ['pass', 500],
    ['reset', 800],
    ['cut', 1_000],
  ];
  let next = 0;
  for (const [mode, ms] of faults) {
    const before = { ...proxy.stats };
    proxy.setMode(mode, { cutAfterBytes: 6_000 });
    await produceRows(stack.bootstrap, stack.topic, next, next + TOTAL / faults.length, {}, 2);
    next += TOTAL / faults.length;
    await sleep(ms);
    // A loaded machine may send nothing in a phase (a retry still backing off): a fault phase
    // lasts until its fault has hit at least once, so every run exercises every fault.
    if (mode === 'reset') await waitFor(async () => proxy.stats.resets > before.resets, 'a connection reset', 30_000, 50);
    if (mode === 'cut') await waitFor(async () => proxy.stats.cuts > before.cuts, 'a request body cut', 30_000, 50);
  }
  proxy.setMode('pass');
  await stack.waitForRows(TOTAL, 45_000);
  await sleep(1_000); // a late duplicate would show now
  await stack.assertExactlyOnce(TOTAL);
  assert.ok(proxy.stats.resets > 0 && proxy.stats.cuts > 0, `faults happened: ${JSON.stringify(proxy.stats)}`);
  assert.match(await inserter.log(), /"class":"transient_network"/);
  await stack.assertNothingDeadLettered();
  assert.equal(await inserter.stop(), 0);
});
