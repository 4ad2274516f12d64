// Test helper: a real node:http destinations API (docs/api/destinations.md) on a free port. It
// records every request and can be switched to down / slow / garbage / invalid / error /
// unauthorized; ETags and 304s work like the real thing. stop() ends every socket and timer.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ApiMode = 'ok' | 'down' | 'slow' | 'garbage' | 'invalid' | 'error' | 'unauthorized';

export interface ApiDestination {
  id: string;
  url: string;
  user?: string;
  password: string;
  database?: string;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  limits?: { concurrency?: number; maxBufferedBytes?: number; requestTimeoutMs?: number };
}

export interface ApiDocument {
  version: string;
  destinations: ApiDestination[];
  teams: { team_id: number; destination: string }[];
}

export interface RecordedRequest {
  readonly path: string;
  readonly ifNoneMatch: string | undefined;
  readonly authorization: string | undefined;
}

export class FakeDestinationsApi {
  mode: ApiMode = 'ok';
  slowMs = 2_000;
  document: ApiDocument;
  /** Answers of GET /v1/teams/{id}; a team absent here is a 404. */
  readonly teams = new Map<number, string>();
  readonly requests: RecordedRequest[] = [];
  readonly #token: string;
  readonly #server = createServer((req, res) => this.#handle(req, res));
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(document: ApiDocument, token: string) {
    this.document = document;
    this.#token = token;
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/`;
  }

  async stop(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  requestsTo(path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '/';
    this.requests.push({ path, ifNoneMatch: req.headers['if-none-match'], authorization: req.headers.authorization });
    const canary = this.document.destinations[0]?.password ?? '';
    switch (this.mode) {
      case 'down':
        req.socket.destroy();
        return;
      case 'slow': {
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          this.#answer(path, req, res);
        }, this.slowMs);
        this.#timers.add(timer);
        return;
      }
      case 'garbage':
        res.writeHead(200, { 'content-type': 'application/json' }).end(`{"version":"v-garbage","destinations":[{"id":"a","password":"${canary}`);
        return;
      case 'invalid': {
        const bad = {
          version: 'v-invalid',
          destinations: [...this.document.destinations, { id: 'c', url: 'ftp://nowhere', password: canary }],
          teams: [...this.document.teams, { team_id: 99, destination: 'nope' }],
        };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(bad));
        return;
      }
      case 'error':
        res.writeHead(503, { 'content-type': 'text/plain' }).end(`upstream broke near password=${canary}`);
        return;
      case 'unauthorized':
        res.writeHead(401).end();
        return;
      case 'ok':
        this.#answer(path, req, res);
    }
  }

  #answer(path: string, req: IncomingMessage, res: ServerResponse): void {
    if (req.headers.authorization !== `Bearer ${this.#token}`) {
      res.writeHead(401).end();
      return;
    }
    if (path === '/v1/destinations') {
      const body = JSON.stringify(this.document);
      const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { etag }).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', etag }).end(body);
      return;
    }
    const team = /^\/v1\/teams\/(\d+)$/.exec(path);
    const destination = team?.[1] === undefined ? undefined : this.teams.get(Number(team[1]));
    if (team === null || destination === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ team_id: Number(team[1]), destination }));
  }
}
