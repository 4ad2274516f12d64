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
// --variant-fetch-max-bytes B, --variant-max-buffered-mib M,
// --variant-encoding typed (the variant encodes typed, for an A/B of the typed path),
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
//
// The parts live in bench/drain/: options (the command line), output (stderr), stack (what is
// started, and cleanup), preload, consumers, memory-watch, drain-phase, latency-phase, profile-run
// and report; this file runs the phases in order.
import { machineInfo } from './lib/proc.ts';
import { fmt, fmtInt, mib } from './lib/stats.ts';
import { drain } from './drain/drain-phase.ts';
import { latency } from './drain/latency-phase.ts';
import { argv, comparedSystems, ENGINE_TOPIC, EVENTS, INSERTER, LATENCY_RATE, notes, PARTITIONS, PROTOBUF, RUNS, VARIANT_INSERTER, type System } from './drain/options.ts';
import { errorText, say } from './drain/output.ts';
import { preload, preloadJsonCopy } from './drain/preload.ts';
import { profileRun, type ProfileRun } from './drain/profile-run.ts';
import { printReport, writeJson, type Measurements } from './drain/report.ts';
import { cleanup, startBroker } from './drain/stack.ts';

async function main(): Promise<void> {
  const machine = machineInfo();
  say(`inserter: ${INSERTER.rev}${VARIANT_INSERTER === INSERTER ? '' : `; variant: ${VARIANT_INSERTER.rev}`}`);
  say(
    `drain benchmark: ${fmtInt(EVENTS)} events, ${PARTITIONS} partitions, ${RUNS} run(s); ${machine.cpus} × ${machine.model}, ${mib(machine.memoryBytes)}, node ${machine.node}, kernel ${machine.kernel}, load ${machine.loadAverage}`,
  );
  for (const note of notes) say(`note: ${note}`);
  const kafka = await startBroker();
  const pre = await preload(kafka.bootstrap);
  const measured: Measurements = { machine, preload: pre, drains: [], latencies: [] };
  say(`preloaded ${fmtInt(pre.messages)} events as ${PROTOBUF ? 'Protobuf (Confluent wire format)' : 'JSON'} (${mib(pre.bytes)}) in ${fmt(pre.seconds)} s, ${fmtInt(pre.messagesPerSecond)} msg/s`);
  if (PROTOBUF && !argv['no-engine']) {
    const preEngine = await preloadJsonCopy(kafka.bootstrap, ENGINE_TOPIC);
    measured.preloadEngineJson = preEngine;
    say(`preloaded the same ${fmtInt(preEngine.messages)} events as JSON into ${ENGINE_TOPIC} for the engine (${mib(preEngine.bytes)}) in ${fmt(preEngine.seconds)} s`);
  }
  const { drains, latencies } = measured;
  for (let run = 1; run <= RUNS; run++) {
    // Alternate the order so neither system always runs on a warmer (or more fragmented) broker.
    const order: readonly System[] = run % 2 === 1 ? comparedSystems : [...comparedSystems].reverse();
    for (const system of order) {
      drains.push(await drain(system, run));
      writeJson(measured);
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
        writeJson(measured);
      }
    }
  }
  let profile: ProfileRun | undefined;
  if (argv.profile !== undefined) profile = await profileRun(argv.profile);
  const summary = printReport(measured);
  writeJson(measured, summary, profile);
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
