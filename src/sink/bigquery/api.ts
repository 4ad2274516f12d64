// Owns the calls to BigQuery's REST API that the sink makes: tables.get, jobs.get, a query job, and a
// load job uploaded from memory (multipart, under a job id of ours). The @google-cloud/bigquery
// client supplies the endpoint and the credentials (a service-account key, a plain access token,
// or Application Default Credentials); each call goes through its authenticated request method
// (google-auth-library over gaxios) rather than the client's promise methods, because those take no
// AbortSignal, retry on their own (hiding failures from the error policy and delaying an abort),
// and cannot upload a body from memory under a fixed job id without a stream the caller cannot end.
// The responses are untrusted JSON: read through the narrow shapes below, nothing more. A job lives
// in a location, and jobs.get of a job in a single region finds it only when told that location:
// each job call takes the location it is about (the configured one, the dataset's, the job's own).
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { BigQuery } from '@google-cloud/bigquery';
import { AbortedError } from '../../errors/inserter-error.ts';
import type { ErrorProto } from './classify.ts';
import { isNotFound } from './classify.ts';

export interface FieldResource {
  readonly name: string;
  readonly type: string;
  readonly mode?: string | undefined;
  readonly fields?: readonly FieldResource[] | undefined;
  readonly defaultValueExpression?: string | undefined;
}

export interface TableResource {
  readonly etag?: string | undefined;
  /** Real BigQuery's: the table's (its dataset's) location. */
  readonly location?: string | undefined;
  readonly type?: string | undefined;
  readonly schema?: { readonly fields?: readonly FieldResource[] | undefined } | undefined;
}

export interface DatasetResource {
  readonly location?: string | undefined;
}

export interface JobResource {
  readonly jobReference?: { readonly jobId?: string; readonly location?: string } | undefined;
  readonly status?: { readonly state?: string; readonly errorResult?: ErrorProto; readonly errors?: readonly ErrorProto[] } | undefined;
  readonly statistics?: { readonly load?: { readonly outputRows?: string | number } } | undefined;
  readonly configuration?: { readonly load?: Readonly<Record<string, unknown>> } | undefined;
}

/** The `configuration.load` of an insert's load job (REST JobConfigurationLoad). */
export interface LoadConfiguration {
  readonly destinationTable: { readonly projectId: string; readonly datasetId: string; readonly tableId: string };
  readonly sourceFormat: 'NEWLINE_DELIMITED_JSON';
  readonly writeDisposition: 'WRITE_APPEND';
  readonly createDisposition: 'CREATE_NEVER';
  readonly ignoreUnknownValues: boolean;
  readonly maxBadRecords: 0;
}

type Auth = BigQuery['authClient'];

export interface BigQueryApiOptions {
  readonly client: BigQuery;
  readonly project: string;
  /** The configured location: a DDL query job's (a load job's is passed to each call). */
  readonly location: string | undefined;
  readonly timeoutMs: number;
}

export class BigQueryApi {
  readonly project: string;
  readonly #auth: Auth;
  readonly #endpoint: string;
  readonly #location: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: BigQueryApiOptions) {
    this.project = options.project;
    this.#auth = options.client.authClient;
    // The client's own normalisation of the configured URL (scheme added, trailing slashes cut).
    this.#endpoint = options.client.apiEndpoint;
    this.#location = options.location;
    this.#timeoutMs = options.timeoutMs;
  }

  /** tables.get; undefined when the table (or its dataset) is not there. */
  async getTable(dataset: string, table: string, signal: AbortSignal | undefined): Promise<TableResource | undefined> {
    try {
      return await this.#json<TableResource>('GET', `${this.#base()}/datasets/${encodeURIComponent(dataset)}/tables/${encodeURIComponent(table)}`, undefined, signal);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** datasets.get; undefined when the dataset (or its project) is not there. */
  async getDataset(dataset: string, signal: AbortSignal | undefined): Promise<DatasetResource | undefined> {
    try {
      return await this.#json<DatasetResource>('GET', `${this.#base()}/datasets/${encodeURIComponent(dataset)}`, undefined, signal);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** jobs.get in `location` (undefined: none given, which finds a job in US or EU only); undefined when no job has this id there. */
  async getJob(jobId: string, location: string | undefined, signal: AbortSignal | undefined): Promise<JobResource | undefined> {
    try {
      const query = location === undefined ? '' : `?location=${encodeURIComponent(location)}`;
      return await this.#json<JobResource>('GET', `${this.#base()}/jobs/${encodeURIComponent(jobId)}${query}`, undefined, signal);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** jobs.insert of a GoogleSQL query job. */
  insertQueryJob(jobId: string, query: string, signal: AbortSignal | undefined): Promise<JobResource> {
    const job = { jobReference: this.#jobReference(jobId, this.#location), configuration: { query: { query, useLegacySql: false } } };
    return this.#json<JobResource>('POST', `${this.#base()}/jobs`, job, signal);
  }

  /**
   * jobs.insert of a load job with its data in the same request (uploadType=multipart): the
   * metadata part, then the body's buffers as they are (no copy, no temp file). The body is read
   * only while this call is pending. A Readable request body is never sent twice by the auth
   * client (it retries a 401 only for bodies it can replay), so a half-read body cannot become a
   * second, shorter load under the same job id.
   */
  uploadLoadJob(jobId: string, location: string | undefined, load: LoadConfiguration, body: readonly Buffer[], signal: AbortSignal | undefined): Promise<JobResource> {
    const boundary = `inserter-${randomUUID()}`;
    const metadata = JSON.stringify({ jobReference: this.#jobReference(jobId, location), configuration: { load } });
    const head = Buffer.from(`--${boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n${metadata}\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\n\r\n`);
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const data = Readable.from([head, ...body, tail], { objectMode: false });
    const url = `${this.#endpoint}/upload/bigquery/v2/projects/${encodeURIComponent(this.project)}/jobs?uploadType=multipart`;
    return this.#json<JobResource>('POST', url, data, signal, { 'Content-Type': `multipart/related; boundary=${boundary}` });
  }

  async #json<T>(method: 'GET' | 'POST', url: string, data: unknown, signal: AbortSignal | undefined, headers?: Record<string, string>): Promise<T> {
    // The access token first, on its own: the request below takes the signal, but the auth client
    // fetches a token it lacks (a service account's, ADC's) before that request, without it. Its
    // fetch is bounded by the transport's timeout (credentials.ts); this ends the wait for it at
    // once on an abort or close(). The request then uses the token cached here.
    await abortable(this.#auth.getAccessToken(), signal, 'fetching an access token');
    const response = await this.#auth.request<T>({
      method,
      url,
      ...(data === undefined ? {} : { data }),
      ...(headers === undefined ? {} : { headers }),
      responseType: 'json',
      timeout: this.#timeoutMs,
      // The error policy retries (with the insert's token); a hidden retry would only delay it.
      retry: false,
      ...(signal === undefined ? {} : { signal }),
    });
    return response.data;
  }

  #base(): string {
    return `${this.#endpoint}/bigquery/v2/projects/${encodeURIComponent(this.project)}`;
  }

  #jobReference(jobId: string, location: string | undefined): { projectId: string; jobId: string; location?: string } {
    return { projectId: this.project, jobId, ...(location === undefined ? {} : { location }) };
  }
}

/**
 * `promise`, or an AbortedError as soon as `signal` aborts (the promise is left to settle on its
 * own, its outcome ignored): for work that takes no signal of its own.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (signal === undefined) return promise;
  promise.catch(() => undefined);
  if (signal.aborted) return Promise.reject(new AbortedError(`${what} aborted`, { cause: signal.reason }));
  let onAbort = (): void => undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(new AbortedError(`${what} aborted`, { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([promise, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}

/** A location as the API reports it: a non-empty string, else undefined (the emulator may send ''). */
export function locationOf(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
