// One destination down for 60 s under load: the other destination keeps its rate (≥ 90% of what the
// producer sends it), the inserter's buffered bytes stay under the budget (the down destination is
// parked and Kafka keeps its rows), and after recovery every row of the down destination arrives
// exactly once (re-read from the committed positions; the ledger skips what the healthy one has).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { committedOffsets, endOffsets, produce } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const OUTAGE_MS = 60_000;
const RATE = 400; // events per second, half for each team
const BUDGET = 256 * 1024;
let bootstrap: string;
let a: ClickHouseInstance;
let b: ClickHouseInstance;
let inserter: InserterProcess | undefined;
const topic = uniqueTopic('isolation');
const ddl = 'CREATE TABLE app.events (uuid UUID, team_id Int64, pad String, _offset UInt64) ENGINE = MergeTree ORDER BY uuid SETTINGS non_replicated_deduplication_window = 1000';

before(async () => {
  bootstrap = await sharedKafka();
  const users = [{ name: 'default', password: '', settings: { optimize_on_insert: '0' } }];
  [a, b] = await Promise.all([startClickHouse({ users }), startClickHouse({ users })]);
  for (const ch of [a, b]) {
    await ch.query('CREATE DATABASE app');
    await ch.query(ddl);
    await ch.query('SYSTEM STOP MERGES app.events');
  }
  await createTopic(bootstrap, topic, 3);
});

after(async () => {
  await inserter?.kill();
  await Promise.all([a?.stop(), b?.stop()]);
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const count = async (ch: ClickHouseInstance): Promise<number> => Number((await ch.query('SELECT count() FROM app.events')).trim());

async function gauge(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('a destination down for 60 s does not slow the other, memory stays bounded, nothing is lost or doubled', async (t) => {
  const metricsPort = await freePort();
  inserter = await startInserter({
    kafka: { brokers: [bootstrap], groupId: `${topic}-group`, fetchMaxWaitMs: 100 },
    destinations: [
      { id: 'a', url: a.url, database: 'app' },
      { id: 'b', url: b.url, database: 'app', maxBufferedBytes: BUDGET, requestTimeoutMs: 2_000 },
    ],
    teams: { map: { '1': 'a', '2': 'b' } },
    routes: [{ topic, table: 'events' }],
    batch: { maxRows: 200, maxAgeMs: 200 },
    commitIntervalMs: 300,
    maxBufferedBytes: 4 * BUDGET,
    errorPolicy: { defaults: { transient_network: { baseMs: 100, capMs: 1_000, pauseMs: 1_000 } } },
    telemetry: { metricsListen: `127.0.0.1:${metricsPort}` },
  });
  const produced = { 1: 0, 2: 0 };
  let producing = true;
  const producer = (async () => {
    while (producing) {
      const rows = [];
      for (let i = 0; i < RATE / 5; i++) {
        const team = (i % 2) + 1;
        produced[team as 1 | 2]++;
        rows.push({ value: Buffer.from(JSON.stringify({ uuid: randomUUID(), team_id: team, pad: 'x'.repeat(400) })) });
      }
      await produce(bootstrap, topic, rows);
      await sleep(200);
    }
  })();

  try {
    await run();
  } finally {
    producing = false;
    await producer;
  }

  async function run(): Promise<void> {
    await waitFor(async () => (await count(a)) > 0 && (await count(b)) > 0, 'both destinations receiving', 60_000);
    await sleep(3_000);
    await b.down();
    const outageStart = { a: await count(a), producedA: produced[1], at: Date.now() };
    let maxBuffered = 0;
    let parkedSeen = 0;
    while (Date.now() - outageStart.at < OUTAGE_MS) {
      await sleep(1_000);
      maxBuffered = Math.max(maxBuffered, await gauge(metricsPort, 'inserter_buffered_bytes'));
      parkedSeen = Math.max(parkedSeen, await gauge(metricsPort, 'inserter_parked_destinations'));
    }
    // Rows that reached a during the outage, against what the producer sent for a's team meanwhile
    // (a second of slack for the batches in flight at each end).
    const landed = (await count(a)) - outageStart.a;
    const sent = produced[1] - outageStart.producedA;
    await b.up();
    producing = false;
    await producer;

    t.diagnostic(`during the outage a received ${landed} of ${sent} rows sent to it; max buffered ${maxBuffered} bytes (budget ${4 * BUDGET})`);
    assert.ok(landed >= 0.9 * (sent - RATE / 2), `destination a kept its rate during the outage: ${landed} of ${sent}`);
    assert.ok(parkedSeen >= 1, 'the down destination was parked');
    assert.ok(maxBuffered <= 4 * BUDGET, `buffered bytes stayed under the budget: max ${maxBuffered}`);

    await waitFor(async () => (await count(a)) === produced[1] && (await count(b)) === produced[2], `all rows (a=${produced[1]}, b=${produced[2]})`, 120_000).catch(async (error: unknown) => {
      throw new Error(`${String(error)}: a=${await count(a)} b=${await count(b)}`);
    });
    for (const ch of [a, b]) assert.equal(Number((await ch.query('SELECT count() - uniqExact(uuid) FROM app.events')).trim()), 0, 'no duplicates');
    assert.equal(Number((await a.query('SELECT countIf(team_id != 1) FROM app.events')).trim()), 0);
    assert.equal(Number((await b.query('SELECT countIf(team_id != 2) FROM app.events')).trim()), 0);
    assert.ok((await gauge(metricsPort, 'inserter_rewinds_total')) >= 1, 'the parked rows were re-read');
    await waitFor(
      async () => {
        const [committed, end] = await Promise.all([committedOffsets(bootstrap, `${topic}-group`, topic, 3), endOffsets(bootstrap, topic)]);
        return committed.every((c, p) => c === end[p]);
      },
      'committed offsets at the log end',
      30_000,
    );
    assert.equal(await inserter?.stop(), 0);
  }
});
