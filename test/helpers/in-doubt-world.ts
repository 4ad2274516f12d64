// The world the reviews of inserts in doubt drive (test/unit/review-2026-12-06b, -c, -d): team 8 →
// d1, batches of 10 rows, the live schema read again at once, fast retries; records of team 8; the
// table's one ALTER (a column `altered`) whose presence a test's refusals depend on; a sink whose
// inserts are answered as a script says; and a pipeline process on a shared ledger store.
import type { MemoryLedgerStore } from '../../src/ack/ledger.ts';
import type { Config, DestinationConfig } from '../../src/config/load.ts';
import type { EncoderFactory } from '../../src/encode/types.ts';
import { ErrorClasses } from '../../src/errors/classes.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { WarehouseError } from '../../src/sink/errors.ts';
import type { InsertBatch, Sink } from '../../src/sink/types.ts';
import type { SourceRecord } from '../../src/source/types.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { event, FedSource, TOPIC, worldConfig, type HeldDeadLetters, type TokenWarehouse } from './pipeline-world.ts';

export const fastRetries = { baseMs: 5, capMs: 20, pauseMs: 20 };

export const inDoubtConfig = worldConfig({
  teams: { map: { 8: 'd1' } },
  schemaRefreshMs: 1,
  batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 },
  errorPolicy: { defaults: { transient_network: fastRetries, unknown_server_error: fastRetries, row_data: { baseMs: 5, capMs: 20 } } },
});

/** Records 0..n-1 of team 8 (uuids u0..). */
export const teamRecords = (n: number): SourceRecord[] => Array.from({ length: n }, (_, i) => event(i, 8));

export const alteredColumn = { name: 'altered', type: 'UInt8', defaultKind: 'DEFAULT' };

export const isAltered = (w: TokenWarehouse): boolean => w.columns.some((c) => c.name === 'altered');

export type Outcome = 'pass' | 'storeThenLose' | 'lose' | 'hang' | 'storeThenHang';

/**
 * A sink whose n-th insert of rows (probes, with no rows, always pass) is answered as `script` says:
 * stored or not, answered with a network error, or never answered (until the process is killed).
 * `script` runs before the warehouse sees the insert: it may alter the schema first.
 */
export function scripted(w: TokenWarehouse, script: (n: number, batch: InsertBatch) => Outcome): { factory: (d: DestinationConfig) => Sink; sent: InsertBatch[] } {
  const sent: InsertBatch[] = [];
  const factory = (d: DestinationConfig): Sink => {
    const inner = w.sink(d);
    return {
      ...inner,
      insert: async (batch: InsertBatch, signal?: AbortSignal) => {
        if (batch.rows === 0) return inner.insert(batch, signal);
        sent.push(batch);
        const outcome = script(sent.length, batch);
        const hang = (): Promise<never> => new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(new Error('killed')), { once: true }));
        if (outcome === 'hang') return hang();
        if (outcome === 'lose') throw new WarehouseError(ErrorClasses.transientNetwork, 'connect ECONNRESET', undefined, undefined);
        const result = await inner.insert(batch, signal);
        if (outcome === 'storeThenLose') throw new WarehouseError(ErrorClasses.transientNetwork, 'socket hang up (stored)', undefined, undefined);
        if (outcome === 'storeThenHang') return hang();
        return result;
      },
    };
  };
  return { factory, sent };
}

export interface Process {
  readonly pipeline: Pipeline;
  readonly source: FedSource;
}

/** A pipeline owning partition 0 of the topic, on `ledgers` (shared between processes: a crash and a takeover). */
export function startProcess(parts: { config?: Config; sink: (d: DestinationConfig) => Sink; deadLetters: HeldDeadLetters; ledgers: MemoryLedgerStore; encoders?: EncoderFactory }): Process {
  const source = new FedSource();
  const pipeline = new Pipeline({
    config: parts.config ?? inDoubtConfig,
    source,
    sinkFactory: parts.sink,
    deadLetters: parts.deadLetters,
    ledgers: parts.ledgers,
    ...(parts.encoders === undefined ? {} : { encoders: parts.encoders }),
    logger: createLogger(process.env.TEST_LOG ?? 'silent'),
    metrics: new Metrics(),
  });
  void pipeline.start();
  pipeline.onAssigned([{ topic: TOPIC, partition: 0 }]);
  return { pipeline, source };
}
