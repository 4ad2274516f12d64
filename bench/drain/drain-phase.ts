// The drain measurement: one system drains the preloaded topic from the beginning into a fresh
// ClickHouse while its processes, the ClickHouse server and the broker are sampled; the result is
// rows/s, CPU seconds per million events, peak memory, machine noise and the merges left after N.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClickHouseInstance } from '../../test/helpers/clickhouse.ts';
import { isJitCompilerThread, machineCpuTimes, ProcSampler, type GroupUsage } from '../lib/proc.ts';
import { fmt, fmtInt, mib } from '../lib/stats.ts';
import { startEngineConsumer, startInserterConsumer, type Consumer } from './consumers.ts';
import { describeMemory, MemoryWatch, type MemorySample } from './memory-watch.ts';
import { ENGINE_TOPIC, EVENTS, TOPIC, VARIANT_ENCODING, type System } from './options.ts';
import { errorText, progress, say } from './output.ts';
import { count, freshClickHouse, kafka, pidIn, stopClickHouse } from './stack.ts';

export interface DrainResult {
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

/** Drains the preloaded topic with `system` (run `run`; `env`: more environment for an inserter) and says the result. */
export async function drain(system: System, run: number, env: NodeJS.ProcessEnv = {}): Promise<DrainResult> {
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
      consumer = await startInserterConsumer(ch, TOPIC, groupId, env, system === 'typed' ? 'typed' : system === 'variant' ? VARIANT_ENCODING : 'passthrough', system === 'variant');
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
