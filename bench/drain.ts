// Drain benchmark: inserter vs ClickHouse's own Kafka engine, on the local stack (docs/benchmarks.md).
//
//   node_modules/.bin/node bench/drain.ts [--events N] [--partitions P] [--runs R] [--json out.json]
//        [--latency-seconds S] [--latency-rate R] [--no-engine] [--no-latency] [--profile DIR]
//
// 1. Starts a Kafka broker (scripts/kafka.sh via test/helpers/kafka.ts) and preloads N PostHog
//    events into `clickhouse_events_json` (P partitions) with dev/posthog/produce.ts.
// 2. Per run and system, on a fresh chlocal server (scripts/chlocal.sh: ClickHouse's own HTTP server
//    hosted from libchdb, one process) with the PostHog `events`
//    table, drains the topic from the beginning with a fresh consumer group:
//    - inserter: `bin/inserter run --config` as a child process (bin/inserter execs node: same pid);
//    - engine: a Kafka engine table over the same topic, driven by repeated
//      `INSERT INTO events SELECT … FROM kafka_events` (libchdb's background broker pool is 0, even
//      hosting a server, so the engine's own consumers never run).
//    Measures rows/s, CPU seconds per million events (inserter process; the ClickHouse server
//    process; Kafka broker), peak RSS of each.
// 3. Latency: a fresh topic, the consumer running, a producer throttled to half the capacity the
//    system just showed for --latency-seconds; p50/p99 of `inserted_at - _timestamp_ms` per row.
// 4. Prints a table (medians over runs, spread) and writes --json with machine info.
// --profile DIR: one more inserter drain under `--cpu-prof`; the profile and its top self-time
// functions go to DIR.
// --rev REV: run the inserter of a git revision (exported to a temp dir) instead of the work tree.
// --topic-compression C: how the preload compresses the topic (none|gzip|snappy|lz4|zstd; lz4).
// --compression C, --max-buffered-mib M, --fetch-max-bytes B: the inserter's destination request
// compression, maxBufferedBytes and kafka.fetchMaxBytes (default: the inserter's defaults);
// --inserter-env K=V (repeatable): environment for the inserter process.
// --batch K=V[,K=V]: the inserter's `batch` settings (maxRows, maxBytes, maxAgeMs; default: its defaults).
// --variant-env K=V, --variant-compression C, --variant-batch K=V[,K=V], --variant-rev REV,
// --variant-no-ledger (exactlyOnce.enabled: false — what the ledger's writes cost): one more
// system, `variant`: the pass-through inserter with these overrides on top of the above (or of
// revision REV), drained in the same runs (order alternated), for an A/B comparison on a shared,
// noisy machine.
// --typed: a third system, `typed`: the same inserter with `encoding: typed` (RowBinaryWithDefaults from
// the live schema), drained in the same runs as the pass-through inserter and the engine.
// --format F: json (default) or protobuf: the preload produces the same generated events as
// `posthog.v1.Event` messages in the Confluent wire format (dev/posthog/produce.ts --format protobuf),
// registered in a local schema registry (test/helpers/schema-registry.ts, started here), and the
// inserter systems read them with `format: protobuf` (pass-through: Protobuf → JSON → JSONEachRow;
// typed: Protobuf → RowBinaryWithDefaults). The engine cannot read that topic without a schema file,
// so it drains a second, JSON preload of the same events (`clickhouse_events_json_engine`).
// --profile-system S: which inserter system --profile drains (inserter|typed; inserter).
// Everything started is stopped at the end, on failure and on Ctrl-C.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Producer, murmur2 } from '@platformatic/kafka';
import { loadDdl } from '../dev/posthog/ddl.ts';
import { generate } from '../dev/posthog/generator.ts';
import { registerSchemas, toWireMessages } from '../dev/posthog/protobuf.ts';
import { startClickHouse, type ClickHouseInstance } from '../test/helpers/clickhouse.ts';
import { stringify } from 'yaml';
import { createTopic, REPO_ROOT, startKafka, type KafkaBroker } from '../test/helpers/kafka.ts';
import { FakeSchemaRegistry } from '../test/helpers/schema-registry.ts';
import { summarizeProfile, type ProfileSummary } from './lib/cpuprofile.ts';
import { isJitCompilerThread, machineCpuTimes, machineInfo, ProcSampler, type GroupUsage } from './lib/proc.ts';
import { fmt, fmtInt, mib, summarize, table, type Summary } from './lib/stats.ts';

// ---------------------------------------------------------------------------------------------
// options

/** The inserter's memory as its /metrics says (prom-client defaults + inserter_buffered_bytes), in bytes. */
interface MemorySample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  buffered: number;
}

function describeMemory(m: MemorySample): string {
  return `RSS ${mib(m.rss)}, V8 heap used ${mib(m.heapUsed)} of ${mib(m.heapTotal)}, external (Buffers, wasm) ${mib(m.external)}, rows held (inserter_buffered_bytes) ${mib(m.buffered)}`;
}

/** Polls the inserter's /metrics every 500 ms and keeps the sample with the highest RSS. */
class MemoryWatch {
  readonly #metrics: () => Promise<string>;
  #peak: MemorySample | undefined;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> = Promise.resolve();

  constructor(metrics: () => Promise<string>) {
    this.#metrics = metrics;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#polling = this.#poll();
    }, 500);
  }

  async stop(): Promise<MemorySample | undefined> {
    clearInterval(this.#timer);
    await this.#polling;
    return this.#peak;
  }

  async #poll(): Promise<void> {
    const text = await this.#metrics();
    const value = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'm').exec(text)?.[1] ?? Number.NaN);
    const sample: MemorySample = {
      rss: value('process_resident_memory_bytes'),
      heapUsed: value('nodejs_heap_size_used_bytes'),
      heapTotal: value('nodejs_heap_size_total_bytes'),
      external: value('nodejs_external_memory_bytes'),
      buffered: value('inserter_buffered_bytes'),
    };
    if (Number.isFinite(sample.rss) && (this.#peak === undefined || sample.rss > this.#peak.rss)) this.#peak = sample;
  }
}

const { values: argv } = parseArgs({
  options: {
    events: { type: 'string' },
    partitions: { type: 'string', default: '6' },
    runs: { type: 'string', default: '3' },
    json: { type: 'string' },
    'latency-seconds': { type: 'string', default: '30' },
    'latency-rate': { type: 'string' },
    'no-engine': { type: 'boolean', default: false },
    'no-latency': { type: 'boolean', default: false },
    profile: { type: 'string' },
    rev: { type: 'string' },
    'topic-compression': { type: 'string', default: 'lz4' },
    compression: { type: 'string' },
    'max-buffered-mib': { type: 'string' },
    'fetch-max-bytes': { type: 'string' },
    'inserter-env': { type: 'string', multiple: true },
    batch: { type: 'string' },
    'variant-env': { type: 'string', multiple: true },
    'variant-compression': { type: 'string' },
    'variant-batch': { type: 'string' },
    'variant-no-ledger': { type: 'boolean', default: false },
    'variant-rev': { type: 'string' },
    typed: { type: 'boolean', default: false },
    format: { type: 'string', default: 'json' },
    'profile-system': { type: 'string', default: 'inserter' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (argv.help) {
  process.stderr.write(
    readFileSync(import.meta.filename, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('//'))
      .slice(0, 38)
      .map((l) => l.slice(3))
      .join('\n') + '\n',
  );
  process.exit(0);
}

const DEFAULT_EVENTS = 2_000_000;
const EVENT_BYTES = 1_500; // generated events average ~1.47 KB
const positiveInt = (value: string | undefined, name: string, fallback: number): number => {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
};
const PARTITIONS = positiveInt(argv.partitions, 'partitions', 6);
const RUNS = argv.runs === '0' ? 0 : positiveInt(argv.runs, 'runs', 3); // 0: only --profile
const LATENCY_SECONDS = positiveInt(argv['latency-seconds'], 'latency-seconds', 30);
const LATENCY_RATE = argv['latency-rate'] === undefined ? undefined : positiveInt(argv['latency-rate'], 'latency-rate', 1);
const notes: string[] = [];

function chooseEvents(): number {
  if (argv.events !== undefined) return positiveInt(argv.events, 'events', DEFAULT_EVENTS);
  // The topic (lz4, ~2x) plus one table at a time; keep 2x headroom on the temp disk.
  const stat = statfsSync(tmpdir());
  const free = stat.bavail * stat.bsize;
  const need = DEFAULT_EVENTS * EVENT_BYTES * 2;
  if (free >= need) return DEFAULT_EVENTS;
  const fallback = Math.max(100_000, Math.floor(free / (EVENT_BYTES * 2) / 100_000) * 100_000);
  notes.push(`only ${mib(free)} free in ${tmpdir()}: --events defaulted to ${fallback} instead of ${DEFAULT_EVENTS}`);
  return fallback;
}
const EVENTS = chooseEvents();

/** Where bin/inserter comes from: the work tree, or `git archive REV` in a temp dir (--rev). */
function inserterRoot(rev: string | undefined): { root: string; rev: string } {
  const git = (...args: string[]): string => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  if (rev === undefined) {
    const dirty = git('status', '--porcelain', '--', 'src', 'bin').length > 0;
    return { root: REPO_ROOT, rev: `${git('rev-parse', 'HEAD')}${dirty ? ' + uncommitted changes in src/ or bin/' : ''} (work tree)` };
  }
  const sha = git('rev-parse', rev);
  const dir = mkdtempSync(join(tmpdir(), 'inserter-bench-rev-'));
  execFileSync('bash', ['-c', `git archive ${sha} bin src package.json | tar -x -C '${dir}'`], { cwd: REPO_ROOT });
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return { root: dir, rev: sha };
}
const INSERTER = inserterRoot(argv.rev);
/** --variant-rev REV: the variant system runs the inserter of REV (else the same as the others). */
const VARIANT_INSERTER = argv['variant-rev'] === undefined ? INSERTER : inserterRoot(argv['variant-rev']);
/** --inserter-env K=V (repeatable): more environment for the inserter process (e.g. glibc's MALLOC_ARENA_MAX). */
const INSERTER_ENV: Record<string, string> = Object.fromEntries((argv['inserter-env'] ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
/** --batch maxBytes=67108864,maxAgeMs=5000: the inserter's `batch` settings (numbers). */
function batchOption(option: string | undefined): Record<string, number> | undefined {
  return option === undefined
    ? undefined
    : Object.fromEntries(
        option.split(',').map((kv) => {
          const [k = '', v = ''] = kv.split('=');
          if (!['maxRows', 'maxBytes', 'maxAgeMs'].includes(k) || !Number.isInteger(Number(v))) throw new Error(`--batch: expected maxRows|maxBytes|maxAgeMs=N, got ${kv}`);
          return [k, Number(v)];
        }),
      );
}
const BATCH = batchOption(argv.batch);
const VARIANT_BATCH = { ...BATCH, ...batchOption(argv['variant-batch']) };
const VARIANT = argv['variant-rev'] !== undefined || argv['variant-env'] !== undefined || argv['variant-compression'] !== undefined || argv['variant-batch'] !== undefined || argv['variant-no-ledger'];
const VARIANT_ENV: Record<string, string> = Object.fromEntries((argv['variant-env'] ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const TOPIC = 'clickhouse_events_json';
if (argv.format !== 'json' && argv.format !== 'protobuf') throw new Error(`--format must be json or protobuf, got ${argv.format}`);
const PROTOBUF = argv.format === 'protobuf';
/** The engine's topic: with --format protobuf, a JSON copy of the same events. */
const ENGINE_TOPIC = PROTOBUF ? `${TOPIC}_engine` : TOPIC;
if (argv['profile-system'] !== 'inserter' && argv['profile-system'] !== 'typed') throw new Error(`--profile-system must be inserter or typed, got ${argv['profile-system']}`);
const PROFILE_SYSTEM: 'inserter' | 'typed' = argv['profile-system'];

// ---------------------------------------------------------------------------------------------
// output

const isTty = process.stderr.isTTY;
let progressShown = false;
let lastProgressLine = 0;
function progress(text: string): void {
  if (isTty) {
    process.stderr.write(`\r\x1b[2K${text}`);
    progressShown = true;
  } else if (Date.now() - lastProgressLine >= 5_000) {
    process.stderr.write(`${text}\n`);
    lastProgressLine = Date.now();
  }
}
function say(text: string): void {
  if (progressShown) process.stderr.write('\r\x1b[2K');
  progressShown = false;
  process.stderr.write(`${text}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const errorText = (e: unknown): string => (e instanceof Error ? e.message : typeof e === 'string' ? e : JSON.stringify(e));

// ---------------------------------------------------------------------------------------------
// the stack

let kafka: KafkaBroker | undefined;
/** With --format protobuf: the local schema registry (in this process) and its URL. */
let registry: { server: FakeSchemaRegistry; url: string } | undefined;
const clickhouses = new Set<ClickHouseInstance>();
const inserters = new Set<InserterProcess>();

interface InserterProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
  log(): Promise<string>;
  stop(): Promise<number | null>;
  kill(): Promise<void>;
}

/** `bin/inserter run --config FILE` as a child process; bin/inserter execs node, so child.pid is node's. */
async function startInserter(config: unknown, env: NodeJS.ProcessEnv, root: string = INSERTER.root): Promise<InserterProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'inserter-bench-run-'));
  const configFile = join(dir, 'inserter.yaml');
  writeFileSync(configFile, stringify(config));
  const logFile = join(dir, 'inserter.log');
  const log = createWriteStream(logFile);
  await once(log, 'open');
  const child = spawn(join(root, 'bin', 'inserter'), ['run', '--config', configFile], { stdio: ['ignore', log, log], env: { ...process.env, ...INSERTER_ENV, ...env } });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  process.once('exit', () => void (alive() && child.kill('SIGKILL')));
  return {
    child,
    exited,
    log: () => readFile(logFile, 'utf8'),
    async stop() {
      if (alive()) child.kill('SIGTERM');
      const code = await exited;
      if (process.env.KEEP_BENCH_DIRS === undefined) rmSync(dir, { recursive: true, force: true });
      return code;
    },
    async kill() {
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
  };
}

async function cleanup(): Promise<void> {
  await Promise.allSettled([...inserters].map((p) => p.kill()));
  await Promise.allSettled([...clickhouses].map((c) => c.stop()));
  await kafka?.stop().catch(() => undefined);
  await registry?.server.stop().catch(() => undefined);
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`${signal}: stopping everything…`);
    void cleanup().finally(() => process.exit(130));
  });
}

function pidIn(dir: string, file: string): number {
  return Number(readFileSync(join(dir, file), 'utf8').trim());
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  return port;
}

/** A fresh chlocal endpoint with database `posthog` and the PostHog `events` table. */
async function freshClickHouse(extraColumns = ''): Promise<ClickHouseInstance> {
  const ch = await startClickHouse();
  clickhouses.add(ch);
  await ch.query('CREATE DATABASE posthog');
  await ch.query(await loadDdl('events', 'posthog'));
  if (extraColumns !== '') await ch.query(`ALTER TABLE posthog.events ${extraColumns}`);
  return ch;
}

async function stopClickHouse(ch: ClickHouseInstance): Promise<void> {
  clickhouses.delete(ch);
  await ch.stop();
}

const count = async (ch: ClickHouseInstance): Promise<number> => Number((await ch.query('SELECT count() FROM posthog.events')).trim());

// ---------------------------------------------------------------------------------------------
// preload

interface PreloadResult {
  messages: number;
  bytes: number;
  seconds: number;
  messagesPerSecond: number;
}

async function preload(bootstrap: string): Promise<PreloadResult> {
  await createTopic(bootstrap, TOPIC, PARTITIONS, { 'retention.ms': '-1' });
  const child = spawn(
    join(REPO_ROOT, 'node_modules', '.bin', 'node'),
    [
      'dev/posthog/produce.ts',
      '--bootstrap',
      bootstrap,
      '--topic',
      TOPIC,
      '--count',
      String(EVENTS),
      '--partitions',
      String(PARTITIONS),
      '--teams',
      '1000',
      '--inflight',
      '8',
      '--compression',
      argv['topic-compression'],
      ...(registry === undefined ? [] : ['--format', 'protobuf', '--registry', registry.url]),
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderrTail = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString()).slice(-4000);
    const last = stderrTail.trimEnd().split('\n').at(-1) ?? '';
    if (last.startsWith('produce:')) progress(`preload: ${last.slice('produce: '.length)}`);
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { ok?: boolean; messages?: number; bytes?: number; seconds?: number; messagesPerSecond?: number; error?: string };
  if (code !== 0 || summary.ok !== true || summary.messages !== EVENTS) {
    throw new Error(`preload failed (exit ${code}): ${summary.error ?? stderrTail.slice(-1000)}`);
  }
  return { messages: summary.messages, bytes: summary.bytes ?? 0, seconds: summary.seconds ?? 0, messagesPerSecond: summary.messagesPerSecond ?? 0 };
}

/**
 * The engine's JSON copy of the preload (--format protobuf): the same generated events as
 * dev/posthog/produce.ts makes with its defaults (seed 1, 1,000 teams), keyed partitions by murmur2
 * as it assigns them, batches of ≤ 500 messages and ≤ 900 KB, 8 in flight; produced from here
 * because produce.ts writes each message to its generator topic's name.
 */
async function preloadJsonCopy(bootstrap: string, topic: string): Promise<PreloadResult> {
  await createTopic(bootstrap, topic, PARTITIONS, { 'retention.ms': '-1' });
  const producer = new Producer({ clientId: 'bench-preload', bootstrapBrokers: [bootstrap], acks: -1, compression: argv['topic-compression'] as 'lz4', retries: 10, retryDelay: 250 });
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  let sent = 0;
  let bytes = 0;
  let roundRobin = 0;
  const start = performance.now();
  const send = async (messages: { topic: string; key?: Buffer; value: Buffer; partition: number }[], size: number): Promise<void> => {
    while (inflight.size >= 8) await Promise.race(inflight);
    const p: Promise<void> = producer
      .send({ messages })
      .then(
        () => {
          sent += messages.length;
          bytes += size;
          progress(`preload (JSON copy for the engine): ${fmtInt(sent)}/${fmtInt(EVENTS)}`);
        },
        (error: unknown) => void (failure ??= error),
      )
      .finally(() => inflight.delete(p));
    inflight.add(p);
  };
  try {
    let batch: { topic: string; key?: Buffer; value: Buffer; partition: number }[] = [];
    let size = 0;
    for (const m of generate(TOPIC, { seed: 1, count: EVENTS, teams: 1000 })) {
      if (failure !== undefined) break;
      if (batch.length > 0 && size + m.value.length > 900 * 1024) {
        await send(batch, size);
        batch = [];
        size = 0;
      }
      const value = m.value; // a view of a generator slab, never overwritten
      const partition = m.key === null ? roundRobin++ % PARTITIONS : (murmur2(m.key) >>> 0) % PARTITIONS;
      batch.push({ topic, value, partition, ...(m.key === null ? {} : { key: m.key }) });
      size += value.length + (m.key?.length ?? 0);
      if (batch.length >= 500) {
        await send(batch, size);
        batch = [];
        size = 0;
      }
    }
    if (batch.length > 0 && failure === undefined) await send(batch, size);
    await Promise.all(inflight);
  } finally {
    await producer.close();
  }
  if (failure !== undefined || sent !== EVENTS) throw new Error(`JSON copy for the engine: ${failure === undefined ? `${sent} of ${EVENTS} sent` : errorText(failure)}`);
  const seconds = (performance.now() - start) / 1000;
  return { messages: sent, bytes, seconds, messagesPerSecond: sent / seconds };
}

// ---------------------------------------------------------------------------------------------
// consumers under test

/** `inserter`: pass-through JSONEachRow; `typed`: the inserter with `encoding: typed`; `engine`: ClickHouse's Kafka engine. */
type System = 'inserter' | 'typed' | 'variant' | 'engine';

/** A consumer of one topic into posthog.events on one endpoint, running until stop(). */
interface Consumer {
  /** Processes whose CPU and memory are the consumer's own (the inserter; none for the engine). */
  pids: number[];
  /** Resolves with the wall-clock ms when the consumer is subscribed and about to read. */
  ready: Promise<number>;
  /** Errors seen so far (engine: failed INSERT … SELECT; inserter: exit). */
  errors: string[];
  inserts(): number;
  /** The inserter's Prometheus text ('' for the engine). */
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

async function startInserterConsumer(
  ch: ClickHouseInstance,
  topic: string,
  groupId: string,
  env: NodeJS.ProcessEnv = {},
  encoding: 'passthrough' | 'typed' = 'passthrough',
  variant = false,
): Promise<Consumer> {
  const metricsPort = await freePort();
  const compression = variant && argv['variant-compression'] !== undefined ? argv['variant-compression'] : argv.compression;
  const batch = variant ? VARIANT_BATCH : BATCH;
  const proc = await startInserter(
    {
      kafka: { brokers: [kafka?.bootstrap], groupId, clientId: 'bench', ...(argv['fetch-max-bytes'] === undefined ? {} : { fetchMaxBytes: Number(argv['fetch-max-bytes']) }) },
      destinations: [{ id: 'ch', url: ch.url, database: 'posthog', ...(compression === undefined ? {} : { compression }) }],
      ...(argv['max-buffered-mib'] === undefined ? {} : { maxBufferedBytes: Number(argv['max-buffered-mib']) * 1024 * 1024 }),
      ...(batch === undefined || Object.keys(batch).length === 0 ? {} : { batch }),
      ...(variant && argv['variant-no-ledger'] ? { exactlyOnce: { enabled: false } } : {}),
      ...(registry === undefined ? {} : { schemaRegistry: { url: registry.url } }),
      routes: [{ topic, table: 'events', destination: 'ch', createTable: { enabled: false }, encoding, ...(PROTOBUF ? { format: 'protobuf' } : {}) }],
      telemetry: { logLevel: 'info', metricsListen: `127.0.0.1:${metricsPort}` },
    },
    variant ? { ...VARIANT_ENV, ...env } : env,
    variant ? VARIANT_INSERTER.root : INSERTER.root,
  );
  inserters.add(proc);
  const errors: string[] = [];
  void proc.exited.then((code) => {
    if (code !== 0) errors.push(`inserter exited with ${code}`);
  });
  const pid = proc.child.pid;
  if (pid === undefined) throw new Error('inserter did not start');
  const ready = (async (): Promise<number> => {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const log = await proc.log().catch(() => '');
      for (const line of log.split('\n')) {
        if (!line.includes('partitions assigned')) continue;
        const parsed = JSON.parse(line) as { time?: number };
        return parsed.time ?? Date.now();
      }
      if (proc.child.exitCode !== null) throw new Error(`inserter exited during start-up:\n${log.slice(-3000)}`);
      await sleep(50);
    }
    throw new Error(`inserter got no partitions within 60 s:\n${(await proc.log()).slice(-3000)}`);
  })();
  let inserted = 0;
  const metrics = (): Promise<string> =>
    fetch(`http://127.0.0.1:${metricsPort}/metrics`)
      .then((r) => r.text())
      .catch(() => '');
  return {
    pids: [pid],
    ready,
    errors,
    inserts: () => inserted,
    metrics,
    async stop() {
      // The metrics endpoint counts insert requests (for the report).
      const text = await metrics();
      for (const m of text.matchAll(/^inserter_inserts_total\{[^}]*outcome="ok"[^}]*\} (\d+)/gm)) inserted += Number(m[1]);
      const code = await Promise.race([proc.stop(), sleep(30_000).then(() => 'timeout' as const)]);
      if (code === 'timeout') await proc.kill();
      inserters.delete(proc);
    },
  };
}

/**
 * The Kafka engine baseline: a Kafka table over the topic and a loop of INSERT … SELECT from it.
 * `kafka_commit_on_select=1` makes each direct SELECT commit what it read (without it chDB's
 * consumer never commits, and a later SELECT reads nothing). One SELECT reads one poll batch
 * (kafka_poll_max_batch_size, default max_block_size = 65,409 messages).
 */
async function startEngineConsumer(ch: ClickHouseInstance, topic: string, groupId: string, withMs: boolean): Promise<Consumer & { insertSql: string }> {
  const columns = (await ch.query("SELECT name, type FROM system.columns WHERE database = 'posthog' AND table = 'events' AND default_kind = '' ORDER BY position FORMAT TSVRaw"))
    .trim()
    .split('\n')
    .map((line) => line.split('\t') as [string, string])
    .filter(([name]) => !name.startsWith('_'));
  const quote = (name: string): string => `\`${name.replaceAll('`', '\\`')}\``;
  await ch.query(
    `CREATE TABLE posthog.kafka_events (${columns.map(([n, t]) => `${quote(n)} ${t}`).join(', ')}) ENGINE = Kafka SETTINGS ` +
      `kafka_broker_list = '${kafka?.bootstrap}', kafka_topic_list = '${topic}', kafka_group_name = '${groupId}', ` +
      `kafka_format = 'JSONEachRow', kafka_skip_broken_messages = 1000, kafka_commit_on_select = 1, input_format_skip_unknown_fields = 1`,
  );
  const meta = ['_timestamp', '_offset', ...(withMs ? ['_timestamp_ms'] : [])];
  const names = [...columns.map(([n]) => quote(n)), ...meta].join(', ');
  const insertSql = `INSERT INTO posthog.events (${names}) SELECT ${names} FROM posthog.kafka_events SETTINGS stream_like_engine_allow_direct_select = 1`;
  const errors: string[] = [];
  let inserts = 0;
  let stopping = false;
  let resolveReady: (ms: number) => void = () => undefined;
  const ready = new Promise<number>((r) => (resolveReady = r));
  const loop = (async (): Promise<void> => {
    let failuresInARow = 0;
    while (!stopping) {
      resolveReady(Date.now());
      try {
        await ch.query(insertSql);
        inserts++;
        failuresInARow = 0;
      } catch (error) {
        if (stopping) break;
        errors.push(errorText(error));
        if (++failuresInARow >= 5) throw new Error(`Kafka engine: 5 failed INSERT … SELECT in a row; last: ${errorText(error)}`);
        await sleep(500);
      }
    }
  })();
  loop.catch((error: unknown) => errors.push(errorText(error)));
  return {
    pids: [],
    ready,
    errors,
    inserts: () => inserts,
    metrics: async () => '',
    insertSql,
    async stop() {
      stopping = true;
      // A SELECT waiting on an empty topic returns after ~10 empty polls; the endpoint is stopped next anyway.
      await Promise.race([loop.catch(() => undefined), sleep(15_000)]);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// drain

interface DrainResult {
  system: System;
  run: number;
  events: number;
  ok: boolean;
  error?: string;
  /** Wall seconds from subscription (inserter: "partitions assigned"; engine: first INSERT sent) to count() = N. */
  seconds: number;
  rowsPerSecond: number;
  /** (N - rows at the first non-zero count) / (time from then to count() = N): excludes start-up and the first insert. */
  firstInsertToNRowsPerSecond: number;
  inserts: number;
  cpuSeconds: { inserter: number; clickhouse: number; kafka: number };
  cpuSecondsPerMillion: { inserter: number; clickhouse: number; kafka: number; total: number };
  /** Of the broker's CPU, its JIT compiler threads' (warm-up of a fresh JVM, not work per event). */
  kafkaJitCpuSecondsPerMillion: number;
  peakRssBytes: { inserter: number; clickhouse: number };
  hwmBytes: { inserter: number; clickhouse: number };
  /** The inserter's own view of its memory at the sample with the highest RSS (from /metrics). */
  peakMemory?: MemorySample;
  /** Inserter CPU before it was assigned partitions (node start, config, group join): not in the figures above. */
  startupCpuSeconds: number;
  /** Machine-wide CPU busy share during the drain (all cores), and stolen seconds. */
  machineBusyPct: number;
  /** Share of all cores used by processes outside the benchmark (other work on the machine): the noise. */
  foreignBusyPct: number;
  stealSeconds: number;
  /**
   * After count() = N (and the consumer stopped): ClickHouse CPU until its background merges of the
   * drained parts settle (no merge running and the active part count unchanged for 3 s, at most
   * 60 s), per million events; and the active parts of posthog.events then. Every insert is a part
   * to merge; the drain window alone leaves most merges out.
   */
  mergeTail?: { cpuSecondsPerMillion: number; seconds: number; activeParts: number };
  errors: string[];
}

/** ClickHouse CPU from now until its merges of posthog.events settle (DrainResult.mergeTail). */
async function mergeTail(ch: ClickHouseInstance, chPids: number[]): Promise<DrainResult['mergeTail']> {
  const tail = new ProcSampler({ clickhouse: chPids });
  tail.start();
  const t0 = Date.now();
  let last = '';
  let stableSince = Date.now();
  for (;;) {
    const state = (
      await ch.query(
        "SELECT (SELECT count() FROM system.merges WHERE database = 'posthog' AND table = 'events'), (SELECT count() FROM system.parts WHERE database = 'posthog' AND table = 'events' AND active)",
      )
    ).trim();
    const [merging = 0, parts = 0] = state.split('\t').map(Number);
    if (state !== last || merging > 0) {
      last = state;
      stableSince = Date.now();
    }
    if (Date.now() - stableSince >= 3_000 || Date.now() - t0 > 60_000) {
      const cpu = tail.stop().clickhouse?.cpuSeconds ?? 0;
      return { cpuSecondsPerMillion: (cpu / EVENTS) * 1e6, seconds: (Date.now() - t0) / 1000, activeParts: parts };
    }
    await sleep(200);
  }
}

async function drain(system: System, run: number, env: NodeJS.ProcessEnv = {}): Promise<DrainResult> {
  const ch = await freshClickHouse();
  const groupId = `bench-${system}-${run}-${Date.now().toString(36)}`;
  const chPids = [pidIn(ch.dir, 'pid')]; // the one process hosting the ClickHouse server
  const kafkaPid = pidIn(kafka?.dir ?? '', 'kafka.pid');
  let consumer: Consumer | undefined;
  const result: DrainResult = {
    system,
    run,
    events: EVENTS,
    ok: false,
    seconds: Number.NaN,
    rowsPerSecond: Number.NaN,
    firstInsertToNRowsPerSecond: Number.NaN,
    inserts: 0,
    cpuSeconds: { inserter: 0, clickhouse: 0, kafka: 0 },
    cpuSecondsPerMillion: { inserter: 0, clickhouse: 0, kafka: 0, total: 0 },
    kafkaJitCpuSecondsPerMillion: 0,
    peakRssBytes: { inserter: 0, clickhouse: 0 },
    hwmBytes: { inserter: 0, clickhouse: 0 },
    startupCpuSeconds: 0,
    machineBusyPct: Number.NaN,
    foreignBusyPct: Number.NaN,
    stealSeconds: 0,
    errors: [],
  };
  let sampler: ProcSampler | undefined;
  try {
    let startupCpu = 0;
    let tStart: number;
    if (system !== 'engine') {
      consumer = await startInserterConsumer(ch, TOPIC, groupId, env, system === 'typed' ? 'typed' : 'passthrough', system === 'variant');
      const boot = new ProcSampler({ inserter: consumer.pids });
      boot.start();
      tStart = await consumer.ready;
      startupCpu = boot.stop().inserter?.cpuSeconds ?? 0;
    } else {
      // Sample from before the first INSERT … SELECT (which subscribes the engine's consumer).
      consumer = await startEngineConsumer(ch, ENGINE_TOPIC, groupId, false);
      tStart = await consumer.ready;
    }
    sampler = new ProcSampler({ inserter: consumer.pids, clickhouse: chPids, kafka: [kafkaPid] }, 200, { kafka: isJitCompilerThread });
    sampler.start();
    const machineBefore = machineCpuTimes();
    const selfBefore = process.cpuUsage();
    let first: { t: number; rows: number } | undefined;
    let rows = 0;
    let lastChange = Date.now();
    const timeoutMs = 120_000;
    const metricsOf = consumer.metrics.bind(consumer);
    const memory = system !== 'engine' ? new MemoryWatch(metricsOf) : undefined;
    memory?.start();
    while (rows < EVENTS) {
      const now = Date.now();
      const c = await count(ch);
      if (c !== rows) lastChange = Date.now();
      rows = c;
      if (first === undefined && rows > 0) first = { t: Date.now(), rows };
      const elapsed = (Date.now() - tStart) / 1000;
      progress(
        `run ${run} ${system.padEnd(8)} ${fmtInt(rows).padStart(11)}/${fmtInt(EVENTS)} rows  ${fmtInt(rows / Math.max(elapsed, 1e-3)).padStart(8)} rows/s  ${elapsed.toFixed(1)} s  cpu ${system !== 'engine' ? `ins ${fmt(sampler.cpu('inserter'))} s ` : ''}ch ${fmt(sampler.cpu('clickhouse'))} s`,
      );
      if (consumer.errors.length > 0 && system !== 'engine') throw new Error(consumer.errors.join('; '));
      if (Date.now() - lastChange > timeoutMs)
        throw new Error(`no progress for ${timeoutMs / 1000} s at ${rows} rows${consumer.errors.length > 0 ? `; errors: ${consumer.errors.slice(-3).join(' | ')}` : ''}`);
      if (rows < EVENTS) await sleep(Math.max(0, 100 - (Date.now() - now)));
    }
    const tEnd = Date.now();
    const peakMemory = await memory?.stop();
    if (peakMemory !== undefined) result.peakMemory = peakMemory;
    const machineAfter = machineCpuTimes();
    const usage = sampler.stop();
    sampler = undefined;
    const get = (name: string): GroupUsage => usage[name] ?? { cpuSeconds: 0, peakRssBytes: 0, hwmBytes: 0 };
    const [ins, chu, kfk] = [get('inserter'), get('clickhouse'), get('kafka')];
    const perM = (cpu: number): number => (cpu / EVENTS) * 1e6;
    result.seconds = (tEnd - tStart) / 1000;
    result.rowsPerSecond = EVENTS / result.seconds;
    if (first !== undefined && tEnd > first.t) result.firstInsertToNRowsPerSecond = (EVENTS - first.rows) / ((tEnd - first.t) / 1000);
    result.cpuSeconds = { inserter: ins.cpuSeconds, clickhouse: chu.cpuSeconds, kafka: kfk.cpuSeconds };
    result.cpuSecondsPerMillion = { inserter: perM(ins.cpuSeconds), clickhouse: perM(chu.cpuSeconds), kafka: perM(kfk.cpuSeconds), total: perM(ins.cpuSeconds + chu.cpuSeconds) };
    result.kafkaJitCpuSecondsPerMillion = perM(kfk.selectedThreadsCpuSeconds ?? 0);
    result.peakRssBytes = { inserter: ins.peakRssBytes, clickhouse: chu.peakRssBytes };
    result.hwmBytes = { inserter: ins.hwmBytes, clickhouse: chu.hwmBytes };
    result.startupCpuSeconds = startupCpu;
    const busy = machineAfter.busy - machineBefore.busy;
    const idle = machineAfter.idle - machineBefore.idle;
    result.machineBusyPct = (busy / Math.max(busy + idle, 1e-9)) * 100;
    const self = process.cpuUsage(selfBefore);
    const ours = ins.cpuSeconds + chu.cpuSeconds + kfk.cpuSeconds + (self.user + self.system) / 1e6;
    result.foreignBusyPct = (Math.max(0, busy - ours) / Math.max(busy + idle, 1e-9)) * 100;
    result.stealSeconds = machineAfter.steal - machineBefore.steal;
    await consumer.stop();
    result.inserts = consumer.inserts();
    result.mergeTail = await mergeTail(ch, chPids);
    const [total, distinct] = (await ch.query('SELECT count(), uniqExact(uuid) FROM posthog.events')).trim().split('\t').map(Number);
    result.ok = total === EVENTS && distinct === EVENTS;
    if (!result.ok) result.error = `count() = ${total}, uniqExact(uuid) = ${distinct}, expected ${EVENTS}`;
  } catch (error) {
    result.error = errorText(error);
    sampler?.stop();
  } finally {
    result.errors = [...(consumer?.errors ?? [])].slice(0, 10);
    await consumer?.stop().catch(() => undefined);
    await stopClickHouse(ch).catch(() => undefined);
  }
  say(
    `run ${run} ${system.padEnd(8)} ${result.ok ? 'ok' : `FAILED: ${result.error}`}  ${fmtInt(result.rowsPerSecond)} rows/s (${fmt(result.seconds)} s, ${result.inserts} inserts)  ` +
      `CPU-s/M: inserter ${fmt(result.cpuSecondsPerMillion.inserter)} clickhouse ${fmt(result.cpuSecondsPerMillion.clickhouse)} kafka ${fmt(result.cpuSecondsPerMillion.kafka)} (JIT ${fmt(result.kafkaJitCpuSecondsPerMillion)})  ` +
      `peak RSS: inserter ${mib(result.peakRssBytes.inserter)} clickhouse ${mib(result.peakRssBytes.clickhouse)}  machine busy ${fmt(result.machineBusyPct, 0)}% (others ${fmt(result.foreignBusyPct, 0)}%)` +
      (result.peakMemory ? `\n  inserter at its RSS peak: ${describeMemory(result.peakMemory)}` : ''),
  );
  return result;
}

// ---------------------------------------------------------------------------------------------
// latency

interface LatencyResult {
  system: System;
  run: number;
  ok: boolean;
  error?: string;
  targetRate: number;
  achievedRate: number;
  produced: number;
  /** Rows measured (those produced after the warm-up). */
  measured: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  cpuSecondsPerMillion: { inserter: number; clickhouse: number };
  peakRssBytes: { inserter: number; clickhouse: number };
  machineBusyPct: number;
  /** The inserter's own histogram (oldest row per batch): sum / count, seconds. */
  inserterHistogramMeanSeconds?: number;
  errors: string[];
}

const LATENCY_WARMUP_MS = 5_000;

/**
 * Produces fresh generated events (unique uuids) at `rate` messages/s for `seconds`, a batch every 50 ms;
 * with `schemaIds`, as Protobuf in the Confluent wire format (converted here, in the bench process).
 */
async function produceAtRate(
  bootstrap: string,
  topic: string,
  seed: number,
  rate: number,
  seconds: number,
  onProgress: (sent: number) => void,
  schemaIds?: Record<string, number>,
): Promise<{ sent: number; seconds: number }> {
  const total = Math.round(rate * seconds);
  // Unique rows matter: events is a ReplacingMergeTree, repeated messages would collapse and never be counted.
  const generated = generate(TOPIC, { seed, count: total, teams: 1000 });
  const source = schemaIds === undefined ? generated : toWireMessages(generated, schemaIds);
  const producer = new Producer({ clientId: 'bench-latency', bootstrapBrokers: [bootstrap], acks: -1, compression: 'lz4', retries: 10, retryDelay: 250 });
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  let queued = 0;
  let sent = 0;
  const start = performance.now();
  try {
    while (queued < total && failure === undefined) {
      const due = start + (queued / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      while (inflight.size >= 8) await Promise.race(inflight);
      const n = Math.min(total - queued, Math.max(1, Math.round(rate / 20)));
      const now = BigInt(Date.now());
      const messages = [];
      for (let i = 0; i < n; i++) {
        const next = source.next();
        if (next.done === true) break;
        const m = next.value;
        messages.push({ topic, value: m.value, ...(m.key === null ? {} : { key: m.key }), partition: (queued + i) % PARTITIONS, timestamp: now });
      }
      queued += n;
      const p: Promise<void> = producer
        .send({ messages })
        .then(
          () => {
            sent += messages.length;
            onProgress(sent);
          },
          (error: unknown) => void (failure ??= error),
        )
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await Promise.all(inflight);
  } finally {
    await producer.close();
  }
  if (failure !== undefined) throw new Error(`latency producer: ${errorText(failure)}`);
  return { sent, seconds: (performance.now() - start) / 1000 };
}

async function latency(system: System, run: number, rate: number): Promise<LatencyResult> {
  const bootstrap = kafka?.bootstrap ?? '';
  const topic = `bench_latency_${system}_${run}_${Date.now().toString(36)}`;
  await createTopic(bootstrap, topic, PARTITIONS);
  const ch = await freshClickHouse("ADD COLUMN _timestamp_ms Nullable(DateTime64(3, 'UTC')) AFTER _offset");
  const chPids = [pidIn(ch.dir, 'pid')]; // the one process hosting the ClickHouse server
  const groupId = `bench-lat-${system}-${run}-${Date.now().toString(36)}`;
  const result: LatencyResult = {
    system,
    run,
    ok: false,
    targetRate: rate,
    achievedRate: Number.NaN,
    produced: 0,
    measured: 0,
    p50Ms: Number.NaN,
    p99Ms: Number.NaN,
    maxMs: Number.NaN,
    cpuSecondsPerMillion: { inserter: 0, clickhouse: 0 },
    peakRssBytes: { inserter: 0, clickhouse: 0 },
    machineBusyPct: Number.NaN,
    errors: [],
  };
  let consumer: Consumer | undefined;
  try {
    consumer =
      system !== 'engine'
        ? await startInserterConsumer(ch, topic, groupId, {}, system === 'typed' ? 'typed' : 'passthrough', system === 'variant')
        : await startEngineConsumer(ch, topic, groupId, true);
    await consumer.ready;
    if (system === 'engine') await sleep(2_000); // let the first SELECT subscribe and get its assignment
    const sampler = new ProcSampler({ inserter: consumer.pids, clickhouse: chPids });
    sampler.start();
    const machineBefore = machineCpuTimes();
    const t0 = Date.now();
    const schemaIds = registry === undefined || system === 'engine' ? undefined : await registerSchemas({ url: registry.url }, [TOPIC]);
    const produced = await produceAtRate(
      bootstrap,
      topic,
      1000 + run * 10 + (system === 'engine' ? 1 : 0),
      rate,
      LATENCY_SECONDS,
      (sent) => {
        const elapsed = (Date.now() - t0) / 1000;
        progress(`run ${run} latency ${system.padEnd(8)} ${fmtInt(sent)} sent at ${fmtInt(sent / Math.max(elapsed, 1e-3))}/s (target ${fmtInt(rate)}/s), ${elapsed.toFixed(1)} s`);
      },
      schemaIds,
    );
    result.produced = produced.sent;
    result.achievedRate = produced.sent / produced.seconds;
    let rows = 0;
    let lastChange = Date.now();
    for (;;) {
      const c = await count(ch);
      if (c !== rows) lastChange = Date.now();
      rows = c;
      if (rows >= produced.sent) break;
      if (Date.now() - lastChange > 30_000) throw new Error(`only ${rows} of ${produced.sent} rows arrived; no progress for 30 s`);
      progress(`run ${run} latency ${system.padEnd(8)} waiting for the tail: ${fmtInt(rows)}/${fmtInt(produced.sent)}`);
      await sleep(100);
    }
    const machineAfter = machineCpuTimes();
    const usage = sampler.stop();
    const busy = machineAfter.busy - machineBefore.busy;
    result.machineBusyPct = (busy / Math.max(busy + machineAfter.idle - machineBefore.idle, 1e-9)) * 100;
    const perM = (cpu: number): number => (cpu / produced.sent) * 1e6;
    result.cpuSecondsPerMillion = { inserter: perM(usage.inserter?.cpuSeconds ?? 0), clickhouse: perM(usage.clickhouse?.cpuSeconds ?? 0) };
    result.peakRssBytes = { inserter: usage.inserter?.peakRssBytes ?? 0, clickhouse: usage.clickhouse?.peakRssBytes ?? 0 };
    const cutoff = t0 + LATENCY_WARMUP_MS;
    const [measured, p50, p99, max] = (
      await ch.query(
        'SELECT count(), quantileExact(0.5)(d), quantileExact(0.99)(d), max(d) FROM (' +
          'SELECT toUnixTimestamp64Micro(assumeNotNull(inserted_at)) / 1000 - toUnixTimestamp64Milli(assumeNotNull(_timestamp_ms)) AS d ' +
          `FROM posthog.events WHERE _timestamp_ms >= fromUnixTimestamp64Milli(toInt64(${cutoff})))`,
      )
    )
      .trim()
      .split('\t')
      .map(Number);
    Object.assign(result, { measured, p50Ms: p50, p99Ms: p99, maxMs: max, ok: measured !== undefined && measured > 0 });
    if (system !== 'engine') {
      const metricsText = await consumer.metrics();
      const sum = Number(/^inserter_end_to_end_seconds_sum\{[^}]*\} (\S+)/m.exec(metricsText)?.[1]);
      const cnt = Number(/^inserter_end_to_end_seconds_count\{[^}]*\} (\S+)/m.exec(metricsText)?.[1]);
      if (cnt > 0) result.inserterHistogramMeanSeconds = sum / cnt;
    }
  } catch (error) {
    result.error = errorText(error);
  } finally {
    result.errors = [...(consumer?.errors ?? [])].slice(0, 10);
    await consumer?.stop().catch(() => undefined);
    await stopClickHouse(ch).catch(() => undefined);
  }
  say(
    `run ${run} latency ${system.padEnd(8)} ${result.ok ? 'ok' : `FAILED: ${result.error}`}  at ${fmtInt(result.achievedRate)}/s (target ${fmtInt(rate)}): ` +
      `p50 ${fmtInt(result.p50Ms)} ms  p99 ${fmtInt(result.p99Ms)} ms  max ${fmtInt(result.maxMs)} ms  machine busy ${fmt(result.machineBusyPct, 0)}%`,
  );
  return result;
}

// ---------------------------------------------------------------------------------------------
// profile

async function profileRun(dir: string): Promise<{ file: string; summary: ProfileSummary; drain: DrainResult }> {
  mkdirSync(dir, { recursive: true });
  const before = new Set(readdirSync(dir));
  const result = await drain(PROFILE_SYSTEM, 0, { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}` });
  // The profile is written when the process exits (drain stops it gracefully).
  let file: string | undefined;
  for (let i = 0; i < 50 && file === undefined; i++) {
    file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile') && !before.has(f));
    if (file === undefined) await sleep(200);
  }
  if (file === undefined) throw new Error(`no .cpuprofile appeared in ${dir}`);
  const path = join(dir, file);
  const summary = summarizeProfile(path, REPO_ROOT, 30);
  const lines = [
    `profile ${path}: ${fmtInt(summary.totalMs)} ms sampled, idle ${fmtInt(summary.idleMs)} ms, GC ${fmtInt(summary.gcMs)} ms`,
    'self ms   busy%  function',
    ...summary.top.map((t) => `${fmtInt(t.selfMs).padStart(7)}  ${fmt(t.busyPct).padStart(5)}%  ${t.name}`),
    '',
    'by file:',
    ...summary.byFile.map((t) => `${fmtInt(t.selfMs).padStart(7)}  ${fmt(t.busyPct).padStart(5)}%  ${t.name}`),
  ];
  writeFileSync(join(dir, 'top.txt'), `${lines.join('\n')}\n`);
  say(lines.join('\n'));
  return { file: path, summary, drain: result };
}

// ---------------------------------------------------------------------------------------------
// main

const inserterSystems: readonly System[] = [...(['inserter'] as const), ...(argv.typed ? (['typed'] as const) : []), ...(VARIANT ? (['variant'] as const) : [])];

function report(drains: DrainResult[], latencies: LatencyResult[]): { text: string; summary: Record<string, Record<string, Summary>> } {
  const systems: System[] = [...inserterSystems, ...(argv['no-engine'] ? [] : (['engine'] as const))];
  const engineAt = systems.indexOf('engine');
  const pick = (system: System, f: (r: DrainResult) => number): Summary => summarize(drains.filter((r) => r.system === system && r.ok).map(f));
  const pickL = (system: System, f: (r: LatencyResult) => number): Summary => summarize(latencies.filter((r) => r.system === system && r.ok).map(f));
  const metrics: Array<[string, (s: System) => Summary, (n: number) => string]> = [
    ['drain rows/s (subscribed → count() = N)', (s) => pick(s, (r) => r.rowsPerSecond), fmtInt],
    ['rows/s (first insert → count() = N)', (s) => pick(s, (r) => r.firstInsertToNRowsPerSecond), fmtInt],
    ['CPU-s per M events: inserter', (s) => pick(s, (r) => r.cpuSecondsPerMillion.inserter), (n) => fmt(n, 2)],
    ['CPU-s per M events: ClickHouse server', (s) => pick(s, (r) => r.cpuSecondsPerMillion.clickhouse), (n) => fmt(n, 2)],
    ['CPU-s per M events: inserter + ClickHouse', (s) => pick(s, (r) => r.cpuSecondsPerMillion.total), (n) => fmt(n, 2)],
    ['CPU-s per M events: Kafka broker', (s) => pick(s, (r) => r.cpuSecondsPerMillion.kafka), (n) => fmt(n, 2)],
    ['  of which JIT compiler threads', (s) => pick(s, (r) => r.kafkaJitCpuSecondsPerMillion), (n) => fmt(n, 2)],
    ['  Kafka broker without JIT compilers', (s) => pick(s, (r) => r.cpuSecondsPerMillion.kafka - r.kafkaJitCpuSecondsPerMillion), (n) => fmt(n, 2)],
    ['ClickHouse CPU-s per M after N: merges settling', (s) => pick(s, (r) => r.mergeTail?.cpuSecondsPerMillion ?? Number.NaN), (n) => fmt(n, 2)],
    ['ClickHouse CPU-s per M incl. merge tail', (s) => pick(s, (r) => r.cpuSecondsPerMillion.clickhouse + (r.mergeTail?.cpuSecondsPerMillion ?? Number.NaN)), (n) => fmt(n, 2)],
    ['active parts when merges settled', (s) => pick(s, (r) => r.mergeTail?.activeParts ?? Number.NaN), fmtInt],
    ['peak RSS inserter (MiB)', (s) => pick(s, (r) => r.peakRssBytes.inserter / 2 ** 20), fmtInt],
    ['peak RSS ClickHouse server (MiB)', (s) => pick(s, (r) => r.peakRssBytes.clickhouse / 2 ** 20), fmtInt],
    ['inserts per drain', (s) => pick(s, (r) => r.inserts), fmtInt],
    ['machine busy during drain (%)', (s) => pick(s, (r) => r.machineBusyPct), (n) => fmt(n, 0)],
    ['  of which other processes (%)', (s) => pick(s, (r) => r.foreignBusyPct), (n) => fmt(n, 0)],
    ['latency: producer rate (msg/s)', (s) => pickL(s, (r) => r.achievedRate), fmtInt],
    ['latency p50 (ms)', (s) => pickL(s, (r) => r.p50Ms), fmtInt],
    ['latency p99 (ms)', (s) => pickL(s, (r) => r.p99Ms), fmtInt],
    ['CPU-s per M at that rate: inserter', (s) => pickL(s, (r) => r.cpuSecondsPerMillion.inserter), (n) => fmt(n, 2)],
    ['CPU-s per M at that rate: ClickHouse', (s) => pickL(s, (r) => r.cpuSecondsPerMillion.clickhouse), (n) => fmt(n, 2)],
  ];
  const cell = (s: Summary, f: (n: number) => string): string =>
    s.values.length === 0 ? '—' : s.values.length === 1 ? f(s.median) : `${f(s.median)} [${f(s.min)}–${f(s.max)}] ±${fmt(s.spreadPct / 2, 0)}%`;
  const ratios = engineAt < 0 ? [] : inserterSystems;
  const rows: string[][] = [['metric (median [min–max] ±half-spread)', ...systems, ...ratios.map((s) => `${s}/engine`)]];
  const summary: Record<string, Record<string, Summary>> = {};
  for (const [name, get, f] of metrics) {
    const per = systems.map((s) => get(s));
    summary[name] = Object.fromEntries(systems.map((s, i) => [s, per[i] as Summary]));
    const ratioCells = ratios.map((_, i) => {
      const ratio = (per[i]?.median ?? Number.NaN) / (per[engineAt]?.median ?? Number.NaN);
      return Number.isFinite(ratio) ? `${fmt(ratio, 2)}x` : '—';
    });
    rows.push([name, ...per.map((s) => cell(s, f)), ...ratioCells]);
  }
  return { text: table(rows), summary };
}

const machine = machineInfo();
let pre: PreloadResult | undefined;
/** With --format protobuf: the engine's JSON copy of the preload. */
let preEngine: PreloadResult | undefined;
const drains: DrainResult[] = [];
const latencies: LatencyResult[] = [];

/** Writes --json (also after every phase, so an interrupted run keeps what it measured). */
function writeJson(summary?: Record<string, Record<string, Summary>>, profile?: Awaited<ReturnType<typeof profileRun>>): void {
  if (argv.json === undefined) return;
  writeFileSync(
    argv.json,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        machine,
        inserter: INSERTER.rev,
        ...(VARIANT_INSERTER === INSERTER ? {} : { variantInserter: VARIANT_INSERTER.rev }),
        options: {
          events: EVENTS,
          partitions: PARTITIONS,
          runs: RUNS,
          latencySeconds: LATENCY_SECONDS,
          latencyRate: LATENCY_RATE ?? 'half of measured capacity',
          engine: !argv['no-engine'],
          format: argv.format,
        },
        notes,
        preload: pre,
        ...(preEngine === undefined ? {} : { preloadEngineJson: preEngine }),
        drains,
        latencies,
        summary,
        ...(profile === undefined
          ? {}
          : {
              profile: {
                file: profile.file,
                totalMs: profile.summary.totalMs,
                idleMs: profile.summary.idleMs,
                gcMs: profile.summary.gcMs,
                top: profile.summary.top,
                byFile: profile.summary.byFile,
                drain: profile.drain,
              },
            }),
      },
      null,
      2,
    )}\n`,
  );
}

async function main(): Promise<void> {
  say(`inserter: ${INSERTER.rev}${VARIANT_INSERTER === INSERTER ? '' : `; variant: ${VARIANT_INSERTER.rev}`}`);
  say(
    `drain benchmark: ${fmtInt(EVENTS)} events, ${PARTITIONS} partitions, ${RUNS} run(s); ${machine.cpus} × ${machine.model}, ${mib(machine.memoryBytes)}, node ${machine.node}, kernel ${machine.kernel}, load ${machine.loadAverage}`,
  );
  for (const note of notes) say(`note: ${note}`);
  kafka = await startKafka();
  say(`kafka ${kafka.bootstrap} (${kafka.dir})`);
  if (PROTOBUF) {
    const server = new FakeSchemaRegistry();
    registry = { server, url: await server.start() };
    say(`schema registry ${registry.url} (in this process)`);
  }
  pre = await preload(kafka.bootstrap);
  say(`preloaded ${fmtInt(pre.messages)} events as ${PROTOBUF ? 'Protobuf (Confluent wire format)' : 'JSON'} (${mib(pre.bytes)}) in ${fmt(pre.seconds)} s, ${fmtInt(pre.messagesPerSecond)} msg/s`);
  if (PROTOBUF && !argv['no-engine']) {
    preEngine = await preloadJsonCopy(kafka.bootstrap, ENGINE_TOPIC);
    say(`preloaded the same ${fmtInt(preEngine.messages)} events as JSON into ${ENGINE_TOPIC} for the engine (${mib(preEngine.bytes)}) in ${fmt(preEngine.seconds)} s`);
  }
  for (let run = 1; run <= RUNS; run++) {
    // Alternate the order so neither system always runs on a warmer (or more fragmented) broker.
    const forward: System[] = [...inserterSystems, ...(argv['no-engine'] ? [] : (['engine'] as const))];
    const order: System[] = run % 2 === 1 ? forward : [...forward].reverse();
    for (const system of order) {
      drains.push(await drain(system, run));
      writeJson();
    }
    if (!argv['no-latency']) {
      for (const system of order) {
        const capacity = drains.find((r) => r.run === run && r.system === system)?.rowsPerSecond ?? Number.NaN;
        const rate = LATENCY_RATE ?? (Number.isFinite(capacity) ? Math.max(100, Math.round(capacity / 2)) : undefined);
        if (rate === undefined) {
          say(`run ${run} latency ${system}: skipped (no capacity measured)`);
          continue;
        }
        latencies.push(await latency(system, run, rate));
        writeJson();
      }
    }
  }
  let profile: Awaited<ReturnType<typeof profileRun>> | undefined;
  if (argv.profile !== undefined) profile = await profileRun(argv.profile);
  const { text, summary } = report(drains, latencies);
  const rates = drains.filter((r) => r.ok).map((r) => r.rowsPerSecond);
  const steal = drains.reduce((s, r) => s + r.stealSeconds, 0);
  process.stdout.write(
    `\n${fmtInt(EVENTS)} PostHog events (~${fmt(pre.bytes / pre.messages / 1000, 2)} KB each), ${PARTITIONS} partitions, ${RUNS} run(s), ` +
      `${machine.cpus} × ${machine.model}, node ${machine.node}\n\n${text}\n\n` +
      (PROTOBUF
        ? `input: inserter systems read Protobuf (posthog.v1.Event, Confluent wire format, schema registry); ${argv['no-engine'] ? 'the engine was not run' : `the engine read a JSON copy of the same events (${ENGINE_TOPIC})`}.\n`
        : '') +
      `noise: per-system spread is shown as ±half of (max-min)/median; hypervisor steal during drains ${fmt(steal, 1)} s; ${rates.length} successful drains.\n` +
      "ClickHouse CPU and RSS are those of the one process hosting ClickHouse's server (scripts/chlocal.sh). Latency = inserted_at (now64() at insert) − Kafka message timestamp, per row, after a 5 s warm-up.\n",
  );
  writeJson(summary, profile);
  if (argv.json !== undefined) say(`wrote ${argv.json}`);
}

try {
  await main();
} catch (error) {
  say(`drain benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : errorText(error)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
