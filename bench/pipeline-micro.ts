// Micro-benchmark of the per-record path through the real Pipeline (docs/benchmarks.md "Per-record
// path"): generated PostHog events (~1.47 KB) of 6 partitions, in runs per partition like a Kafka
// fetch, handed to `Pipeline.onRecord` (ownership → decode → route → batch → offset tracking), then
// delivered to an in-memory sink (intent in a memory ledger, JSONEachRow body, insert, ack, commit).
//
//   node_modules/.bin/node bench/pipeline-micro.ts [--records N] [--rounds R] [--run K] [--profile] [--no-ledger]
//
// --no-ledger: `exactlyOnce.enabled: false` and no ledger store (what the ledger's bookkeeping costs).
//
// Per round: main-thread CPU (process.threadCpuUsage) of the synchronous onRecord loop alone, µs per
// record, and of the whole round until every record is resolved (deliveries included); heap bytes
// allocated per record in the loop (a young generation large enough that no scavenge runs in it;
// flagged when one did). Medians over the rounds after the first (warm-up). `--profile` writes a CPU
// profile of the measured rounds with node's --cpu-prof (in the temp dir's pipeline-micro-profiles).
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { generate } from '../dev/posthog/generator.ts';
import { MemoryLedgerStore } from '../src/ack/ledger.ts';
import { buildConfig } from '../src/config/load.ts';
import type { DeadLetterSink } from '../src/deadletter/types.ts';
import { Pipeline } from '../src/pipeline/pipeline.ts';
import type { ColumnInfo, InsertBatch, InsertResult, Sink } from '../src/sink/types.ts';
import type { CommitPosition, Source, SourceHandler, SourceRecord } from '../src/source/types.ts';
import { createLogger } from '../src/telemetry/logger.ts';
import { Metrics } from '../src/telemetry/metrics.ts';
import { fmt, table } from './lib/stats.ts';

const { values: argv } = parseArgs({
  options: {
    records: { type: 'string', default: '60000' },
    rounds: { type: 'string', default: '8' },
    run: { type: 'string', default: '1000' },
    profile: { type: 'boolean', default: false },
    'no-ledger': { type: 'boolean', default: false },
    child: { type: 'boolean', default: false },
  },
  strict: true,
});

const TOPIC = 'clickhouse_events_json';
const PARTITIONS = 6;
const RECORDS = Number(argv.records);
const ROUNDS = Number(argv.rounds);
const RUN = Number(argv.run);

if (!argv.child) {
  const flags = ['--max-semi-space-size=256', '--min-semi-space-size=256'];
  if (argv.profile) flags.push('--cpu-prof', `--cpu-prof-dir=${tmpdir()}/pipeline-micro-profiles`);
  const args = [...flags, import.meta.filename, '--child', '--records', String(RECORDS), '--rounds', String(ROUNDS), '--run', String(RUN), ...(argv['no-ledger'] ? ['--no-ledger'] : [])];
  const child = spawnSync(process.execPath, args, { stdio: 'inherit' });
  process.exit(child.status ?? 1);
}

const column = (name: string, type: string, defaultKind = ''): ColumnInfo => ({ name, type, defaultKind });
const columns: ColumnInfo[] = [
  column('uuid', 'UUID'),
  column('event', 'String'),
  column('team_id', 'Int64'),
  column('_timestamp', 'DateTime'),
  column('_offset', 'UInt64'),
  column('inserted_at', "Nullable(DateTime64(6, 'UTC'))", 'DEFAULT'),
];

let insertedRows = 0;
const sink = (id: string): Sink => ({
  destinationId: id,
  describe: async () => ({ columns }),
  createTable: async () => undefined,
  insert: async (batch: InsertBatch): Promise<InsertResult> => {
    let bytes = 0;
    for (const block of batch.body) bytes += block.length;
    if (bytes !== batch.bytes) throw new Error(`body of ${bytes} bytes, batch says ${batch.bytes}`);
    insertedRows += batch.rows;
    return { writtenRows: batch.rows };
  },
  close: async () => undefined,
});

class StubSource implements Source {
  readonly commits: CommitPosition[] = [];
  run(_handler: SourceHandler, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  async commit(positions: readonly CommitPosition[]): Promise<void> {
    this.commits.push(...positions);
  }
  async close(): Promise<void> {}
}

const deadLetters: DeadLetterSink = {
  write: async () => {
    throw new Error('no record of this benchmark is dead-lettered');
  },
  close: async () => undefined,
};

const config = buildConfig(
  {
    kafka: { brokers: ['memory:9092'] },
    destinations: [{ id: 'ch', url: 'http://localhost:8123', database: 'posthog' }],
    routes: [{ topic: TOPIC, table: 'events', destination: 'ch', createTable: { enabled: false } }],
    // Each partition's batch fills within a round (RECORDS / PARTITIONS rows) and goes by size.
    batch: { maxRows: Math.ceil(RECORDS / PARTITIONS), maxBytes: 1 << 30, maxAgeMs: 60_000 },
    maxBufferedBytes: 4 * 1024 * 1024 * 1024,
    telemetry: { logLevel: 'silent' },
    ...(argv['no-ledger'] ? { exactlyOnce: { enabled: false } } : {}),
  },
  tmpdir(),
);

const values = [...generate(TOPIC, { seed: 3, count: RECORDS, teams: 1000 })].map((m) => m.value);
const valueBytes = values.reduce((sum, v) => sum + v.length, 0);

/** One round's records: every partition's next RECORDS / PARTITIONS offsets, in runs of RUN per partition. */
function roundRecords(round: number): SourceRecord[] {
  const perPartition = Math.ceil(RECORDS / PARTITIONS);
  const out: SourceRecord[] = [];
  const next = new Array<number>(PARTITIONS).fill(0);
  let v = 0;
  while (out.length < perPartition * PARTITIONS) {
    for (let p = 0; p < PARTITIONS; p++) {
      for (let k = 0; k < RUN && next[p]! < perPartition; k++) {
        const offset = BigInt(round * perPartition + next[p]!);
        next[p]!++;
        out.push({ topic: TOPIC, partition: p, offset, timestamp: 1_900_000_000_000n + offset, key: undefined, value: values[v++ % values.length], headers: [], epoch: 0 });
      }
    }
  }
  return out;
}

const source = new StubSource();
const pipeline = new Pipeline({
  config,
  source,
  sinkFactory: (d) => sink(d.id),
  deadLetters,
  ...(argv['no-ledger'] ? {} : { ledgers: new MemoryLedgerStore() }),
  logger: createLogger('silent'),
  metrics: new Metrics(),
});
void pipeline.start();
pipeline.onAssigned(Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: TOPIC, partition })));

let gcs = 0;
new PerformanceObserver((list) => void (gcs += list.getEntries().length)).observe({ entryTypes: ['gc'] });

interface Round {
  loopUs: number;
  totalUs: number;
  heapBytes: number;
  gc: boolean;
}

async function round(r: number): Promise<Round> {
  const records = roundRecords(r);
  const expected = insertedRows + records.length;
  await sleep(20);
  const gcsBefore = gcs;
  const heapBefore = process.memoryUsage().heapUsed;
  const t0 = process.threadCpuUsage();
  for (const record of records) {
    const pending = pipeline.onRecord(record);
    if (pending !== undefined) await pending;
  }
  const t1 = process.threadCpuUsage();
  const heapAfter = process.memoryUsage().heapUsed;
  while (insertedRows < expected) await new Promise((resolve) => setImmediate(resolve));
  const t2 = process.threadCpuUsage();
  const cpu = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage): number => b.user - a.user + (b.system - a.system);
  await sleep(20);
  return { loopUs: cpu(t0, t1) / records.length, totalUs: cpu(t0, t2) / records.length, heapBytes: (heapAfter - heapBefore) / records.length, gc: gcs > gcsBefore || heapAfter < heapBefore };
}

const results: Round[] = [];
for (let r = 0; r < ROUNDS; r++) results.push(await round(r));
await pipeline.close(5_000);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};
const measured = results.slice(1);
const rows = [['round', 'onRecord µs/record', 'with delivery µs/record', 'heap B/record (loop)']];
results.forEach((x, i) => rows.push([i === 0 ? `${i} (warm-up)` : String(i), fmt(x.loopUs, 2), fmt(x.totalUs, 2), `${x.gc ? '≥' : ''}${fmt(x.heapBytes, 0)}`]));
rows.push([
  'median',
  `${fmt(median(measured.map((x) => x.loopUs)), 2)} [${fmt(Math.min(...measured.map((x) => x.loopUs)), 2)}–${fmt(Math.max(...measured.map((x) => x.loopUs)), 2)}]`,
  `${fmt(median(measured.map((x) => x.totalUs)), 2)} [${fmt(Math.min(...measured.map((x) => x.totalUs)), 2)}–${fmt(Math.max(...measured.map((x) => x.totalUs)), 2)}]`,
  fmt(median(measured.map((x) => x.heapBytes)), 0),
]);
process.stdout.write(
  `pipeline per-record path: ${RECORDS} records per round (${fmt(valueBytes / values.length / 1000, 2)} KB each), ${PARTITIONS} partitions in runs of ${RUN}, ${ROUNDS} rounds; main-thread CPU\n${table(rows)}\n`,
);
