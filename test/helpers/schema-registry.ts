// Test helper: a real node:http schema registry speaking the calls of Confluent's REST API that
// inserter and the producers use, on a free port: register a subject's schema
// (`POST /subjects/{subject}/versions` → `{id}`, the same schema again → the same id), get a schema
// by id (`GET /schemas/ids/{id}`) and a subject's version (`GET /subjects/{s}/versions/{v}`), with
// `format=serialized` answered from what was registered (base64 FileDescriptorProtos, as
// Confluent's serializers register them). It records every request, can require basic auth, and
// can fail on demand: `down` (the connection is cut), `error` (HTTP 500), `slow` (answers after
// slowMs), for every request or for the next N. stop() ends every socket and timer. Two dialects of
// other registries, checked in their sources: `dialect: 'karapace'` answers a subject's version with
// the .proto text whatever `format` says (Karapace's subjects endpoint takes no `format`), and
// `dialect: 'apicurio'` answers `format=serialized` with the descriptor's raw bytes in the JSON
// string (Apicurio's ccompat ApiConverter sets `schema` to the content as text).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type RegistryMode = 'ok' | 'down' | 'error' | 'slow';

export interface SchemaReference {
  name: string;
  subject: string;
  version: number;
}

export interface RegisteredSchema {
  id: number;
  schema: string;
  /** Absent for AVRO, as Confluent answers. */
  schemaType: string | undefined;
  references: SchemaReference[];
}

export interface RecordedRegistryRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
}

export class FakeSchemaRegistry {
  mode: RegistryMode = 'ok';
  dialect: 'confluent' | 'karapace' | 'apicurio' = 'confluent';
  slowMs = 2_000;
  readonly requests: RecordedRegistryRequest[] = [];
  readonly #byId = new Map<number, RegisteredSchema>();
  readonly #subjects = new Map<string, number[]>();
  readonly #auth: string | undefined;
  readonly #server = createServer((req, res) => this.#handle(req, res));
  readonly #timers = new Set<NodeJS.Timeout>();
  #failures: { mode: Exclude<RegistryMode, 'ok'>; left: number } | undefined;
  #nextId = 1;

  constructor(options: { username?: string; password?: string; firstId?: number } = {}) {
    if (options.username !== undefined) this.#auth = `Basic ${Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64')}`;
    this.#nextId = options.firstId ?? 1;
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** The next `count` requests fail this way, then the registry answers again. */
  failNext(count: number, mode: Exclude<RegistryMode, 'ok'>): void {
    this.#failures = { mode, left: count };
  }

  /** Registers a schema under a subject (in process); the same schema again gets its first id. */
  register(subject: string, schema: string, options: { schemaType?: string; references?: SchemaReference[] } = {}): number {
    const schemaType = options.schemaType === 'AVRO' ? undefined : (options.schemaType ?? 'PROTOBUF');
    const references = options.references ?? [];
    const same = [...this.#byId.values()].find((s) => s.schema === schema && s.schemaType === schemaType && JSON.stringify(s.references) === JSON.stringify(references));
    const id = same?.id ?? this.#nextId++;
    if (same === undefined) this.#byId.set(id, { id, schema, schemaType, references });
    const versions = this.#subjects.get(subject) ?? [];
    if (!versions.includes(id)) versions.push(id);
    this.#subjects.set(subject, versions);
    return id;
  }

  /** The version number of a schema id under a subject (1-based). */
  versionOf(subject: string, id: number): number {
    const version = (this.#subjects.get(subject) ?? []).indexOf(id) + 1;
    if (version === 0) throw new Error(`schema ${id} is not registered under ${subject}`);
    return version;
  }

  requestsTo(prefix: string): RecordedRegistryRequest[] {
    return this.requests.filter((r) => r.path.startsWith(prefix));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://registry');
    this.requests.push({ method: req.method ?? 'GET', path: `${url.pathname}${url.search}`, authorization: req.headers.authorization });
    let mode: RegistryMode = this.mode;
    if (this.#failures !== undefined && this.#failures.left > 0) {
      mode = this.#failures.mode;
      this.#failures.left--;
    }
    switch (mode) {
      case 'down':
        req.socket.destroy();
        return;
      case 'error':
        json(res, 500, { error_code: 50001, message: 'Error in the backend data store' });
        return;
      case 'slow': {
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          this.#answer(req, res, url);
        }, this.slowMs);
        this.#timers.add(timer);
        return;
      }
      case 'ok':
        this.#answer(req, res, url);
    }
  }

  #answer(req: IncomingMessage, res: ServerResponse, url: URL): void {
    if (this.#auth !== undefined && req.headers.authorization !== this.#auth) {
      json(res, 401, { error_code: 401, message: 'Unauthorized' });
      return;
    }
    const parts = url.pathname.split('/').filter((p) => p !== '');
    if (req.method === 'GET' && parts[0] === 'schemas' && parts[1] === 'ids' && parts.length === 3) {
      const schema = this.#byId.get(Number(parts[2]));
      if (schema === undefined) json(res, 404, { error_code: 40403, message: `Schema ${parts[2]} not found` });
      else if (this.dialect === 'apicurio') json(res, 200, { ...view(schema), schema: Buffer.from(schema.schema, 'base64').toString('utf8') });
      else json(res, 200, view(schema));
      return;
    }
    if (parts[0] === 'subjects' && parts[2] === 'versions' && parts[1] !== undefined) {
      const subject = decodeURIComponent(parts[1]);
      const versions = this.#subjects.get(subject);
      if (req.method === 'POST' && parts.length === 3) {
        readBody(req, (text) => {
          const body = JSON.parse(text) as { schema: string; schemaType?: string; references?: SchemaReference[] };
          json(res, 200, { id: this.register(subject, body.schema, body) });
        });
        return;
      }
      if (req.method === 'GET' && parts.length === 4) {
        if (versions === undefined) {
          json(res, 404, { error_code: 40401, message: `Subject '${subject}' not found.` });
          return;
        }
        const version = parts[3] === 'latest' ? versions.length : Number(parts[3]);
        const id = versions[version - 1];
        const schema = id === undefined ? undefined : this.#byId.get(id);
        if (schema === undefined) json(res, 404, { error_code: 40402, message: `Version ${parts[3]} not found.` });
        else if (this.dialect === 'karapace') json(res, 200, { subject, version, ...view(schema), schema: `syntax = "proto3";\n// the .proto text of ${subject}\n` });
        else json(res, 200, { subject, version, ...view(schema) });
        return;
      }
    }
    json(res, 404, { error_code: 404, message: 'HTTP 404 Not Found' });
  }
}

function view(schema: RegisteredSchema): Record<string, unknown> {
  return {
    id: schema.id,
    schema: schema.schema,
    ...(schema.schemaType === undefined ? {} : { schemaType: schema.schemaType }),
    ...(schema.references.length === 0 ? {} : { references: schema.references }),
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/vnd.schemaregistry.v1+json' }).end(JSON.stringify(body));
}

function readBody(req: IncomingMessage, then: (text: string) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => then(Buffer.concat(chunks).toString('utf8')));
}
