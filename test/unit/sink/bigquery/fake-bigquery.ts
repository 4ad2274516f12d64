// A scripted stand-in for BigQuery's jobs API (jobs.get, the multipart upload of a load job,
// tables.get), for what the emulator cannot be made to show: a load job that stays RUNNING, a
// failed job with BigQuery's errorResult and per-row errors[], a 409 `duplicate`. Shapes follow
// the REST reference (https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs); every request
// is recorded, so a test can assert what was (not) loaded. A test can replace an answer: a jobs.get
// (before it is read), an upload's (after the job was made).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StoredJob {
  /** jobs.get answers RUNNING this many more times before `done`. */
  runningPolls: number;
  done: Record<string, unknown>;
}

/** An answer a test puts in place of the fake's own. */
export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

export interface Upload {
  readonly jobId: string;
  /** The upload's jobReference.location, when it gave one. */
  readonly location: string | undefined;
  readonly configuration: Record<string, unknown>;
  readonly content: string;
}

export interface FakeBigQuery {
  readonly url: string;
  readonly jobs: Map<string, StoredJob>;
  readonly uploads: Upload[];
  readonly gets: string[];
  /** Every request, as "METHOD url". */
  readonly requests: string[];
  /** datasets.get answers by dataset id (404 for one not here). */
  readonly datasets: Map<string, Record<string, unknown>>;
  /** Replaces the answer to a jobs.get of `jobId` (`nth`: 0-based among the gets of that id). */
  onGet: (jobId: string, nth: number) => Answer | undefined;
  /** Replaces the answer to an upload whose job was made (an answer that hides a created job). */
  afterUpload: (upload: Upload) => Answer | undefined;
  /** Decides the job an upload creates (default: RUNNING once, then DONE with the lines as outputRows). */
  onUpload: (upload: Upload) => StoredJob;
  /** Called before an upload is answered: lets a test create the job meanwhile (a racing attempt). */
  beforeUpload: (jobId: string) => void;
  /** Table resources by "dataset.table". */
  readonly tables: Map<string, Record<string, unknown>>;
  /** The Authorization header of the last request. */
  lastAuthorization: string | undefined;
  close(): Promise<void>;
}

export function apiError(code: number, reason: string, message: string): Record<string, unknown> {
  return { error: { code, message, errors: [{ reason, message, domain: 'global' }], status: code === 404 ? 'NOT_FOUND' : code === 409 ? 'ALREADY_EXISTS' : 'INVALID_ARGUMENT' } };
}

export function succeeded(rows: number): Record<string, unknown> {
  return { status: { state: 'DONE' }, statistics: { load: { inputFiles: '1', outputRows: String(rows), badRecords: '0' } } };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The metadata and the content of a multipart/related body. */
function parseMultipart(contentType: string, body: string): { metadata: Record<string, unknown>; content: string } {
  const boundary = /boundary=([^;]+)/.exec(contentType)?.[1];
  if (boundary === undefined) throw new Error(`no boundary in ${contentType}`);
  const parts = body.split(`--${boundary}`).slice(1, -1);
  const partBody = (part: string): string => part.slice(part.indexOf('\r\n\r\n') + 4, part.endsWith('\r\n') ? -2 : undefined);
  const [meta, data] = parts;
  if (meta === undefined || data === undefined) throw new Error('a multipart upload has two parts');
  return { metadata: JSON.parse(partBody(meta)) as Record<string, unknown>, content: partBody(data) };
}

export async function startFakeBigQuery(project: string): Promise<FakeBigQuery> {
  const fake: Omit<FakeBigQuery, 'url' | 'close'> = {
    jobs: new Map(),
    uploads: [],
    gets: [],
    requests: [],
    datasets: new Map(),
    onGet: () => undefined,
    afterUpload: () => undefined,
    tables: new Map(),
    lastAuthorization: undefined,
    onUpload: (upload) => ({ runningPolls: 1, done: succeeded(upload.content.split('\n').filter((l) => l !== '').length) }),
    beforeUpload: () => undefined,
  };
  const jobPath = new RegExp(`^/bigquery/v2/projects/${project}/jobs/([^/?]+)`);
  const tablePath = new RegExp(`^/bigquery/v2/projects/${project}/datasets/([^/]+)/tables/([^/?]+)`);
  const datasetPath = new RegExp(`^/bigquery/v2/projects/${project}/datasets/([^/?]+)(?:\\?|$)`);
  const server: Server = createServer((req, res) => {
    fake.lastAuthorization = req.headers.authorization;
    const url = req.url ?? '';
    fake.requests.push(`${req.method} ${url}`);
    void (async () => {
      const job = jobPath.exec(url);
      if (req.method === 'GET' && job !== null) {
        const id = decodeURIComponent(job[1] as string);
        const replaced = fake.onGet(id, fake.gets.filter((g) => g === id).length);
        fake.gets.push(id);
        if (replaced !== undefined) return send(res, replaced.status, replaced.body);
        const stored = fake.jobs.get(id);
        if (stored === undefined) return send(res, 404, apiError(404, 'notFound', `Not found: Job ${project}:US.${id}`));
        const reference = { jobReference: { projectId: project, jobId: id, location: 'US' } };
        if (stored.runningPolls > 0) {
          stored.runningPolls--;
          return send(res, 200, { ...reference, status: { state: 'RUNNING' } });
        }
        return send(res, 200, { ...reference, ...stored.done });
      }
      const dataset = datasetPath.exec(url);
      if (req.method === 'GET' && dataset !== null) {
        const resource = fake.datasets.get(decodeURIComponent(dataset[1] as string));
        return resource === undefined ? send(res, 404, apiError(404, 'notFound', `Not found: Dataset ${project}:${dataset[1]}`)) : send(res, 200, resource);
      }
      const table = tablePath.exec(url);
      if (req.method === 'GET' && table !== null) {
        const resource = fake.tables.get(`${table[1]}.${table[2]}`);
        return resource === undefined ? send(res, 404, apiError(404, 'notFound', `Not found: Table ${project}:${table[1]}.${table[2]}`)) : send(res, 200, resource);
      }
      if (req.method === 'POST' && url.startsWith(`/upload/bigquery/v2/projects/${project}/jobs?uploadType=multipart`)) {
        const { metadata, content } = parseMultipart(req.headers['content-type'] ?? '', await readBody(req));
        const reference = (metadata.jobReference ?? {}) as { jobId?: unknown; location?: unknown };
        const id = String(reference.jobId);
        fake.beforeUpload(id);
        if (fake.jobs.has(id)) return send(res, 409, apiError(409, 'duplicate', `Already Exists: Job ${project}:US.${id}`));
        const location = typeof reference.location === 'string' ? reference.location : undefined;
        const upload: Upload = { jobId: id, location, configuration: metadata.configuration as Record<string, unknown>, content };
        fake.uploads.push(upload);
        fake.jobs.set(id, fake.onUpload(upload));
        const replaced = fake.afterUpload(upload);
        if (replaced !== undefined) return send(res, replaced.status, replaced.body);
        return send(res, 200, { jobReference: { projectId: project, jobId: id, location: 'US' }, status: { state: 'RUNNING' } });
      }
      send(res, 400, apiError(400, 'invalid', `unexpected ${req.method} ${url}`));
    })().catch((error: unknown) => send(res, 500, apiError(500, 'internalError', String(error))));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
