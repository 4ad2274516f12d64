// Owns the live schema of every (destination, table): read from the warehouse, cached for
// schemaRefreshMs, refreshed on demand after a schema error, and the lightweight CREATE TABLE IF
// NOT EXISTS when a mapped table is missing. Existing tables are never altered. It also guards
// exactly-once: a table that cannot deduplicate inserts by token is refused (no_deduplication)
// unless its route says `exactlyOnce: false`, and a refused table is re-read at every attempt, so
// an operator's DDL fix is picked up without a restart.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { rowEncoderFor, type EncoderFactory, type RowEncoder } from '../encode/types.ts';
import type { Config, RouteConfig } from '../config/load.ts';
import { ErrorClasses } from '../errors/classes.ts';
import { WarehouseError } from '../sink/errors.ts';
import type { ColumnInfo, Deduplication, Sink, TableRef } from '../sink/types.ts';
import type { Logger } from '../telemetry/logger.ts';

/** A table's row encoder and the fingerprint of the live schema it was built for. */
export interface LiveEncoder {
  readonly encoder: RowEncoder;
  /**
   * Identifies what decides a row's verdict: the columns (name, type, default kind), the time zone,
   * the route's encoding, the encoder's format, and the table's definition version (which moves on
   * every change, so a change and its revert between two reads differ from no change). Two attempts
   * under the same fingerprint get the same verdict for the same rows (docs/design/delivery.md §11):
   * a range refused now, in doubt after an earlier attempt under the same fingerprint, was refused
   * then too.
   */
  readonly fingerprint: string;
}

interface Entry extends LiveEncoder {
  deduplication: Deduplication | undefined;
  loadedAt: number;
}

/** Whether exactly-once is enforced for `route` (else it is at-least-once by configuration). */
export function exactlyOnceFor(config: Config, route: RouteConfig): boolean {
  return config.exactlyOnce.enabled && route.exactlyOnce;
}

export class TableSchemas {
  readonly #entries = new Map<string, Entry>();
  readonly #loading = new Map<string, { readonly promise: Promise<Entry>; readonly generation: number }>();
  /**
   * Per table, bumped by invalidate(): a read started before it (by another lane) answers its own
   * callers but is neither cached nor joined, so the fresh read a refusal asks for is one that
   * starts after the refusal (review 2026-12-07b, finding 2: joining an older read in flight gave
   * the schema from before an ALTER, equal to the recorded one, and the range was split).
   */
  readonly #generations = new Map<string, number>();
  /** Tables accepted at-least-once that were already warned about (one warning per table). */
  readonly #warned = new Set<string>();
  readonly #config: Config;
  readonly #logger: Logger;
  readonly #encoders: EncoderFactory;

  constructor(config: Config, logger: Logger, encoders: EncoderFactory = rowEncoderFor) {
    this.#config = config;
    this.#logger = logger;
    this.#encoders = encoders;
  }

  /** The row encoder for the table's live schema (built once per schema read), if the table is admitted. */
  async encoder(sink: Sink, route: RouteConfig, table: TableRef, signal: AbortSignal): Promise<RowEncoder> {
    return (await this.live(sink, route, table, signal)).encoder;
  }

  /** The row encoder with its schema's fingerprint, if the table is admitted. */
  async live(sink: Sink, route: RouteConfig, table: TableRef, signal: AbortSignal): Promise<LiveEncoder> {
    const key = `${sink.destinationId}\u0000${table.database}\u0000${table.table}`;
    const entry = this.#entries.get(key);
    if (entry !== undefined && Date.now() - entry.loadedAt < this.#config.schemaRefreshMs) return this.#admit(key, sink, route, table, entry);
    const generation = this.#generations.get(key) ?? 0;
    let loading = this.#loading.get(key);
    if (loading === undefined || loading.generation !== generation) {
      const current = (): boolean => (this.#generations.get(key) ?? 0) === generation;
      const promise = this.#load(sink, route, table, signal).then(
        (loaded) => {
          if (this.#loading.get(key)?.promise === promise) this.#loading.delete(key);
          if (!current()) return loaded; // invalidated while it was read: for its own callers only
          this.#entries.set(key, loaded);
          if (loaded.deduplication?.byToken !== false) this.#warned.delete(key);
          return loaded;
        },
        (error: unknown) => {
          if (this.#loading.get(key)?.promise === promise) this.#loading.delete(key);
          throw error;
        },
      );
      loading = { promise, generation };
      this.#loading.set(key, loading);
    }
    return this.#admit(key, sink, route, table, await loading.promise);
  }

  /** The encoder, unless the table cannot deduplicate and the route wants exactly-once. */
  #admit(key: string, sink: Sink, route: RouteConfig, table: TableRef, entry: Entry): LiveEncoder {
    const dedup = entry.deduplication;
    // Unknown (a sink that does not report it, like the simulation's in-memory warehouse, which
    // always deduplicates) is allowed: a refusal must name what is wrong, and nothing is known wrong.
    if (dedup === undefined || dedup.byToken || !this.#config.exactlyOnce.enabled) return entry;
    const name = `${table.database}.${table.table}`;
    if (!route.exactlyOnce) {
      if (!this.#warned.has(key)) {
        this.#warned.add(key);
        this.#logger.warn(
          { destination: sink.destinationId, table: name, route: route.name, engine: dedup.engine, setting: dedup.setting, reason: dedup.reason },
          'table cannot deduplicate inserts by token; the route says exactlyOnce: false, so it is at-least-once: a retry or replay may insert rows twice',
        );
      }
      return entry;
    }
    // Not kept: the next attempt re-reads the table, so a fixed setting is seen at once.
    this.#entries.delete(key);
    throw new WarehouseError(
      ErrorClasses.noDeduplication,
      `table ${name} on ${sink.destinationId} cannot deduplicate inserts by token, so a retry or replay could insert rows twice: ${dedup.reason ?? dedup.engine}; or set exactlyOnce: false on route "${route.name}" to accept at-least-once`,
      undefined,
      undefined,
    );
  }

  invalidate(sink: Sink, table: TableRef): void {
    const key = `${sink.destinationId}\u0000${table.database}\u0000${table.table}`;
    this.#entries.delete(key);
    this.#generations.set(key, (this.#generations.get(key) ?? 0) + 1);
  }

  async #load(sink: Sink, route: RouteConfig, table: TableRef, signal: AbortSignal): Promise<Entry> {
    let schema = await sink.describe(table, signal);
    if (schema === undefined && route.createTable.enabled) {
      const template = route.createTable.ddlFile ? await readFile(resolve(this.#config.baseDir, route.createTable.ddlFile), 'utf8') : undefined;
      this.#logger.info({ destination: sink.destinationId, table: `${table.database}.${table.table}` }, 'creating missing table');
      await sink.createTable(table, template, signal);
      schema = await sink.describe(table, signal);
    }
    if (schema === undefined) {
      throw new WarehouseError(ErrorClasses.missingObject, `table ${table.database}.${table.table} does not exist`, 60, undefined);
    }
    const { encoder, fallback } = this.#encoders(schema.columns, route.encoding, { timezone: schema.timezone });
    if (fallback !== undefined && route.encoding === 'typed') {
      this.#logger.warn(
        { destination: sink.destinationId, table: `${table.database}.${table.table}`, route: route.name, reason: fallback },
        'typed encoding cannot be exact for this table; its rows are sent pass-through (JSONEachRow)',
      );
    }
    return { encoder, fingerprint: fingerprintOf(schema.columns, schema.timezone, schema.version, route.encoding, encoder.format), deduplication: schema.deduplication, loadedAt: Date.now() };
  }
}

function fingerprintOf(columns: readonly ColumnInfo[], timezone: string | undefined, version: string | undefined, encoding: string, format: string): string {
  const hash = createHash('sha256');
  hash.update(`${encoding}\u0000${format}\u0000${timezone ?? ''}\u0000${version ?? ''}`);
  for (const c of columns) hash.update(`\u0001${c.name}\u0000${c.type}\u0000${c.defaultKind}`);
  return hash.digest('base64url').slice(0, 16);
}
