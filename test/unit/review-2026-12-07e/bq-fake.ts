// Review 2026-12-07e: a BigQuery jobs API of our own, for the corner cases the scripted fake of
// test/unit/sink/bigquery/ does not reach. Unlike that one, a job here runs on its own clock (it is
// DONE, and its rows are in the table, after `afterMs` whether anyone polls it or not, as on
// BigQuery), and every request can be answered with a fault: an HTTP error before or after the
// request was acted on, a reset before it was read or after it was acted on (a lost reply), a hang.
// A job lives in a location; jobs.get of a regional job without `?location=` is 404, as BigQuery's.
// datasets.get names the datasets' location (a dataset exists when a table of it does).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { DestinationConfig } from '../../../src/config/load.ts';
import { Secret } from '../../../src/config/secret.ts';
import type { InsertBatch } from '../../../src/sink/types.ts';

export interface ErrorProto {
  readonly reason?: string;
  readonly message?: string;
}

export interface FakeJob {
  readonly id: string;
  readonly table: string;
  readonly location: string;
  readonly lines: readonly string[];
  readonly configuration: Record<string, unknown>;
  state: 'RUNNING' | 'DONE';
  error: ErrorProto | undefined;
  errors: readonly ErrorProto[] | undefined;
  timer: NodeJS.Timeout | undefined;
}

export type Kind = 'getJob' | 'getTable' | 'getDataset' | 'upload' | 'query' | 'other';

export interface Call {
  readonly kind: Kind;
  readonly method: string;
  readonly url: string;
  readonly jobId: string | undefined;
  /** Calls of this kind for this job id (or table) before this one. */
  readonly nth: number;
  readonly authorization: string | undefined;
}

export type Fault =
  /** Answered with this instead, before anything is done (a refused request). */
  | { readonly before: number; readonly body?: unknown; readonly text?: string }
  /** Acted on (a job created), then answered with this instead (an error that hides a success). */
  | { readonly after: number; readonly body?: unknown; readonly text?: string }
  /** The connection reset before the request is read. */
  | 'reset'
  /** Acted on, then the connection reset: the client never sees the reply. */
  | 'lose'
  /** Read, never answered. */
  | 'hang';

/** What becomes of a new load job. */
export interface Fate {
  /** DONE after this many ms (0: DONE before the upload is answered); undefined: only by finish(). */
  readonly afterMs?: number | undefined;
  readonly error?: ErrorProto | undefined;
  readonly errors?: readonly ErrorProto[] | undefined;
}

export function apiError(code: number, reason: string, message: string): Record<string, unknown> {
  return { error: { code, message, errors: [{ reason, message, domain: 'global' }], status: code === 404 ? 'NOT_FOUND' : code === 409 ? 'ALREADY_EXISTS' : 'INTERNAL' } };
}

export class BigQueryFake {
  readonly project: string;
  readonly jobs = new Map<string, FakeJob>();
  /** Table schemas by "dataset.table". */
  readonly tables = new Map<string, ReadonlyArray<{ name: string; type: string; mode?: string }>>();
  /** Lines loaded, by "dataset.table", in the order jobs finished. */
  readonly landed = new Map<string, string[]>();
  readonly calls: Call[] = [];
  /** The location of every dataset (a job created without one runs there). */
  datasetLocation = 'US';
  fault: (call: Call) => Fault | undefined = () => undefined;
  fate: (job: FakeJob) => Fate = () => ({ afterMs: 5 });
  /** A call waits for the promise this returns (undefined: it goes on at once). */
  gate: (call: Call) => Promise<void> | undefined = () => undefined;
  url = '';
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #counts = new Map<string, number>();

  constructor(project: string) {
    this.project = project;
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  /** Resets jobs, tables' rows, calls and hooks (the server and the table schemas stay). */
  reset(): void {
    for (const job of this.jobs.values()) clearTimeout(job.timer);
    this.jobs.clear();
    this.landed.clear();
    this.calls.length = 0;
    this.#counts.clear();
    this.datasetLocation = 'US';
    this.fault = () => undefined;
    this.fate = () => ({ afterMs: 5 });
    this.gate = () => undefined;
  }

  /** Ends a running job: its rows land unless it fails. */
  finish(id: string, error?: ErrorProto, errors?: readonly ErrorProto[]): void {
    const job = this.jobs.get(id);
    if (job === undefined || job.state === 'DONE') return;
    clearTimeout(job.timer);
    job.state = 'DONE';
    job.error = error;
    job.errors = errors ?? (error === undefined ? undefined : [error]);
    if (error === undefined) {
      const rows = this.landed.get(job.table) ?? [];
      rows.push(...job.lines);
      this.landed.set(job.table, rows);
    }
  }

  rows(table: string): string[] {
    return this.landed.get(table) ?? [];
  }

  uploads(): Call[] {
    return this.calls.filter((c) => c.kind === 'upload');
  }

  async close(): Promise<void> {
    for (const job of this.jobs.values()) clearTimeout(job.timer);
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #resource(job: FakeJob): Record<string, unknown> {
    const done = job.state === 'DONE';
    return {
      kind: 'bigquery#job',
      jobReference: { projectId: this.project, jobId: job.id, location: job.location },
      configuration: job.configuration,
      status: { state: job.state, ...(done && job.error !== undefined ? { errorResult: job.error, errors: job.errors } : {}) },
      ...(done && job.error === undefined && job.configuration.load !== undefined ? { statistics: { load: { inputFiles: '1', outputRows: String(job.lines.length), badRecords: '0' } } } : {}),
    };
  }

  #call(req: IncomingMessage): Call {
    const url = req.url ?? '';
    const path = url.split('?')[0] ?? '';
    const prefix = `/bigquery/v2/projects/${this.project}`;
    let kind: Kind = 'other';
    let jobId: string | undefined;
    let key = '';
    const job = new RegExp(`^${prefix}/jobs/([^/]+)$`).exec(path);
    const table = new RegExp(`^${prefix}/datasets/([^/]+)/tables/([^/]+)$`).exec(path);
    const dataset = new RegExp(`^${prefix}/datasets/([^/]+)$`).exec(path);
    if (req.method === 'GET' && job !== null) {
      kind = 'getJob';
      jobId = decodeURIComponent(job[1] as string);
      key = jobId;
    } else if (req.method === 'GET' && table !== null) {
      kind = 'getTable';
      key = `${decodeURIComponent(table[1] as string)}.${decodeURIComponent(table[2] as string)}`;
    } else if (req.method === 'GET' && dataset !== null) {
      kind = 'getDataset';
      key = decodeURIComponent(dataset[1] as string);
    } else if (req.method === 'POST' && path === `/upload${prefix}/jobs`) kind = 'upload';
    else if (req.method === 'POST' && path === `${prefix}/jobs`) kind = 'query';
    const countKey = `${kind}\0${key}`;
    const nth = this.#counts.get(countKey) ?? 0;
    this.#counts.set(countKey, nth + 1);
    return { kind, method: req.method ?? '', url, jobId, nth, authorization: req.headers.authorization };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let call = this.#call(req);
    try {
      const body = await readBody(req);
      let metadata: Record<string, unknown> | undefined;
      let content = '';
      if (call.kind === 'upload') {
        ({ metadata, content } = parseMultipart(req.headers['content-type'] ?? '', body));
        const jobId = String((metadata.jobReference as { jobId?: unknown } | undefined)?.jobId);
        const countKey = `upload\0${jobId}`;
        const nth = this.#counts.get(countKey) ?? 0;
        this.#counts.set(countKey, nth + 1);
        call = { ...call, jobId, nth };
      } else if (call.kind === 'query') {
        metadata = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      }
      this.calls.push(call);
      await this.gate(call);
      const fault = this.fault(call);
      if (fault === 'reset') return void req.socket.destroy();
      if (fault === 'hang') return;
      if (fault !== undefined && typeof fault === 'object' && 'before' in fault) return send(res, fault.before, fault.text ?? fault.body ?? apiError(fault.before, 'backendError', 'injected'));
      const [status, answer] = this.#act(call, metadata, content);
      if (fault === 'lose') return void req.socket.destroy();
      if (fault !== undefined && typeof fault === 'object' && 'after' in fault) return send(res, fault.after, fault.text ?? fault.body ?? apiError(fault.after, 'backendError', 'injected'));
      send(res, status, answer);
    } catch (error) {
      send(res, 500, apiError(500, 'internalError', `fake: ${String(error)}`));
    }
  }

  #act(call: Call, metadata: Record<string, unknown> | undefined, content: string): [number, unknown] {
    const params = new URL(call.url, 'http://x').searchParams;
    if (call.kind === 'getJob') {
      const job = this.jobs.get(call.jobId ?? '');
      const asked = params.get('location');
      const regional = job !== undefined && !['US', 'EU'].includes(job.location);
      // BigQuery: a job in a single region is found only with its location; any job, not in another.
      if (job === undefined || (asked !== null && asked !== job.location) || (asked === null && regional)) return [404, apiError(404, 'notFound', `Not found: Job ${this.project}:${call.jobId}`)];
      return [200, this.#resource(job)];
    }
    if (call.kind === 'getTable') {
      const key = /\/datasets\/([^/]+)\/tables\/([^/?]+)/.exec(call.url);
      const name = key === null ? '' : `${decodeURIComponent(key[1] as string)}.${decodeURIComponent(key[2] as string)}`;
      const fields = this.tables.get(name);
      if (fields === undefined) return [404, apiError(404, 'notFound', `Not found: Table ${this.project}:${name}`)];
      return [200, { kind: 'bigquery#table', tableReference: { projectId: this.project, datasetId: name.split('.')[0], tableId: name.split('.')[1] }, schema: { fields } }];
    }
    if (call.kind === 'getDataset') {
      const name = decodeURIComponent(/\/datasets\/([^/?]+)/.exec(call.url)?.[1] ?? '');
      if (![...this.tables.keys()].some((t) => t.startsWith(`${name}.`))) return [404, apiError(404, 'notFound', `Not found: Dataset ${this.project}:${name}`)];
      return [200, { kind: 'bigquery#dataset', datasetReference: { projectId: this.project, datasetId: name }, location: this.datasetLocation }];
    }
    if (call.kind === 'upload' || call.kind === 'query') {
      const reference = (metadata?.jobReference ?? {}) as { jobId?: string; location?: string };
      const id = String(reference.jobId);
      if (this.jobs.has(id)) return [409, apiError(409, 'duplicate', `Already Exists: Job ${this.project}:${this.datasetLocation}.${id}`)];
      const configuration = (metadata?.configuration ?? {}) as Record<string, unknown>;
      const load = configuration.load as { destinationTable?: { datasetId?: string; tableId?: string } } | undefined;
      const table = load === undefined ? '' : `${load.destinationTable?.datasetId ?? ''}.${load.destinationTable?.tableId ?? ''}`;
      const job: FakeJob = {
        id,
        table,
        location: reference.location ?? this.datasetLocation,
        lines: content.split('\n').filter((l) => l !== ''),
        configuration,
        state: 'RUNNING',
        error: undefined,
        errors: undefined,
        timer: undefined,
      };
      this.jobs.set(id, job);
      const fate = call.kind === 'query' ? { afterMs: 0 } : this.fate(job);
      if (fate.afterMs === 0) this.finish(id, fate.error, fate.errors);
      else if (fate.afterMs !== undefined) job.timer = setTimeout(() => this.finish(id, fate.error, fate.errors), fate.afterMs);
      return [200, this.#resource(job)];
    }
    return [400, apiError(400, 'invalid', `unexpected ${call.method} ${call.url}`)];
  }
}

export async function startBigQueryFake(project = 'proj'): Promise<BigQueryFake> {
  return new BigQueryFake(project).start();
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/html; charset=UTF-8' : 'application/json; charset=UTF-8' });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function parseMultipart(contentType: string, body: Buffer): { metadata: Record<string, unknown>; content: string } {
  const boundary = /boundary=([^;]+)/.exec(contentType)?.[1];
  if (boundary === undefined) throw new Error(`no boundary in ${contentType}`);
  const text = body.toString('utf8');
  const parts = text.split(`--${boundary}`).slice(1, -1);
  const partBody = (part: string): string => part.slice(part.indexOf('\r\n\r\n') + 4, part.endsWith('\r\n') ? -2 : undefined);
  const [meta, data] = parts;
  if (meta === undefined || data === undefined) throw new Error('a multipart upload has two parts');
  return { metadata: JSON.parse(partBody(meta)) as Record<string, unknown>, content: partBody(data) };
}

/** Polls until `condition` holds; fails with `what` after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A promise and its resolver, for gates. */
export function latch(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

export interface DestinationOptions {
  readonly project?: string;
  readonly location?: string | undefined;
  readonly requestTimeoutMs?: number;
  readonly password?: string;
  readonly credentialsFile?: string | undefined;
}

/** A `kind: bigquery` destination (dataset `ds`) at `url`, signing in with a plain access token. */
export function destination(url: string, options: DestinationOptions = {}): DestinationConfig {
  return {
    id: 'bq',
    kind: 'bigquery',
    bigquery: {
      project: options.project ?? 'proj',
      ...(options.location === undefined ? {} : { location: options.location }),
      ...(options.credentialsFile === undefined ? {} : { credentialsFile: options.credentialsFile }),
    },
    url,
    user: 'default',
    password: new Secret(options.password ?? 'ya29.SECRET-ACCESS-TOKEN'),
    database: 'ds',
    maxBufferedBytes: 64 * 1024 * 1024,
    concurrency: 4,
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    stalledAfterMs: 30_000,
    compression: 'none',
  };
}

/** An insert into ds.t of one JSON line per uuid, two lines a buffer. */
export function batch(token: string, uuids: readonly string[], table = 't'): InsertBatch {
  const lines = uuids.map((uuid) => `{"uuid":"${uuid}"}\n`);
  const body: Buffer[] = [];
  for (let i = 0; i < lines.length; i += 2) body.push(Buffer.from(lines.slice(i, i + 2).join('')));
  return { table: { database: 'ds', table }, body, format: 'JSONEachRow', rows: uuids.length, bytes: body.reduce((n, b) => n + b.length, 0), token };
}

/** The uuids of lines landed in `table`. */
export function landedUuids(fake: BigQueryFake, table = 'ds.t'): string[] {
  return fake.rows(table).map((line) => (JSON.parse(line) as { uuid: string }).uuid);
}
