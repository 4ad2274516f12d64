// The drain benchmark's results: the table of medians over runs (with the inserter systems'
// ratios to the engine) printed at the end, and the --json file, rewritten after every phase.
import { writeFileSync } from 'node:fs';
import type { MachineInfo } from '../lib/proc.ts';
import { fmt, fmtInt, summarize, table, type Summary } from '../lib/stats.ts';
import type { DrainResult } from './drain-phase.ts';
import type { LatencyResult } from './latency-phase.ts';
import { argv, comparedSystems, ENGINE_TOPIC, EVENTS, INSERTER, inserterSystems, LATENCY_RATE, LATENCY_SECONDS, notes, PARTITIONS, PROTOBUF, RUNS, VARIANT_INSERTER, type System } from './options.ts';
import type { PreloadResult } from './preload.ts';
import type { ProfileRun } from './profile-run.ts';

/** Per metric (the table's row name), per system: the summary over the successful runs. */
export type ReportSummary = Record<string, Record<string, Summary>>;

/** Everything measured so far; main fills it phase by phase. */
export interface Measurements {
  machine: MachineInfo;
  preload: PreloadResult;
  /** With --format protobuf: the engine's JSON copy of the preload. */
  preloadEngineJson?: PreloadResult;
  drains: DrainResult[];
  latencies: LatencyResult[];
}

function report(drains: DrainResult[], latencies: LatencyResult[]): { text: string; summary: ReportSummary } {
  const systems = comparedSystems;
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
  const summary: ReportSummary = {};
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

/** Prints the table and the notes under it to stdout; returns the summary that goes to --json. */
export function printReport(measured: Measurements): ReportSummary {
  const { machine, preload: pre, drains } = measured;
  const { text, summary } = report(drains, measured.latencies);
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
  return summary;
}

/** Writes --json (also after every phase, so an interrupted run keeps what it measured). */
export function writeJson(measured: Measurements, summary?: ReportSummary, profile?: ProfileRun): void {
  if (argv.json === undefined) return;
  writeFileSync(
    argv.json,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: measured.machine,
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
        preload: measured.preload,
        ...(measured.preloadEngineJson === undefined ? {} : { preloadEngineJson: measured.preloadEngineJson }),
        drains: measured.drains,
        latencies: measured.latencies,
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
