// Owns which sink adapter a destination gets, by its `kind`. The BigQuery adapter is loaded on its
// first call, not at start-up: its client library is large, and a ClickHouse-only process (the
// common case) should not pay for compiling it at every start or restart.
import type { DestinationConfig } from '../config/load.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { ClickHouseSink } from './clickhouse/sink.ts';
import type { InsertBatch, InsertResult, Sink, TableRef, TableSchema } from './types.ts';

export interface SinkOptions {
  readonly logger?: Logger;
  readonly metrics?: Metrics;
}

export function createSink(destination: DestinationConfig, options: SinkOptions = {}): Sink {
  if (destination.kind === 'bigquery') return new LazySink(destination.id, async () => new (await import('./bigquery/sink.ts')).BigQuerySink(destination, options));
  return new ClickHouseSink(destination, options);
}

/** A sink whose adapter module is imported when it is first used. */
class LazySink implements Sink {
  readonly destinationId: string;
  readonly #load: () => Promise<Sink>;
  #sink: Promise<Sink> | undefined;

  constructor(destinationId: string, load: () => Promise<Sink>) {
    this.destinationId = destinationId;
    this.#load = load;
  }

  #get(): Promise<Sink> {
    // A failed import (or constructor) is not cached: the next call tries again and reports it again.
    const sink = (this.#sink ??= this.#load());
    sink.catch(() => {
      if (this.#sink === sink) this.#sink = undefined;
    });
    return sink;
  }

  async describe(table: TableRef, signal?: AbortSignal): Promise<TableSchema | undefined> {
    return await (await this.#get()).describe(table, signal);
  }

  async createTable(table: TableRef, template: string | undefined, signal?: AbortSignal): Promise<void> {
    await (await this.#get()).createTable(table, template, signal);
  }

  async insert(batch: InsertBatch, signal?: AbortSignal): Promise<InsertResult> {
    return await (await this.#get()).insert(batch, signal);
  }

  async close(): Promise<void> {
    const sink = this.#sink;
    this.#sink = undefined;
    if (sink !== undefined) await (await sink.catch(() => undefined))?.close();
  }
}
