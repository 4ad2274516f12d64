// `make demo`: the whole pipeline end to end on the local stack. This file owns only the demo: a real
// Kafka broker and two ClickHouse servers (chlocal; cluster-a, cluster-b) in one temp dir, the eight
// PostHog topics, an inserter config (teams split over the clusters; teams 196-200 unmapped, so
// dead-lettered), `bin/inserter run` as a child process, generated PostHog traffic, rows per table per
// endpoint every 2 s, and a final check: every good message is exactly one row in its team's cluster,
// every unmapped one a dead letter. Everything it starts is stopped on exit, on failure and on Ctrl-C.
//
//   node dev/demo.ts [--messages N (default 200000)] [--timeout SECONDS (300, after producing)] [--keep]
//                    [--format json|protobuf] [--encoding passthrough|typed|auto]
//   --format protobuf: the same rows as posthog.v1 messages in the Confluent wire format, schemas in a
//   local schema registry (test/helpers/schema-registry.ts: the REST calls inserter makes).
//   --keep: after the check, leave everything running and print how to connect; Ctrl-C stops it all.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Admin, ListOffsetTimestamps, Producer } from '@platformatic/kafka';
import { stringify } from 'yaml';
import { tableForTopic } from './posthog/ddl.ts';
import { ALL_TOPICS, mixedCounts, mixedTraffic, type GeneratedMessage } from './posthog/generator.ts';
import { registerSchemas, toWireMessage } from './posthog/protobuf.ts';
import { startClickHouse, type ClickHouseInstance } from '../test/helpers/clickhouse.ts';
import { FakeSchemaRegistry } from '../test/helpers/schema-registry.ts';
import { createTopic, startKafka, REPO_ROOT, type KafkaBroker } from '../test/helpers/kafka.ts';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '200000' },
    keep: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '300' },
    format: { type: 'string', default: 'json' },
    encoding: { type: 'string', default: 'passthrough' },
  },
});
if (args.format !== 'json' && args.format !== 'protobuf') throw new Error('--format must be json or protobuf');
if (!['passthrough', 'typed', 'auto'].includes(args.encoding)) throw new Error('--encoding must be passthrough, typed or auto');
const TOTAL = Number(args.messages);
const TIMEOUT_MS = Number(args.timeout) * 1000;
if (!Number.isInteger(TOTAL) || TOTAL < 100 || !(TIMEOUT_MS > 0)) throw new Error('usage: node dev/demo.ts [--messages N>=100] [--keep] [--timeout SECONDS]');
const TEAMS = 200;
const CLUSTERS = ['cluster-a', 'cluster-b'] as const;
type Cluster = (typeof CLUSTERS)[number];
/** Team 1 (the busiest, ~25% of traffic) and every third team go to cluster-a, the rest to cluster-b; 196-200 are unmapped. */
const clusterOf = (team: number): Cluster | undefined => (team > 195 ? undefined : team === 1 || team % 3 === 0 ? 'cluster-a' : 'cluster-b');
const tableOf = (topic: string): string => tableForTopic[topic] ?? `unknown-topic-${topic}`;
const TABLES = ALL_TOPICS.map(tableOf);
const traffic = (): Generator<GeneratedMessage> => mixedTraffic({ seed: 42, teams: TEAMS, bigRecordingFraction: 0.001, perTopicCounts: mixedCounts(TOTAL) });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fmt = (n: number): string => n.toLocaleString('en-US');
const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(JSON.stringify(e)));
const say = (line: string): void => void process.stdout.write(`${line}\n`);

const root = await mkdtemp(join(tmpdir(), 'inserter-demo-'));
const logFile = join(root, 'inserter.log');
let kafka: KafkaBroker | undefined;
const ch: Partial<Record<Cluster, ClickHouseInstance>> = {};
let inserter: ChildProcess | undefined;
let registry: FakeSchemaRegistry | undefined;
/** With --format protobuf: each topic's schema id in the registry (messages are framed with it). */
let schemaIds: Record<string, number> | undefined;
let registryUrl: string | undefined;
let inserterExit: Promise<number | null> = Promise.resolve(null);
process.on('exit', () => void inserter?.kill('SIGKILL')); // safety net; servers have their own in the helpers

let finalOk = false; // --keep: the check passed, Ctrl-C is a normal end
let cleaning: Promise<void> | undefined;
function cleanup(ok: boolean): Promise<void> {
  cleaning ??= (async () => {
    if (inserter !== undefined && inserter.exitCode === null && inserter.signalCode === null) {
      say('stopping inserter (SIGTERM, graceful)…');
      inserter.kill('SIGTERM');
      const code = await Promise.race([inserterExit, sleep(30_000).then(() => 'timeout' as const)]);
      if (code === 'timeout') inserter.kill('SIGKILL');
      say(`inserter exited: ${String(code)}`);
    }
    await Promise.allSettled([kafka?.stop(), ch['cluster-a']?.stop(), ch['cluster-b']?.stop(), registry?.stop()]);
    if (ok) await rm(root, { recursive: true, force: true });
    else say(`kept ${root} (inserter log: ${logFile})`);
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`\n${signal}: stopping everything…`);
    void cleanup(args.keep && finalOk).finally(() => process.exit(args.keep && finalOk ? 0 : 130));
  });
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  return port;
}

const query = (cluster: Cluster, sql: string): Promise<string> => ch[cluster]?.query(sql) ?? Promise.reject(new Error(`${cluster} is not running`));

/** Rows per table on one endpoint: active parts' rows (== count() while merges are stopped), or count() when exact. */
async function rowsIn(cluster: Cluster, exact = false): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const sql = "SELECT table, sum(rows) FROM system.parts WHERE database = 'posthog' AND active GROUP BY table";
  for (const line of (await query(cluster, sql)).trim().split('\n')) {
    const [table, rows] = line.split('\t');
    if (table !== undefined && table !== '' && rows !== undefined) out.set(table, Number(rows));
  }
  if (exact) for (const table of out.keys()) out.set(table, Number((await query(cluster, `SELECT count() FROM posthog.${table}`)).trim()));
  return out;
}

/** Good messages produced (acked) per cluster and table, and messages of unmapped teams. */
const produced = { good: new Map<string, number>(), total: 0, unmapped: 0 };
const goodKey = (cluster: Cluster, table: string): string => `${cluster}/${table}`;
function countProduced(batch: GeneratedMessage[]): void {
  for (const m of batch) {
    const cluster = clusterOf(m.teamId);
    produced.total++;
    if (cluster === undefined) produced.unmapped++;
    else produced.good.set(goodKey(cluster, tableOf(m.topic)), (produced.good.get(goodKey(cluster, tableOf(m.topic))) ?? 0) + 1);
  }
}

/** Produces batches of <= 500 messages and <= 900 KB (a ~1 MB recording goes alone), 4 sends in flight. */
async function produce(bootstrap: string, messages: Iterable<GeneratedMessage>): Promise<void> {
  const producer = new Producer({ clientId: 'inserter-demo', bootstrapBrokers: [bootstrap], acks: -1, compression: 'lz4', retries: 10, retryDelay: 250 });
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  const send = async (batch: GeneratedMessage[]): Promise<void> => {
    while (inflight.size >= 4) await Promise.race(inflight);
    if (failure !== undefined) throw asError(failure);
    const ids = schemaIds;
    const out = batch.map((m) => ({ topic: m.topic, value: ids === undefined ? m.value : toWireMessage(m, ids).value, ...(m.key === null ? {} : { key: m.key }) }));
    const p: Promise<void> = producer
      .send({ messages: out })
      .then(
        () => countProduced(batch),
        (error: unknown) => void (failure ??= error),
      )
      .finally(() => inflight.delete(p));
    inflight.add(p);
  };
  try {
    let batch: GeneratedMessage[] = [];
    let bytes = 0;
    for (const m of messages) {
      if (batch.length > 0 && (batch.length >= 500 || bytes + m.value.length > 900 * 1024)) {
        await send(batch);
        [batch, bytes] = [[], 0];
      }
      batch.push(m);
      bytes += m.value.length;
    }
    if (batch.length > 0) await send(batch);
    await Promise.all(inflight);
    if (failure !== undefined) throw asError(failure);
  } finally {
    await producer.close();
  }
}

type Snapshot = Record<Cluster, Map<string, number>>;
const snapshot = async (exact = false): Promise<Snapshot> => ({ 'cluster-a': await rowsIn('cluster-a', exact), 'cluster-b': await rowsIn('cluster-b', exact) });
const rowsTotal = (s: Snapshot): number => CLUSTERS.reduce((sum, c) => sum + [...s[c].values()].reduce((x, y) => x + y, 0), 0);
const matches = (s: Snapshot): boolean => CLUSTERS.every((c) => TABLES.every((t) => (s[c].get(t) ?? 0) === (produced.good.get(goodKey(c, t)) ?? 0)));

function printTable(s: Snapshot, check: boolean): void {
  const pad = (cells: string[]): string =>
    `  ${(cells[0] ?? '').padEnd(26)}${cells
      .slice(1)
      .map((c) => c.padStart(12))
      .join('')}`;
  say(pad(['table', 'cluster-a', 'cluster-b', 'produced', ...(check ? ['check'] : [])]));
  for (const t of TABLES) {
    const [a, b] = [s['cluster-a'].get(t) ?? 0, s['cluster-b'].get(t) ?? 0];
    const [wantA, wantB] = CLUSTERS.map((c) => produced.good.get(goodKey(c, t)) ?? 0) as [number, number];
    say(pad([t, fmt(a), fmt(b), fmt(wantA + wantB), ...(check ? [a === wantA && b === wantB ? 'OK' : `want ${fmt(wantA)}+${fmt(wantB)}`] : [])]));
  }
}

/** Records in the dead-letter topics (the inserter creates them on the first dead letter). */
async function deadLetters(bootstrap: string): Promise<number> {
  const admin = new Admin({ clientId: 'inserter-demo-admin', bootstrapBrokers: [bootstrap] });
  try {
    const dlqs = (await admin.listTopics()).filter((t) => t.endsWith('.dlq'));
    if (dlqs.length === 0) return 0;
    const meta = await admin.metadata({ topics: dlqs, forceUpdate: true });
    const partitions = (name: string): Array<{ partitionIndex: number; timestamp: bigint }> =>
      [...Array(meta.topics.get(name)?.partitionsCount ?? 0).keys()].map((partitionIndex) => ({ partitionIndex, timestamp: ListOffsetTimestamps.LATEST }));
    const offsets = await admin.listOffsets({ topics: dlqs.map((name) => ({ name, partitions: partitions(name) })) });
    return offsets.reduce((sum, t) => sum + t.partitions.reduce((x, p) => x + Number(p.offset), 0), 0);
  } finally {
    await admin.close();
  }
}

const logTail = async (lines: number): Promise<string> => (await readFile(logFile, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-lines).join('\n');

async function main(): Promise<boolean> {
  const t0 = performance.now();
  say(`demo: ${fmt(TOTAL)} messages, ${TEAMS} teams; state in ${root}`);
  // optimize_on_insert=0: ReplacingMergeTree/AggregatingMergeTree must not collapse rows inside one insert.
  const users = [{ name: 'default', password: '', settings: { optimize_on_insert: '0' } }];
  for (const d of ['kafka', ...CLUSTERS]) await mkdir(join(root, d));
  const started = await Promise.allSettled([
    startKafka({ dir: join(root, 'kafka') }).then((k) => void (kafka = k)),
    ...CLUSTERS.map((c) => startClickHouse({ dir: join(root, c), users }).then((i) => void (ch[c] = i))),
  ]);
  for (const r of started) if (r.status === 'rejected') throw r.reason;
  if (kafka === undefined) throw new Error('no broker');
  const bootstrap = kafka.bootstrap;
  say(`kafka ${bootstrap} · cluster-a ${ch['cluster-a']?.url} · cluster-b ${ch['cluster-b']?.url} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  for (const c of CLUSTERS) await query(c, 'CREATE DATABASE posthog');
  if (args.format === 'protobuf') {
    registry = new FakeSchemaRegistry();
    registryUrl = await registry.start();
    schemaIds = await registerSchemas({ url: registryUrl }, ALL_TOPICS);
    say(`schema registry ${registryUrl}: ${ALL_TOPICS.length} posthog.v1 schemas registered`);
  }
  await Promise.all(ALL_TOPICS.map((t) => createTopic(bootstrap, t, 6)));
  const map: Record<string, Cluster> = {};
  for (let team = 1; team <= TEAMS; team++) {
    const cluster = clusterOf(team);
    if (cluster !== undefined) map[String(team)] = cluster;
  }
  const metricsPort = await freePort();
  const configFile = join(root, 'inserter.yaml');
  await writeFile(
    configFile,
    stringify({
      kafka: { brokers: [bootstrap], groupId: 'inserter-demo' },
      ...(registryUrl === undefined ? {} : { schemaRegistry: { url: registryUrl } }),
      destinations: CLUSTERS.map((id) => ({ id, url: ch[id]?.url, database: 'posthog' })),
      teams: { map, unknown: { action: 'deadLetter' } },
      routes: ALL_TOPICS.map((topic) => ({
        topic,
        table: tableOf(topic),
        createTable: { ddlFile: join(REPO_ROOT, 'dev', 'posthog', 'ddl', `${tableOf(topic)}.sql`) },
        deadLetterTopic: `${topic}.dlq`,
        format: args.format,
        encoding: args.encoding,
      })),
      telemetry: { logLevel: 'info', metricsListen: `127.0.0.1:${metricsPort}` },
    }),
  );
  const log = createWriteStream(logFile);
  await once(log, 'open');
  // Own process group: a terminal's Ctrl-C reaches only the demo, which then sends exactly one SIGTERM.
  const child = spawn(join(REPO_ROOT, 'bin', 'inserter'), ['run', '--config', configFile], { stdio: ['ignore', log, log], detached: true });
  inserter = child;
  inserterExit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  say(`inserter pid ${child.pid}, config ${configFile}, log ${logFile}`);
  // Warm-up: one message per (table, cluster) makes the inserter create every table with a single part,
  // then merges are stopped (SYSTEM STOP MERGES only covers tables that exist) so counts stay exact.
  const warm = new Map<string, GeneratedMessage>(); // (cluster, table) -> its first message
  const warmIndexes = new Set<number>(); // their positions in traffic()
  let index = 0;
  for (const m of traffic()) {
    const cluster = clusterOf(m.teamId);
    const key = cluster === undefined ? undefined : goodKey(cluster, tableOf(m.topic));
    if (key !== undefined && !warm.has(key)) {
      warm.set(key, m);
      warmIndexes.add(index);
    }
    index++;
    if (warm.size === TABLES.length * CLUSTERS.length) break;
  }
  await produce(bootstrap, warm.values());
  const warmDeadline = Date.now() + 60_000;
  while (!matches(await snapshot())) {
    if (Date.now() > warmDeadline || child.exitCode !== null) throw new Error(`warm-up rows did not land in 60 s\n${await logTail(30)}`);
    await sleep(250);
  }
  for (const c of CLUSTERS) await query(c, 'SYSTEM STOP MERGES');
  say(`warm-up: ${warm.size} messages made the inserter create ${warm.size} tables; merges stopped (${((performance.now() - t0) / 1000).toFixed(1)} s since start). Producing…\n`);

  const tProduce = performance.now();
  let produceError: unknown;
  let produceDone = false;
  const producing = produce(
    bootstrap,
    (function* () {
      let i = 0;
      for (const m of traffic()) if (!warmIndexes.has(i++)) yield m;
    })(),
  ).then(
    () => void (produceDone = true),
    (error: unknown) => void (produceError = error),
  );
  let deadline = Infinity;
  let last = { at: tProduce, rows: 0 };
  for (;;) {
    await sleep(2000);
    if (cleaning !== undefined) return false; // a signal is stopping everything
    const s = await snapshot();
    const now = performance.now();
    const rows = rowsTotal(s);
    const secs = (now - tProduce) / 1000;
    say(
      `[${secs.toFixed(1)} s] produced ${fmt(produced.total)}/${fmt(TOTAL)} · ${fmt(rows)} rows in ClickHouse · ${fmt(Math.round(rows / secs))} rows/s overall (${fmt(Math.round(((rows - last.rows) * 1000) / (now - last.at)))} rows/s last interval)`,
    );
    printTable(s, false);
    last = { at: now, rows };
    if (produceError !== undefined) throw asError(produceError);
    if (child.exitCode !== null) throw new Error(`inserter exited with ${child.exitCode}\n${await logTail(30)}`);
    if (produceDone && deadline === Infinity) deadline = now + TIMEOUT_MS;
    if (produceDone && matches(s) && (await deadLetters(bootstrap)) === produced.unmapped) break;
    if (now > deadline) break;
  }
  await producing;
  const elapsed = (performance.now() - tProduce) / 1000;
  const exact = await snapshot(true);
  const dead = await deadLetters(bootstrap);
  const ok = matches(exact) && dead === produced.unmapped;
  say(`\n== final (${elapsed.toFixed(1)} s after producing started; ${fmt(Math.round(rowsTotal(exact) / elapsed))} rows/s overall)`);
  printTable(exact, true);
  say(`  dead letters (teams 196-200 unmapped): ${fmt(dead)} in *.dlq, ${fmt(produced.unmapped)} expected`);
  // How the rows went in (the route's encoding, per live schema): from each server's query log.
  const formats = new Map<string, Set<string>>();
  for (const c of CLUSTERS) {
    // Flush until the log table exists: a flush whose write failed is only retried by the next one.
    for (let tries = 0; tries < 120; tries++) {
      await query(c, 'SYSTEM FLUSH LOGS');
      if ((await query(c, 'EXISTS TABLE system.query_log')).trim() === '1') break;
      await sleep(250);
    }
    const tsv = await query(
      c,
      "SELECT arrayJoin(tables) AS t, extract(query, 'FORMAT (\\\\w+)') AS f FROM system.query_log WHERE type = 'QueryFinish' AND query_kind = 'Insert' GROUP BY t, f FORMAT TSV",
    );
    for (const line of tsv.split('\n')) {
      const [table, format] = line.split('\t');
      if (table?.startsWith('posthog.') === true && format !== undefined) formats.set(table.slice(8), (formats.get(table.slice(8)) ?? new Set()).add(format));
    }
  }
  say(`  inserts (--format ${args.format} --encoding ${args.encoding}): ${TABLES.map((t) => `${t} ${[...(formats.get(t) ?? [])].join('+') || '-'}`).join(', ')}`);
  say(
    ok
      ? `CHECK OK: for every table, rows in cluster-a + cluster-b == produced good messages (${fmt(rowsTotal(exact))} rows), each in its team's cluster`
      : `CHECK FAILED (timeout ${TIMEOUT_MS / 1000} s after producing ended)\n--- inserter log tail ---\n${await logTail(40)}`,
  );
  if (ok && args.keep) {
    say(`\n--keep: everything stays up until Ctrl-C.
  kafka bootstrap   ${bootstrap}   (topics: ${ALL_TOPICS.join(', ')}; dead letters: <topic>.dlq)
  cluster-a         ${ch['cluster-a']?.url}   e.g. curl '${ch['cluster-a']?.url}/?query=SELECT+count()+FROM+posthog.events'
  cluster-b         ${ch['cluster-b']?.url}   (ClickHouse's own server; native TCP ports ${ch['cluster-a']?.tcpPort} and ${ch['cluster-b']?.tcpPort})
  inserter metrics  http://127.0.0.1:${metricsPort}/metrics   log ${logFile}   config ${configFile}
  produce more      node_modules/.bin/node dev/posthog/produce.ts --bootstrap ${bootstrap} --all --count 10000 --teams ${TEAMS}`);
    finalOk = true;
    setInterval(() => undefined, 1 << 30); // keeps the process alive even if the inserter exits
    await new Promise(() => undefined); // until a signal handler exits
  }
  return ok;
}

let ok = false;
try {
  ok = await main();
} catch (error) {
  if (cleaning === undefined) say(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
}
await cleanup(ok);
process.exit(ok ? 0 : 1);
