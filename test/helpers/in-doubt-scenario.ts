// The shared frame of the "insert in doubt" scenarios against ClickHouse's own server
// (docs/design/delivery.md §11; test/e2e/schema-*-in-doubt.test.ts): the scenario stack behind a
// fault proxy, 100 rows of which one (offset 50) has a `z` that is not a date, an inserter that
// sends them as one insert through the proxy and retries an unknown outcome only after 3 s (time
// for the test's ALTERs), and the outcome every such scenario must end with: every row in the table
// once, commits at the end, that one row dead-lettered marked may-have-landed, never a split.
import assert from 'node:assert/strict';
import { committedOffsets, produce } from './bus.ts';
import { deadLetters, produceRows, useScenarioStack, type ScenarioStack } from './error-scenarios.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import type { InserterProcess } from './inserter.ts';

export const TOTAL = 100;
/** The row whose `z` is not a date. */
export const ODD = 50;

export interface InDoubtStack {
  readonly stack: ScenarioStack;
  /** The proxy in front of the scenario's ClickHouse server (set once `before` ran). */
  proxy(): FaultProxy;
}

/** The scenario stack (its table created with `sql`) and a fault proxy in front of its server. */
export function useInDoubtStack(name: string, sql?: readonly string[]): InDoubtStack {
  let proxy: FaultProxy | undefined;
  const stack = useScenarioStack(name, {
    ...(sql === undefined ? {} : { sql: [...sql] }),
    setup: async ({ ch }) => {
      proxy = await startFaultProxy(ch.url);
    },
    teardown: async () => {
      await proxy?.stop();
    },
  });
  return {
    stack,
    proxy: () => {
      if (proxy === undefined) throw new Error('no fault proxy yet (used before its before hook ran?)');
      return proxy;
    },
  };
}

/** Produces the TOTAL rows, the one at ODD with `z: 'not a date'`. */
export async function produceWithOddRow(stack: ScenarioStack): Promise<void> {
  const { bootstrap, topic } = stack;
  await produceRows(bootstrap, topic, 0, ODD);
  await produce(bootstrap, topic, [{ key: Buffer.from(String(ODD)), value: Buffer.from(JSON.stringify({ id: ODD, team_id: 1, n: ODD, s: 'odd', k: 0, z: 'not a date' })) }]);
  await produceRows(bootstrap, topic, ODD + 1, TOTAL);
}

/** An inserter sending all rows as one insert through the proxy, retrying an unknown outcome after 3 s. */
export function startThroughProxy(scenario: InDoubtStack): Promise<InserterProcess> {
  return scenario.stack.start({
    url: scenario.proxy().url,
    maxRows: TOTAL,
    destination: { compression: 'none' },
    // The retry comes after the test's ALTERs: the first attempt's outcome stays unknown that long.
    extra: { errorPolicy: { defaults: { transient_network: { baseMs: 3_000, capMs: 3_000 } } } },
  });
}

/**
 * Waits for the commits to reach TOTAL, then checks the scenario's outcome: every row once (the first
 * attempt landed with all of them), exactly the odd row dead-lettered, marked may-have-landed with
 * its class, the range never split; the inserter stops cleanly.
 */
export async function expectEveryRowOnceOddMarked(stack: ScenarioStack, inserter: InserterProcess): Promise<void> {
  const { bootstrap, topic, dlq } = stack;
  await stack.waitFor(async () => (await committedOffsets(bootstrap, `${topic}-g`, topic, 1))[0] === BigInt(TOTAL), `committed to ${TOTAL}`, 45_000);
  assert.deepEqual(await stack.counts(), { rows: TOTAL, distinct: TOTAL }, 'the first attempt landed every row; nothing twice');
  const letters = await deadLetters(bootstrap, dlq, 1);
  assert.equal(letters.length, 1, 'exactly the refused row is dead-lettered');
  const [letter] = letters;
  assert.equal(letter?.headers.get('x-inserter-original-offset'), String(ODD));
  assert.equal(letter?.headers.get('x-inserter-may-have-landed'), 'true');
  assert.equal(letter?.headers.get('x-inserter-error-class'), 'row_data');
  const log = await inserter.log();
  assert.match(log, /INSERTER_DELIVERY_IN_DOUBT/);
  assert.doesNotMatch(log, /splitting it/, 'never split');
  assert.equal(await inserter.stop(), 0);
}
