// One incarnation of the inserter in the simulation: a real Pipeline wired to this incarnation's
// clients of the durable fakes (bus, warehouse, dead letters, ledger store, destinations API), its
// seeded pauses, and the checks of what its source and pipeline report.
import { pino } from 'pino';
import type { MemoryLedgerStore } from '../../src/ack/ledger.ts';
import { Pipeline, type PipelineStatus } from '../../src/pipeline/pipeline.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import type { Pause } from '../../src/control/scope.ts';
import type { Bus } from './bus.ts';
import { SimSource } from './bus.ts';
import { SimDestinationsApi } from './destinations-api.ts';
import type { Checker } from './check.ts';
import type { DeadLetters } from './dead-letters.ts';
import { SimDeadLetterSink } from './dead-letters.ts';
import { SimLedgerStore } from './ledger-store.ts';
import { waitingDecoders, type SchemaFaults } from './decoder.ts';
import { refusingEncoders } from './encoder.ts';
import { type SchemaChanges } from './alter.ts';
import { Rng } from './rng.ts';
import type { World } from './runtime.ts';
import { type Incarnation } from './runtime.ts';
import type { Warehouse } from './warehouse.ts';
import { SimSink } from './warehouse.ts';
import type { SimStats } from './options.ts';
import { configFor, type Scenario } from './scenario.ts';

/** Incarnations being shut down on purpose: their source may stop with an abort error. */
export const stopping = new WeakSet<Incarnation>();

export interface Durable {
  readonly bus: Bus;
  readonly warehouse: Warehouse;
  readonly deadLetters: DeadLetters;
  readonly ledgers: MemoryLedgerStore;
  /** Rows the row encoder refuses (never sent to the warehouse). */
  readonly refused: ReadonlySet<string>;
  readonly changes: SchemaChanges | undefined;
  readonly seed: number;
  /** Whether records wait for their schema first (drawn per seed from a stream of its own). */
  readonly schemaFaults: SchemaFaults | undefined;
  /** How long offset fetches miss a position committed with a ledger (FEATURES.staleOffsetFetch). */
  readonly staleFetch: Rng | undefined;
  /** Which commits store the ledger alone, not the position (FEATURES.positionFaults). */
  readonly positionFaults: Rng | undefined;
  /** Whether some schema reads answer late (FEATURES.slowSchemaReads). */
  readonly slowSchemaReads: boolean;
  /** Whether some inserts start late at the server (FEATURES.lateQueryStarts). */
  readonly lateQueryStarts: boolean;
  /** Whether schema reads go through the cluster and answer 3–30 ms late (FEATURES.clusterSchemaReads, drawn per seed). */
  readonly clusterSchemaReads: boolean;
}

export function startPipeline(
  world: World,
  inc: Incarnation,
  scenario: Scenario,
  life: Scenario['lives'][number],
  exactlyOnce: boolean,
  durable: Durable,
  rng: Rng,
  checker: Checker,
  stats: SimStats,
): Pipeline {
  const config = configFor(scenario, life, exactlyOnce, durable.changes !== undefined);
  const errors = stats.pipelineErrors;
  const logger = pino(
    {
      level: world.trace !== undefined ? 'info' : 'error',
      base: null,
      timestamp: false,
      // No stacks: they name the caller's file and line, which would make traces differ between runners.
      serializers: { err: (e: unknown) => (e instanceof Error ? { type: e.name, message: e.message } : e) },
    },
    {
      write(line: string): void {
        const entry = JSON.parse(line) as { level: number; msg: string };
        if (entry.level >= 50) errors[entry.msg] = (errors[entry.msg] ?? 0) + 1;
        world.trace?.push(`${Date.now() % 1_000_000} #${inc.id} log ${line.trimEnd()}`);
      },
    },
  );
  // Revocations while the source waits on the handler, where the scenario rebalances at all: from a
  // stream of their own (seed and incarnation), so the older seeds' schedules stay as they were.
  const waits = scenario.sourceFaults.rebalance > 0 ? { revokeWhileWaiting: 0.3, waitRng: new Rng(durable.seed * 131 + inc.id * 7 + 0x77) } : {};
  const source = new SimSource(world, inc, durable.bus, rng.fork(), { ...scenario.sourceFaults, ...waits });
  const sinkRng = rng.fork();
  let sinks = 0;
  const pipeline = new Pipeline({
    config,
    source,
    sinkFactory: (destination) =>
      new SimSink(
        world,
        inc,
        durable.warehouse,
        destination,
        sinkRng.fork(),
        scenario.warehouseFaults,
        Date.now() + life.pressureMs,
        scenario.stalling?.destination === destination.id ? new Rng(scenario.stalling.seed * 977 + inc.id) : undefined,
        // Streams of their own per sink (the n-th sink this incarnation made), so older schedules stay.
        durable.warehouse.replicas > 1 ? new Rng(durable.seed * 313 + inc.id * 17 + ++sinks) : undefined,
        durable.slowSchemaReads ? new Rng(durable.seed * 7177 + inc.id * 13 + (durable.warehouse.replicas > 1 ? sinks : ++sinks)) : undefined,
        durable.lateQueryStarts ? new Rng(durable.seed * 9343 + inc.id * 29 + scenario.destinations.indexOf(destination.id)) : undefined,
        durable.clusterSchemaReads ? new Rng(durable.seed * 6451 + inc.id * 37 + scenario.destinations.indexOf(destination.id)) : undefined,
      ),
    ...(scenario.lookups === undefined ? {} : { provider: new SimDestinationsApi(world, inc, config, scenario.teamMap, rng.fork(), scenario.lookups) }),
    deadLetters: new SimDeadLetterSink(world, inc, durable.deadLetters, rng.fork(), scenario.deadLetterFaults),
    ...(exactlyOnce ? { ledgers: new SimLedgerStore(world, inc, durable.ledgers, durable.bus, rng.fork(), scenario.ledgerFaults, durable.staleFetch, durable.positionFaults) } : {}),
    logger,
    metrics: new Metrics(),
    encoders: refusingEncoders(durable.refused, durable.changes),
    decoders: waitingDecoders(world, inc, durable.seed, durable.schemaFaults),
  });
  // The intervals start() creates are captured so a kill can stop them: a killed process does nothing.
  const intervals: Array<ReturnType<typeof setInterval>> = [];
  const realSetInterval = globalThis.setInterval;
  globalThis.setInterval = (callback: () => void, ms?: number) => {
    const handle = realSetInterval(callback, ms);
    intervals.push(handle);
    return handle;
  };
  try {
    pipeline.start().catch((error: unknown) => {
      if (inc.alive && !stopping.has(inc)) checker.add('crashed', `incarnation ${inc.id}: source run failed: ${String(error)}`);
    });
  } finally {
    globalThis.setInterval = realSetInterval;
  }
  world.onKill((killed) => {
    if (killed === inc) for (const handle of intervals) clearInterval(handle);
  });
  // Operator pauses: each pauses a scope for a while, then lifts it (which re-reads from the committed positions).
  const active = new Map<string, Pause>();
  const apply = (): void => {
    if (inc.alive && !stopping.has(inc)) pipeline.setPauses([...active.values()]);
  };
  life.pauses.forEach((pause, i) => {
    const id = `p${i}`;
    setTimeout(() => {
      world.note(`PAUSE ${JSON.stringify(pause.scope)}`);
      active.set(id, { id, scope: pause.scope, reason: 'sim', by: 'sim', at: Date.now() });
      apply();
      setTimeout(() => {
        world.note(`RESUME ${JSON.stringify(pause.scope)}`);
        active.delete(id);
        apply();
      }, pause.forMs);
    }, pause.at);
  });
  source.admit = backpressure(pipeline, life.maxBufferedBytes, checker, inc.id);
  return pipeline;
}

/**
 * Backpressure from source to sink (docs/design/delivery.md §9): a record that adds to what the
 * destinations that are not parked hold — rows read and the bodies of their inserts in flight —
 * while that is over the memory budget makes the source wait (the handler returns a promise),
 * unless a batch is being re-formed after a rewind (its rows must be read again before anything
 * can drain). One record may cross the budget; the next one waits.
 */
function backpressure(pipeline: Pipeline, budget: number, checker: Checker, incarnation: number): () => ((pending: unknown) => void) | undefined {
  let reported = false;
  const held = (status: PipelineStatus): number => {
    const parked = new Set(status.parkedDestinations);
    let bytes = 0;
    for (const [destination, n] of Object.entries(status.bufferedBytesByDestination)) if (!parked.has(destination)) bytes += n;
    return bytes;
  };
  return () => {
    if (reported) return undefined;
    const before = held(pipeline.status());
    if (before <= budget) return undefined;
    return (pending) => {
      if (pending !== undefined) return;
      const status = pipeline.status();
      if (status.partitions.some((p) => p.replaying > 0)) return;
      const after = held(status);
      if (after <= before) return;
      reported = true;
      checker.add(
        'anomaly',
        `incarnation ${incarnation} took a record (${before} → ${after} bytes held) without waiting while over its memory budget of ${budget}: ${JSON.stringify(status.bufferedBytesByDestination)}`,
      );
    };
  };
}
