// Owns one BigQuery destination (a project, its datasets) behind the Sink contract: a table's live
// schema from tables.get, CREATE TABLE from a route's DDL template as a query job, and idempotent
// inserts — each one a load job of the batch's JSON lines under job ids derived from its token,
// looked up before anything is loaded (jobs.ts, docs/design/bigquery.md). Credentials: the
// destination's key file, else its password as an OAuth access token, else Application Default
// Credentials (credentials.ts). Every failure leaves as a classified WarehouseError (classify.ts),
// an abort as an AbortedError; a failure after which the token's job may exist is
// unknown_insert_status unless what happened is known (classifyMaybeLanded). Jobs are looked up in
// the configured location, else the dataset's (learned once per dataset), and waited for in their own.
import { randomUUID } from 'node:crypto';
import type { DestinationConfig } from '../../config/load.ts';
import { ErrorClasses } from '../../errors/classes.ts';
import { AbortedError, ConfigError } from '../../errors/inserter-error.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { Metrics } from '../../telemetry/metrics.ts';
import { WarehouseError } from '../errors.ts';
import type { InsertBatch, InsertResult, Sink, TableRef, TableSchema } from '../types.ts';
import { abortable, BigQueryApi, locationOf, type DatasetResource, type JobResource, type LoadConfiguration } from './api.ts';
import { classifyBigQueryError, classifyJobFailure, classifyMaybeLanded, isDuplicate, isDuplicateJob, isLastingRefusal, slim, type JobCall } from './classify.ts';
import { bigQueryClient, type BigQueryCredentials } from './credentials.ts';
import { baseJobId, chainJobId, latestJob, outcomeOf, waitDone } from './jobs.ts';
import { renderTableDdl, tableSchemaOf } from './schema.ts';

export interface BigQuerySinkOptions {
  /** Loads that find their token's job already there (a retry, a replay, a fenced owner) are logged. */
  readonly logger?: Logger;
  /** Accepted like ClickHouseSink's; nothing BigQuery-specific is measured yet. */
  readonly metrics?: Metrics;
}

/** Uploads of a job id that another attempt created meanwhile, before the id is taken to be unreadable. */
const DUPLICATE_ROUNDS = 3;

export class BigQuerySink implements Sink {
  readonly destinationId: string;
  readonly #credentials: BigQueryCredentials;
  readonly #project: string;
  readonly #location: string | undefined;
  readonly #timeoutMs: number;
  readonly #logger: Logger | undefined;
  /** The client, made on first use (a key file is read then); a failed attempt is not kept. */
  #api: Promise<BigQueryApi> | undefined;
  /**
   * Without bigquery.location: each dataset's location, as datasets.get or tables.get said it (null:
   * it could not be learned — refused, or not reported — and jobs are looked up without one).
   */
  readonly #datasetLocations = new Map<string, string | null>();
  /** Values cut from every error text kept (the access token, when the password is one). */
  readonly #secrets: readonly string[];
  /** Aborted by close(): calls in flight end at once (there is no connection pool of our own to close). */
  readonly #closed = new AbortController();

  constructor(destination: DestinationConfig, options: BigQuerySinkOptions = {}) {
    this.destinationId = destination.id;
    if (destination.kind !== 'bigquery' || destination.bigquery === undefined) {
      throw new ConfigError([`destination ${destination.id}: a BigQuery sink needs kind: bigquery and bigquery.project (kind is ${destination.kind})`]);
    }
    const { project, location, credentialsFile } = destination.bigquery;
    this.#project = project;
    this.#location = location;
    this.#credentials = { project, url: destination.url, location, credentialsFile, password: destination.password, timeoutMs: destination.requestTimeoutMs };
    this.#timeoutMs = destination.requestTimeoutMs;
    const token = destination.password.reveal();
    this.#secrets = credentialsFile === undefined && token !== '' ? [token] : [];
    this.#logger = options.logger;
  }

  /** The shared client, made with the sink's own signal (close()); `signal` ends only this caller's wait for it. */
  #connect(signal: AbortSignal): Promise<BigQueryApi> {
    const api = (this.#api ??= bigQueryClient(this.#credentials, this.#closed.signal).then(
      (client) => new BigQueryApi({ client, project: this.#project, location: this.#location, timeoutMs: this.#timeoutMs }),
    ));
    api.catch(() => {
      if (this.#api === api) this.#api = undefined;
    });
    return abortable(api, signal, `connecting to BigQuery destination ${this.destinationId}`);
  }

  async describe(table: TableRef, signal?: AbortSignal): Promise<TableSchema | undefined> {
    const call = this.#signal(signal);
    try {
      const resource = await (await this.#connect(call)).getTable(table.database, table.table, call);
      if (resource === undefined) return undefined;
      const location = locationOf(resource.location);
      if (this.#location === undefined && location !== undefined) this.#datasetLocations.set(table.database, location);
      return tableSchemaOf(resource);
    } catch (error) {
      throw this.#failure(error, signal);
    }
  }

  async createTable(table: TableRef, template: string | undefined, signal?: AbortSignal): Promise<void> {
    const statement = renderTableDdl(table, template);
    const call = this.#signal(signal);
    // A fresh id: the statement is CREATE … IF NOT EXISTS, so running it again is harmless.
    const jobId = `inserter_ddl_${randomUUID().replaceAll('-', '')}`;
    try {
      const api = await this.#connect(call);
      const created = await api.insertQueryJob(jobId, statement, call);
      const done = await waitDone(api, jobId, created, this.#location, this.#timeoutMs, call);
      const outcome = outcomeOf(done);
      // "Already exists" is what this call wants: another replica made the table since the core
      // found it missing (or the template has no IF NOT EXISTS).
      if (outcome.state === 'failed' && outcome.error.reason !== 'duplicate') throw classifyJobFailure(done, undefined, undefined, this.#secrets);
    } catch (error) {
      // The emulator refuses even CREATE TABLE IF NOT EXISTS of an existing table, as an HTTP 409.
      if (isDuplicate(error)) return;
      throw this.#failure(error, signal);
    }
  }

  async insert(batch: InsertBatch, signal?: AbortSignal): Promise<InsertResult> {
    if (batch.format !== 'JSONEachRow') {
      // Unreachable from a route: the typed encoder covers ClickHouse's types only, so a BigQuery
      // table's rows fall back to JSONEachRow (encode/types.ts). This guards anything else.
      throw new ConfigError([`destination ${this.destinationId}: BigQuery loads JSON lines (format JSONEachRow), not ${batch.format}; use encoding: passthrough`]);
    }
    const call = this.#signal(signal);
    try {
      // The empty insert the delivery probes a destination with: a load job would spend the table's
      // daily load-job quota on every probe, so it asks whether the table is there and readable.
      if (batch.rows === 0) {
        const table = await (await this.#connect(call)).getTable(batch.table.database, batch.table.table, call);
        if (table === undefined) throw new WarehouseError(ErrorClasses.missingObject, `table ${batch.table.database}.${batch.table.table} does not exist`, undefined, undefined);
        return { writtenRows: 0 };
      }
      return await this.#load(await this.#connect(call), batch, call);
    } catch (error) {
      throw this.#failure(error, signal, batch.body);
    }
  }

  /**
   * One insert: the outcome of the token's job when it has one, else a new load job (jobs.ts). A
   * failure of a call after which the token's job may exist (the lookup, the upload, the wait)
   * leaves through #maybeLanded: ambiguous unless known.
   */
  async #load(api: BigQueryApi, batch: InsertBatch, signal: AbortSignal): Promise<InsertResult> {
    const { database: dataset, table } = batch.table;
    const base = baseJobId(this.#project, dataset, table, batch.token);
    const location = await this.#maybeLanded('datasets.get', signal, batch.body, () => this.#locationOf(api, dataset, signal));
    for (let round = 1; ; round++) {
      const latest = await this.#maybeLanded('jobs.get', signal, batch.body, () => latestJob(api, base, location, signal));
      if (latest.job !== undefined) {
        const jobId = chainJobId(base, latest.index);
        const before = outcomeOf(latest.job);
        if (before.state === 'succeeded') {
          this.#logger?.info({ destination: this.destinationId, table: `${dataset}.${table}`, job: jobId }, 'insert token was loaded before: not loading again');
          return { writtenRows: before.rows };
        }
        // Another attempt of this token is loading it (a retry whose predecessor's reply was lost, a
        // fenced owner): its outcome is this insert's.
        const running = latest.job;
        if (before.state === 'running')
          return this.#result(jobId, await this.#maybeLanded('jobs.get', signal, batch.body, () => waitDone(api, jobId, running, location, this.#timeoutMs, signal)), batch.body);
        // It failed, and a failed load job loaded nothing: load again under the chain's next id.
        this.#logger?.info({ destination: this.destinationId, table: `${dataset}.${table}`, job: jobId, reason: before.error.reason }, 'the previous load of this insert token failed: loading again');
      }
      const jobId = chainJobId(base, latest.index + 1);
      let created: JobResource;
      try {
        created = await api.uploadLoadJob(jobId, location, this.#loadConfiguration(dataset, table), batch.body, signal);
      } catch (error) {
        if (!isDuplicateJob(error)) throw this.#ambiguous(error, 'upload', signal, batch.body);
        // Another attempt created this id since our lookup: its job is this insert's; look again.
        if (round < DUPLICATE_ROUNDS) continue;
        throw new WarehouseError(
          ErrorClasses.unknown,
          `load job ${jobId} exists but jobs.get does not find it; is bigquery.location of destination ${this.destinationId} the dataset's location?`,
          undefined,
          slim(error, this.#secrets),
        );
      }
      return this.#result(jobId, await this.#maybeLanded('jobs.get', signal, batch.body, () => waitDone(api, jobId, created, location, this.#timeoutMs, signal)), batch.body);
    }
  }

  /** `call()`, whose failure (the token's job may exist meanwhile) is classified by classifyMaybeLanded. */
  async #maybeLanded<T>(kind: JobCall, signal: AbortSignal, body: readonly Buffer[], call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.#ambiguous(error, kind, signal, body);
    }
  }

  /** An abort stays one (#failure tells it); anything else as classifyMaybeLanded says. */
  #ambiguous(error: unknown, kind: JobCall, signal: AbortSignal | undefined, body: readonly Buffer[]): unknown {
    if (error instanceof AbortedError || signal?.aborted === true || this.#closed.signal.aborted) return error;
    return classifyMaybeLanded(error, kind, body, this.#secrets);
  }

  /**
   * Where the dataset's jobs run: bigquery.location, else the dataset's location (tables.get told
   * it, or datasets.get). Undefined (look up without one, as BigQuery allows for US and EU) when
   * the dataset is not there (the upload then says so) or refuses to say (a role without
   * bigquery.datasets.get): remembered, not asked again.
   */
  async #locationOf(api: BigQueryApi, dataset: string, signal: AbortSignal): Promise<string | undefined> {
    if (this.#location !== undefined) return this.#location;
    const known = this.#datasetLocations.get(dataset);
    if (known !== undefined) return known ?? undefined;
    let resource: DatasetResource | undefined;
    try {
      resource = await api.getDataset(dataset, signal);
    } catch (error) {
      if (signal.aborted || !isLastingRefusal(error)) throw error;
      this.#logger?.warn(
        { destination: this.destinationId, dataset, err: classifyBigQueryError(error, undefined, this.#secrets) },
        "cannot read the dataset's location; set bigquery.location if it is a single region",
      );
      this.#datasetLocations.set(dataset, null);
      return undefined;
    }
    if (resource === undefined) return undefined;
    const location = locationOf(resource.location);
    this.#datasetLocations.set(dataset, location ?? null);
    return location;
  }

  #result(jobId: string, job: JobResource, body: readonly Buffer[]): InsertResult {
    const outcome = outcomeOf(job);
    if (outcome.state === 'failed') throw classifyJobFailure(job, body, jobId, this.#secrets);
    return { writtenRows: outcome.state === 'succeeded' ? outcome.rows : undefined };
  }

  #loadConfiguration(dataset: string, table: string): LoadConfiguration {
    return {
      destinationTable: { projectId: this.#project, datasetId: dataset, tableId: table },
      sourceFormat: 'NEWLINE_DELIMITED_JSON',
      writeDisposition: 'WRITE_APPEND',
      // The table's live schema is the truth: a load never creates or widens a table.
      createDisposition: 'CREATE_NEVER',
      // Fields the table does not have are left out, like ClickHouse's input_format_skip_unknown_fields.
      ignoreUnknownValues: true,
      // One bad row fails the whole job (nothing loaded), so the core can split and find it.
      maxBadRecords: 0,
    };
  }

  /** The caller's signal joined with close()'s. */
  #signal(signal: AbortSignal | undefined): AbortSignal {
    if (this.#closed.signal.aborted) throw new AbortedError(`BigQuery sink ${this.destinationId} is closed`);
    return signal === undefined ? this.#closed.signal : AbortSignal.any([signal, this.#closed.signal]);
  }

  #failure(error: unknown, signal: AbortSignal | undefined, body?: readonly Buffer[]): Error {
    if (error instanceof AbortedError || error instanceof ConfigError) return error;
    if (signal?.aborted === true || this.#closed.signal.aborted) return new AbortedError(`BigQuery call to ${this.destinationId} aborted`, { cause: slim(error, this.#secrets) });
    return classifyBigQueryError(error, body, this.#secrets);
  }

  close(): Promise<void> {
    this.#closed.abort(new AbortedError(`BigQuery sink ${this.destinationId} closed`));
    return Promise.resolve();
  }
}
