// Network faults between inserter and ClickHouse through the TCP fault proxy — connections reset,
// stalled (request timeout), request bodies cut mid-way — while rows keep arriving: every row
// lands exactly once (retries reuse the insert token, so an insert that landed before its
// connection broke is deduplicated), nothing is dead-lettered.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { endOffsets } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { assertExactlyOnce, counts, produceRows, scenarioConfig, TABLE_DDL } from '../helpers/error-scenarios.ts';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const topic = uniqueTopic('errors-network');
const dlq = `${topic}.dlq`;
const TOTAL = 18_000; // a multiple of the nine fault phases
let bootstrap: string;
let ch: ClickHouseInstance;
let proxy: FaultProxy;
let inserter: InserterProcess | undefined;

before(async () => {
  bootstrap = await sharedKafka();
  ch = await startClickHouse({ users: [{ name: 'default', password: '', settings: { optimize_on_insert: '0' } }] });
  await ch.query('CREATE DATABASE e');
  await ch.query(TABLE_DDL('e', 't'));
  await createTopic(bootstrap, topic, 2);
  proxy = await startFaultProxy(ch.url);
});

after(async () => {
  await inserter?.kill();
  await proxy?.stop();
  await ch?.stop();
});

test('resets, stalls and cut bodies lose and duplicate nothing', async () => {
  inserter = await startInserter(
    scenarioConfig({
      bootstrap,
      group: `${topic}-g`,
      topic,
      url: proxy.url,
      database: 'e',
      table: 't',
      deadLetterTopic: dlq,
      maxRows: 700,
      destination: { requestTimeoutMs: 1_500, compression: 'none' },
    }),
  );
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
    proxy.setMode(mode, { cutAfterBytes: 6_000 });
    await produceRows(bootstrap, topic, next, next + TOTAL / faults.length, {}, 2);
    next += TOTAL / faults.length;
    await sleep(ms);
  }
  proxy.setMode('pass');
  await waitFor(async () => (await counts(ch, 'e', 't')).distinct >= TOTAL, `${TOTAL} rows`, 45_000).catch(async (error: unknown) => {
    throw new Error(`${String(error)}\n${(await inserter?.log())?.slice(-3000)}`);
  });
  await sleep(1_000); // a late duplicate would show now
  await assertExactlyOnce(ch, 'e', 't', TOTAL);
  assert.ok(proxy.stats.resets > 0 && proxy.stats.cuts > 0, `faults happened: ${JSON.stringify(proxy.stats)}`);
  assert.match(await inserter.log(), /"class":"transient_network"/);
  assert.deepEqual(await endOffsets(bootstrap, dlq).catch(() => []), [], 'nothing dead-lettered');
  assert.equal(await inserter.stop(), 0);
});
