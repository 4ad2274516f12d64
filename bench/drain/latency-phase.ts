// The latency phase: with one system consuming a fresh topic, a producer sends fresh events at a
// fixed rate (--latency-rate, else half the capacity the drain showed) for --latency-seconds; the
// result is p50/p99 of `inserted_at - _timestamp_ms` per row after a warm-up, and the CPU spent.
import { setTimeout as sleep } from 'node:timers/promises';
import { Producer } from '@platformatic/kafka';
import { generate } from '../../dev/posthog/generator.ts';
import { registerSchemas, toWireMessages } from '../../dev/posthog/protobuf.ts';
import { createTopic } from '../../test/helpers/kafka.ts';
import { machineCpuTimes, ProcSampler } from '../lib/proc.ts';
import { fmt, fmtInt } from '../lib/stats.ts';
import { startEngineConsumer, startInserterConsumer, type Consumer } from './consumers.ts';
import { LATENCY_SECONDS, PARTITIONS, TOPIC, VARIANT_ENCODING, type System } from './options.ts';
import { errorText, progress, say } from './output.ts';
import { count, freshClickHouse, kafka, pidIn, registry, stopClickHouse } from './stack.ts';

export interface LatencyResult {
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

/** The warm-up: rows produced in the first 5 s are left out of the percentiles. */
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

/** Measures `system`'s end-to-end latency at `rate` messages/s (run `run`) and says the result. */
export async function latency(system: System, run: number, rate: number): Promise<LatencyResult> {
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
        ? await startInserterConsumer(ch, topic, groupId, {}, system === 'typed' ? 'typed' : system === 'variant' ? VARIANT_ENCODING : 'passthrough', system === 'variant')
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
