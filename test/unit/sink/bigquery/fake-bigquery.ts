// A scripted stand-in for BigQuery's jobs API (jobs.get, the multipart upload of a load job,
// tables.get), for what the emulator cannot be made to show: a load job that stays RUNNING, a
// failed job with BigQuery's errorResult and per-row errors[], a 409 `duplicate`. Shapes follow
// the REST reference (https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs); every request
// is recorded, so a test can assert what was (not) loaded.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StoredJob {
  /** jobs.get answers RUNNING this many more times before `done`. */
  runningPolls: number;
  done: Record<string, unknown>;
}

export interface Upload {
  readonly jobId: string;
  readonly configuration: Record<string, unknown>;
  readonly content: string;
}

export interface FakeBigQuery {
  readonly url: string;
  readonly jobs: Map<string, StoredJob>;
  readonly uploads: Upload[];
  readonly gets: string[];
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
    tables: new Map(),
    lastAuthorization: undefined,
    onUpload: (upload) => ({ runningPolls: 1, done: succeeded(upload.content.split('\n').filter((l) => l !== '').length) }),
    beforeUpload: () => undefined,
  };
  const jobPath = new RegExp(`^/bigquery/v2/projects/${project}/jobs/([^/?]+)`);
  const tablePath = new RegExp(`^/bigquery/v2/projects/${project}/datasets/([^/]+)/tables/([^/?]+)`);
  const server: Server = createServer((req, res) => {
    fake.lastAuthorization = req.headers.authorization;
    const url = req.url ?? '';
    void (async () => {
      const job = jobPath.exec(url);
      if (req.method === 'GET' && job !== null) {
        const id = decodeURIComponent(job[1] as string);
        fake.gets.push(id);
        const stored = fake.jobs.get(id);
        if (stored === undefined) return send(res, 404, apiError(404, 'notFound', `Not found: Job ${project}:US.${id}`));
        const reference = { jobReference: { projectId: project, jobId: id, location: 'US' } };
        if (stored.runningPolls > 0) {
          stored.runningPolls--;
          return send(res, 200, { ...reference, status: { state: 'RUNNING' } });
        }
        return send(res, 200, { ...reference, ...stored.done });
      }
      const table = tablePath.exec(url);
      if (req.method === 'GET' && table !== null) {
        const resource = fake.tables.get(`${table[1]}.${table[2]}`);
        return resource === undefined ? send(res, 404, apiError(404, 'notFound', `Not found: Table ${project}:${table[1]}.${table[2]}`)) : send(res, 200, resource);
      }
      if (req.method === 'POST' && url.startsWith(`/upload/bigquery/v2/projects/${project}/jobs?uploadType=multipart`)) {
        const { metadata, content } = parseMultipart(req.headers['content-type'] ?? '', await readBody(req));
        const id = String((metadata.jobReference as { jobId?: unknown } | undefined)?.jobId);
        fake.beforeUpload(id);
        if (fake.jobs.has(id)) return send(res, 409, apiError(409, 'duplicate', `Already Exists: Job ${project}:US.${id}`));
        const upload: Upload = { jobId: id, configuration: metadata.configuration as Record<string, unknown>, content };
        fake.uploads.push(upload);
        fake.jobs.set(id, fake.onUpload(upload));
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
