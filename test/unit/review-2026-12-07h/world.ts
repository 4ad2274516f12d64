// Test helper of review 2026-12-07h (session 14: a queued batch reserves its rows' size for its
// bodies, Batch.bodyAllowance): a pipeline over the in-memory world of test/helpers/pipeline-world.ts
// whose memory budget total and per-destination shares can be read (and are checked never to go
// negative), with a sink per destination that the test can fail, hang and release.
import type { Config, DestinationConfig } from '../../../src/config/load.ts';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { AbortedError } from '../../../src/errors/inserter-error.ts';
import { Pipeline } from '../../../src/pipeline/pipeline.ts';
import type { DestinationProvider } from '../../../src/route/provider.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import type { InsertBatch, InsertResult, Sink } from '../../../src/sink/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { Metrics } from '../../../src/telemetry/metrics.ts';
import { MemoryLedgerStore } from '../../../src/ack/ledger.ts';
import { event, FedSource, HeldDeadLetters, TokenWarehouse, until, worldConfig } from '../../helpers/pipeline-world.ts';

const fastRetries = { baseMs: 5, capMs: 20, pauseMs: 20 };
export const errorPolicy = { defaults: { transient_network: fastRetries, unknown_server_error: fastRetries } };

/** Padding that makes a row's bus size well above its body (the table keeps team_id and uuid only). */
export const PAD = 200;

export interface Run {
  readonly pipeline: Pipeline;
  readonly source: FedSource;
  readonly letters: HeldDeadLetters;
  readonly metrics: Metrics;
  /** The budget's total now (folded into `lowest` and `peak`). */
  total(): number;
  held(destination: string): number;
  parked(): readonly string[];
  lowest: number;
  peak: number;
}

export function run(config: Config, sinkFactory: (d: DestinationConfig) => Sink, options: { provider?: DestinationProvider; source?: FedSource; partitions?: number[] } = {}): Run {
  const source = options.source ?? new FedSource({ partitions: options.partitions ?? [0] });
  const metrics = new Metrics();
  const letters = new HeldDeadLetters();
  const pipeline = new Pipeline({
    config,
    source,
    sinkFactory,
    deadLetters: letters,
    ledgers: new MemoryLedgerStore(),
    ...(options.provider === undefined ? {} : { provider: options.provider }),
    logger: createLogger(process.env.TEST_LOG ?? 'silent'),
    metrics,
  });
  void pipeline.start();
  source.assign(pipeline, options.partitions ?? [0]);
  const r: Run = {
    pipeline,
    source,
    letters,
    metrics,
    lowest: 0,
    peak: 0,
    total: () => {
      const t = metrics.bufferedBytesReader?.() ?? Number.NaN;
      r.lowest = Math.min(r.lowest, t);
      r.peak = Math.max(r.peak, t);
      return t;
    },
    held: (destination) => pipeline.status().bufferedBytesByDestination[destination] ?? 0,
    parked: () => pipeline.status().parkedDestinations,
  };
  return r;
}

/** Per destination: fail its inserts (transient) while `failing`, or hang them while `hanging` until released. */
export class Control {
  readonly failing = new Set<string>();
  readonly hanging = new Set<string>();
  readonly calls: Array<{ destination: string; rows: number; bytes: number }> = [];
  readonly #held: Array<() => void> = [];

  sinks(warehouse: TokenWarehouse): (d: DestinationConfig) => Sink {
    return (d) => {
      const inner = warehouse.sink(d);
      return {
        ...inner,
        insert: async (batch: InsertBatch, signal?: AbortSignal): Promise<InsertResult> => {
          this.calls.push({ destination: d.id, rows: batch.rows, bytes: batch.bytes });
          if (this.failing.has(d.id)) throw new WarehouseError(ErrorClasses.transientNetwork, 'connect ECONNRESET', undefined, undefined);
          if (this.hanging.has(d.id)) {
            await new Promise<void>((resolve, reject) => {
              this.#held.push(resolve);
              signal?.addEventListener('abort', () => reject(new AbortedError('insert aborted')), { once: true });
            });
          }
          return inner.insert(batch, signal);
        },
      };
    };
  }

  get heldCount(): number {
    return this.#held.length;
  }

  release(): void {
    for (const r of this.#held.splice(0)) r();
  }
}

/** The budget size of one row of `event(i, team, PAD)` and its body's size, measured with an unlimited budget. */
export async function measure(): Promise<{ row: number; body: number }> {
  const warehouse = new TokenWarehouse();
  const control = new Control();
  const world = run(worldConfig({ teams: { map: { 1: 'd1' } }, batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 60_000 }, errorPolicy }), control.sinks(warehouse));
  try {
    await world.source.append([event(0, 1, PAD)]);
    await until(() => world.total() > 0, 'one row held');
    const row = world.total();
    await world.source.append(Array.from({ length: 9 }, (_, i) => event(1 + i, 1, PAD)));
    await until(() => world.source.committed === 10n, 'measured');
    return { row, body: (control.calls[0]?.bytes ?? 0) / 10 };
  } finally {
    await world.pipeline.destroy();
  }
}

export const rows = (from: number, count: number, team: number | undefined, partition = 0) => Array.from({ length: count }, (_, i) => ({ ...event(from + i, team, PAD), partition }));

export const settle = (ms = 30): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
