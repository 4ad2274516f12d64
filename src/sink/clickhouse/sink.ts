// Owns talking to one ClickHouse cluster over HTTP with the official client: live schema from
// system.columns with the table's deduplication (engine and window, dedup.ts), CREATE TABLE, and
// idempotent inserts (insert_deduplication_token, also into dependent materialized views) of
// pass-through JSONEachRow bodies streamed from the batch's blocks, compressed here (see
// compressedBody). Every failure leaves as a classified WarehouseError.
import { readFileSync } from 'node:fs';
import { pipeline, Readable } from 'node:stream';
import { constants as zlib, createGzip, createZstdCompress, type Gzip, type ZstdCompress } from 'node:zlib';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import type { DestinationConfig } from '../../config/load.ts';
import { destinationTlsIssues } from '../../config/schema.ts';
import { ConfigError } from '../../errors/inserter-error.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { Metrics } from '../../telemetry/metrics.ts';
import type { InsertBatch, InsertResult, Sink, TableRef, TableSchema } from '../types.ts';
import { classifyClickHouseError } from './classify.ts';
import { quoteIdent, renderTableDdl } from './ddl.ts';
import { deduplicationOf, deduplicationQuery, definitionVersion, engineRow, type EngineQueryRow } from './dedup.ts';
import { agreedVersion, clusterFor, replicaVersionsQuery, replicaViewsQuery, viewNames, type ReplicaVersionRow, type ReplicaViewRow } from './replica-versions.ts';
import { DedupWindowWatch } from './window-watch.ts';

interface ColumnRow {
  name: string;
  type: string;
  default_kind: string;
  /** The session's time zone (`timezone()`: the user's session_timezone, else the server's), on every row. */
  timezone: string;
}

export interface ClickHouseSinkOptions {
  /** For the deduplication-window warning (window-watch.ts). */
  readonly logger?: Logger;
  /** For inserter_table_deduplicates and inserter_dedup_window_exceeded_total. */
  readonly metrics?: Metrics;
}

/**
 * The client's TLS options. A client certificate without its key, or without the CA (the client
 * takes mTLS only with one), is refused here too, never silently dropped: the config and the
 * destinations API check it first, so this only guards a destination built some other way.
 */
function tlsOptions(destination: DestinationConfig): { ca_cert: Buffer; cert?: Buffer; key?: Buffer } | undefined {
  const tls = destination.tls;
  if (tls === undefined) return undefined;
  const issues = destinationTlsIssues(tls).map((i) => `destination ${destination.id}: tls.${i.field}: ${i.message}`);
  if (issues.length > 0) throw new ConfigError(issues);
  if (tls.caFile === undefined) return undefined;
  const ca_cert = readFileSync(tls.caFile);
  return tls.certFile !== undefined && tls.keyFile !== undefined ? { ca_cert, cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } : { ca_cert };
}

/**
 * Output chunk of the request-body compressor. The client's own compressor (and zlib's default) emits
 * 16 KiB chunks: a JavaScript callback and a socket write per 16 KiB of compressed body, which cost the
 * main thread about as much as the compression itself (bench/micro.ts: zstd-1 of a 16 MB body).
 */
const COMPRESSED_CHUNK = 1024 * 1024;

/** The request body compressed with the destination's codec, or as is; its Content-Encoding. */
function compressedBody(body: Iterable<Buffer>, codec: 'none' | 'gzip' | 'zstd'): { values: Readable; headers: Record<string, string> | undefined } {
  const source = Readable.from(body, { objectMode: false });
  if (codec === 'none') return { values: source, headers: undefined };
  // zstd level 1 compresses PostHog rows as well as the default level 3 for ~35% less CPU (bench/).
  const compressor: Gzip | ZstdCompress =
    codec === 'zstd' ? createZstdCompress({ chunkSize: COMPRESSED_CHUNK, params: { [zlib.ZSTD_c_compressionLevel]: 1 } }) : createGzip({ chunkSize: COMPRESSED_CHUNK });
  // An aborted or failed request destroys the compressor, which destroys the source: nothing to report here.
  pipeline(source, compressor, () => undefined);
  return { values: compressor, headers: { 'Content-Encoding': codec } };
}

export class ClickHouseSink implements Sink {
  readonly destinationId: string;
  readonly #client: ClickHouseClient;
  readonly #compression: 'none' | 'gzip' | 'zstd';
  readonly #window: DedupWindowWatch;
  /** The cluster whose replicas answer at the URL (replica-versions.ts); none: Cloud's default for Shared engines. */
  readonly #cluster: string | undefined;
  #closing: Promise<void> | undefined;

  constructor(destination: DestinationConfig, options: ClickHouseSinkOptions = {}) {
    this.destinationId = destination.id;
    this.#compression = destination.compression;
    this.#cluster = destination.cluster;
    this.#window = new DedupWindowWatch({ destinationId: destination.id, logger: options.logger, metrics: options.metrics });
    const tls = tlsOptions(destination);
    this.#client = createClient({
      url: destination.url,
      username: destination.user,
      password: destination.password.reveal(),
      database: destination.database,
      request_timeout: destination.requestTimeoutMs,
      max_open_connections: destination.concurrency + 2,
      // Insert bodies are compressed by the sink (compressedBody); other requests are small.
      compression: { request: false, response: false },
      application: 'inserter',
      ...(tls ? { tls } : {}),
      // Progress headers keep a long insert's connection alive through idle-timeout proxies.
      clickhouse_settings: { async_insert: 0, send_progress_in_http_headers: 1, http_headers_progress_interval_ms: '10000' },
    });
  }

  async describe(table: TableRef, signal?: AbortSignal): Promise<TableSchema | undefined> {
    try {
      const read = async <T>(query: string, params: Record<string, string | readonly string[]> = {}): Promise<T[]> => {
        const result = await this.#client.query({ query, query_params: { db: table.database, table: table.table, ...params }, format: 'JSONEachRow', ...(signal ? { abort_signal: signal } : {}) });
        return result.json<T>();
      };
      const [rows, engines] = await Promise.all([
        read<ColumnRow>('SELECT name, type, default_kind, timezone() AS timezone FROM system.columns WHERE database = {db:String} AND table = {table:String} ORDER BY position'),
        read<EngineQueryRow>(deduplicationQuery),
      ]);
      if (rows.length === 0) return undefined;
      const columns = rows.map((r) => ({ name: r.name, type: r.type, defaultKind: r.default_kind }));
      const timezone = rows[0]?.timezone;
      const engine = engines[0];
      // No system.tables row (dropped between the two reads): unknown, the next read decides.
      if (engine === undefined) return { columns, timezone };
      const deduplication = deduplicationOf(table, engineRow(engine));
      this.#window.learn(table, deduplication);
      const cluster = clusterFor(this.#cluster, engine.engine);
      const local = definitionVersion(engine);
      const version = cluster === undefined ? local : await this.#agreedVersion(read, cluster, local, engine.replica);
      return { columns, deduplication, timezone, version };
    } catch (error) {
      throw classifyClickHouseError(error);
    }
  }

  /** The version read from every replica of `cluster` as well (replica-versions.ts). */
  async #agreedVersion(
    read: <T>(query: string, params?: Record<string, string | readonly string[]>) => Promise<T[]>,
    cluster: string,
    local: string | undefined,
    localReplica: string | undefined,
  ): Promise<string | undefined> {
    const rows = await read<ReplicaVersionRow>(replicaVersionsQuery, { cluster });
    const names = viewNames(rows);
    const views = names.length === 0 ? [] : await read<ReplicaViewRow>(replicaViewsQuery, { cluster, views: names });
    return agreedVersion(local, rows, views, localReplica);
  }

  async createTable(table: TableRef, template: string | undefined, signal?: AbortSignal): Promise<void> {
    try {
      await this.#client.command({ query: renderTableDdl(table, template), ...(signal ? { abort_signal: signal } : {}) });
    } catch (error) {
      throw classifyClickHouseError(error);
    }
  }

  async insert(batch: InsertBatch, signal?: AbortSignal): Promise<InsertResult> {
    // An insert of no rows (the delivery's probe whether the table takes inserts at all) writes no
    // block: nothing for the deduplication window to remember or count.
    const watched = batch.rows > 0;
    if (watched) this.#window.beforeAttempt(batch.table, batch.token);
    const { values, headers } = compressedBody(batch.body, this.#compression);
    try {
      const result = await this.#client.exec({
        query: `INSERT INTO ${quoteIdent(batch.table.database)}.${quoteIdent(batch.table.table)}${batch.columns === undefined ? '' : ` (${batch.columns.map(quoteIdent).join(', ')})`} FORMAT ${batch.format}`,
        values,
        ...(headers ? { http_headers: headers } : {}),
        clickhouse_settings: {
          insert_deduplication_token: batch.token,
          insert_deduplicate: 1,
          // Materialized views fed by the table deduplicate the retried block too (their own tokens).
          deduplicate_blocks_in_dependent_materialized_views: 1,
          input_format_skip_unknown_fields: 1,
          input_format_defaults_for_omitted_fields: 1,
          input_format_null_as_default: 1,
          async_insert: 0,
        },
        ...(signal ? { abort_signal: signal } : {}),
      });
      // The response body of an INSERT is empty; drain it so the socket returns to the pool.
      for await (const _ of result.stream) void _;
      const written = result.summary?.written_rows;
      if (watched) this.#window.succeeded(batch.table, batch.token);
      return { writtenRows: written === undefined ? undefined : Number(written) };
    } catch (error) {
      values.destroy(); // a request that failed before reading its body leaves it unread
      const failure = classifyClickHouseError(error);
      if (watched) this.#window.failed(batch.table, batch.token, failure.errorClass);
      throw failure;
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#client.close();
    return this.#closing;
  }
}
