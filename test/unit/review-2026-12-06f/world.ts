// Test helper of review 2026-12-06f (d920a8f: stalled destinations parked): a pipeline over the
// in-memory world of test/helpers/pipeline-world.ts whose memory budget total can be read
// (Metrics.bufferedBytesReader), with its peak sampled by the tests while they wait, and a sink
// whose inserts and schema reads per destination the test can hang and release.
import type { MemoryLedgerStore } from '../../../src/ack/ledger.ts';
import type { Config, DestinationConfig } from '../../../src/config/load.ts';
import { AbortedError } from '../../../src/errors/inserter-error.ts';
import { Pipeline } from '../../../src/pipeline/pipeline.ts';
import type { DestinationProvider } from '../../../src/route/provider.ts';
import type { InsertBatch, InsertResult, Sink, TableRef, TableSchema } from '../../../src/sink/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { Metrics } from '../../../src/telemetry/metrics.ts';
import { MemoryLedgerStore as Ledgers } from '../../../src/ack/ledger.ts';
import { FedSource, HeldDeadLetters, worldConfig, type TokenWarehouse } from '../../helpers/pipeline-world.ts';

const fastRetries = { baseMs: 5, capMs: 20, pauseMs: 20 };
export const errorPolicy = { defaults: { transient_network: fastRetries, unknown_server_error: fastRetries } };

/**
 * d1 healthy and d2 stuck after 50 ms on the wire, 10-row batches, the given shared budget; teams 1
 * and 2 mapped to them unless `mapped` is false (a lookup provider answers instead).
 */
export function twoDestinations(maxBufferedBytes: number, extra: Parameters<typeof worldConfig>[0] = {}, mapped = true): Config {
  return worldConfig({
    destinations: [
      { id: 'd1', url: 'http://localhost:8123' },
      { id: 'd2', url: 'http://localhost:8124', stalledAfterMs: 50 },
    ],
    ...(mapped ? { teams: { map: { 1: 'd1', 2: 'd2' } } } : {}),
    batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 },
    maxBufferedBytes,
    errorPolicy,
    ...extra,
  });
}

export interface Run {
  readonly pipeline: Pipeline;
  readonly source: FedSource;
  readonly letters: HeldDeadLetters;
  /** The budget's total now (also folded into `peak`). */
  total(): number;
  peak: number;
  /** Destinations seen parked at any sample (total() and parked() sample). */
  readonly everParked: Set<string>;
  parked(): readonly string[];
  held(destination: string): number;
}

export function run(config: Config, sinkFactory: (d: DestinationConfig) => Sink, options: { ledgers?: MemoryLedgerStore; provider?: DestinationProvider } = {}): Run {
  const source = new FedSource();
  const metrics = new Metrics();
  const letters = new HeldDeadLetters();
  const pipeline = new Pipeline({
    config,
    source,
    sinkFactory,
    deadLetters: letters,
    ledgers: options.ledgers ?? new Ledgers(),
    ...(options.provider === undefined ? {} : { provider: options.provider }),
    logger: createLogger(process.env.TEST_LOG ?? 'silent'),
    metrics,
  });
  void pipeline.start();
  source.assign(pipeline, [0]);
  const everParked = new Set<string>();
  const r: Run = {
    pipeline,
    source,
    letters,
    peak: 0,
    everParked,
    total: () => {
      const t = metrics.bufferedBytesReader?.() ?? Number.NaN;
      r.peak = Math.max(r.peak, t);
      for (const d of pipeline.status().parkedDestinations) everParked.add(d);
      return t;
    },
    parked: () => {
      const p = pipeline.status().parkedDestinations;
      for (const d of p) everParked.add(d);
      return p;
    },
    held: (destination) => pipeline.status().bufferedBytesByDestination[destination] ?? 0,
  };
  return r;
}

/** Hangs until `signal` aborts (the pipeline's hard stop), like a server that took the request and sits on it. */
export const hang = (signal?: AbortSignal): Promise<never> => new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(new AbortedError('request aborted')), { once: true }));

/** Per destination: while `hangInserts`/`hangDescribes` holds it, its inserts/schema reads wait (until released or the hard stop). */
export class Gate {
  readonly hangInserts = new Set<string>();
  readonly hangDescribes = new Set<string>();
  /** Extra latency of every insert per destination (ms): a slow but healthy server. */
  readonly latency = new Map<string, number>();
  readonly #waiting: Array<() => void> = [];
  insertsOnWire = new Map<string, number>();
  describesOnWire = new Map<string, number>();

  sinks(warehouse: TokenWarehouse, insert?: (d: DestinationConfig, inner: Sink, batch: InsertBatch, signal?: AbortSignal) => Promise<InsertResult>): (d: DestinationConfig) => Sink {
    return (d) => {
      const inner = warehouse.sink(d);
      return {
        ...inner,
        describe: async (table: TableRef, signal?: AbortSignal): Promise<TableSchema | undefined> => {
          if (this.hangDescribes.has(d.id)) await this.#wait(d.id, this.describesOnWire, signal);
          return inner.describe(table, signal);
        },
        insert: async (batch: InsertBatch, signal?: AbortSignal): Promise<InsertResult> => {
          const latency = this.latency.get(d.id) ?? 0;
          if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
          if (this.hangInserts.has(d.id)) await this.#wait(d.id, this.insertsOnWire, signal);
          return insert === undefined ? inner.insert(batch, signal) : insert(d, inner, batch, signal);
        },
      };
    };
  }

  /** Every hung request answers (the server is back). */
  release(): void {
    this.hangInserts.clear();
    this.hangDescribes.clear();
    for (const w of this.#waiting.splice(0)) w();
  }

  #wait(id: string, count: Map<string, number>, signal?: AbortSignal): Promise<void> {
    count.set(id, (count.get(id) ?? 0) + 1);
    return new Promise((resolve, reject) => {
      const done = (): void => {
        count.set(id, (count.get(id) ?? 1) - 1);
        resolve();
      };
      this.#waiting.push(done);
      signal?.addEventListener('abort', () => reject(new AbortedError('request aborted')), { once: true });
    });
  }
}
