// Review 2026-12-07f: a fake Pulsar web service the test controls (node:http, a minimal RFC 6455
// server of its own: nothing installed), for frames and answers a real broker will not produce on
// demand — duplicated or out-of-order message ids, ids at the packing limits, a close handshake the
// peer never completes, a receipt that never comes, admin answers that hang or fail.
//
//   const fake = await startFakePulsar();              // fake.url = http://127.0.0.1:PORT
//   fake.admin = (req) => ({ status: 200, body: {...} }) // or 'hang'
//   const conn = await fake.next('consumer');          // the next accepted WebSocket of that kind
//   conn.send({ messageId, payload }); conn.frames     // frames the client sent (parsed JSON)
//   await fake.close();                                // every socket and the server closed
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

export type SocketKind = 'consumer' | 'producer' | 'reader';

export interface AdminAnswer {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

export interface AdminRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
}

export class FakeConnection {
  readonly kind: SocketKind;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  /** Frames the client sent, parsed (text frames only). */
  readonly frames: unknown[] = [];
  /** Close frames the client sent (their codes). */
  readonly closeCodes: number[] = [];
  /** When set, a close frame from the client is not answered (the peer never completes the handshake). */
  ignoreClose = false;
  /** Called for each parsed text frame (after it is recorded). */
  onFrame: ((frame: unknown) => void) | undefined;
  /** Called when the client's close frame arrives, before it is answered (the server may still send). */
  onCloseFrame: (() => void) | undefined;
  ended = false;
  readonly #socket: Duplex;
  #buffer = Buffer.alloc(0);

  constructor(kind: SocketKind, path: string, headers: IncomingMessage['headers'], socket: Duplex) {
    this.kind = kind;
    this.path = path;
    this.headers = headers;
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('close', () => (this.ended = true));
    socket.on('error', () => undefined);
  }

  send(frame: unknown): void {
    this.sendText(JSON.stringify(frame));
  }

  sendText(text: string): void {
    if (!this.ended) this.#socket.write(encodeFrame(0x1, Buffer.from(text)));
  }

  /** A close frame from the server (the client answers it and the socket ends). */
  close(code = 1000): void {
    const body = Buffer.alloc(2);
    body.writeUInt16BE(code);
    if (!this.ended) this.#socket.write(encodeFrame(0x8, body));
  }

  /** Drops the TCP connection without a close frame. */
  destroy(): void {
    this.#socket.destroy();
  }

  #read(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const frame = decodeFrame(this.#buffer);
      if (frame === undefined) return;
      this.#buffer = this.#buffer.subarray(frame.length);
      if (frame.opcode === 0x1) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(frame.payload.toString('utf8'));
        } catch {
          parsed = frame.payload.toString('utf8');
        }
        this.frames.push(parsed);
        this.onFrame?.(parsed);
      } else if (frame.opcode === 0x8) {
        this.closeCodes.push(frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005);
        this.onCloseFrame?.();
        if (!this.ignoreClose && !this.ended) {
          this.#socket.write(encodeFrame(0x8, frame.payload.subarray(0, 2)));
          this.#socket.end();
        }
      } else if (frame.opcode === 0x9) {
        if (!this.ended) this.#socket.write(encodeFrame(0xa, frame.payload));
      }
    }
  }
}

export interface FakePulsar {
  readonly url: string;
  /** Every WebSocket accepted, in order. */
  readonly connections: FakeConnection[];
  /** Every admin request, in order. */
  readonly requests: AdminRequest[];
  /** Every upgrade request's path (accepted or not). */
  readonly upgrades: string[];
  /** Answers an admin request (default: 404); 'hang' never answers. */
  admin: (request: AdminRequest) => AdminAnswer | 'hang';
  /** Decides an upgrade: true accepts, a number refuses with that HTTP status (default: accept). */
  accept: (kind: SocketKind, path: string) => true | number;
  /** Called when a connection is accepted (before the client sees it open). */
  onConnection: ((connection: FakeConnection) => void) | undefined;
  /** Resolves with the next connection of `kind` accepted from now on (or one accepted already and not yet taken). */
  next(kind: SocketKind, timeoutMs?: number): Promise<FakeConnection>;
  close(): Promise<void>;
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export async function startFakePulsar(): Promise<FakePulsar> {
  const sockets = new Set<Duplex>();
  const hanging = new Set<ServerResponse>();
  const taken = new Set<FakeConnection>();
  const fake: FakePulsar = {
    url: '',
    connections: [],
    requests: [],
    upgrades: [],
    admin: () => ({ status: 404, body: { reason: 'not found' } }),
    accept: () => true,
    onConnection: undefined,
    async next(kind, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = fake.connections.find((c) => c.kind === kind && !taken.has(c));
        if (found !== undefined) {
          taken.add(found);
          return found;
        }
        if (Date.now() > deadline) throw new Error(`no ${kind} connection within ${timeoutMs} ms`);
        await sleep(5);
      }
    },
    async close() {
      for (const response of hanging) response.destroy();
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://fake');
    const path = url.pathname.replace(/^\/admin\/v2\//, '') + url.search;
    const admin: AdminRequest = { method: request.method ?? 'GET', path, headers: request.headers };
    fake.requests.push(admin);
    request.resume();
    request.on('end', () => {
      const answer = fake.admin(admin);
      if (answer === 'hang') {
        hanging.add(response);
        return;
      }
      const body = answer.body === undefined ? '' : Buffer.isBuffer(answer.body) ? answer.body : JSON.stringify(answer.body);
      response.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      response.end(body);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (request: IncomingMessage, socket: Duplex) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const path = request.url ?? '/';
    fake.upgrades.push(path);
    const kind = /^\/ws\/v2\/(consumer|producer|reader)\//.exec(path)?.[1] as SocketKind | undefined;
    const verdict = kind === undefined ? 404 : fake.accept(kind, path);
    if (verdict !== true || kind === undefined) {
      socket.end(`HTTP/1.1 ${verdict === true ? 404 : verdict} Refused\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    const key = String(request.headers['sec-websocket-key']);
    const acceptKey = createHash('sha1')
      .update(key + GUID)
      .digest('base64');
    const connection = new FakeConnection(kind, path, request.headers, socket);
    fake.connections.push(connection);
    fake.onConnection?.(connection);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${acceptKey}\r\n\r\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (fake as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

function encodeFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const head = length < 126 ? Buffer.from([0x80 | opcode, length]) : length < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (length >= 126 && length < 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(length, 2);
  } else if (length >= 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  }
  return Buffer.concat([head, payload]);
}

function decodeFrame(buffer: Buffer): { opcode: number; payload: Buffer; length: number } | undefined {
  if (buffer.length < 2) return undefined;
  const opcode = (buffer[0] as number) & 0x0f;
  const masked = ((buffer[1] as number) & 0x80) !== 0;
  let length = (buffer[1] as number) & 0x7f;
  let at = 2;
  if (length === 126) {
    if (buffer.length < 4) return undefined;
    length = buffer.readUInt16BE(2);
    at = 4;
  } else if (length === 127) {
    if (buffer.length < 10) return undefined;
    length = Number(buffer.readBigUInt64BE(2));
    at = 10;
  }
  const maskAt = at;
  if (masked) at += 4;
  if (buffer.length < at + length) return undefined;
  const payload = Buffer.from(buffer.subarray(at, at + length));
  if (masked) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (buffer[maskAt + (i % 4)] as number);
  return { opcode, payload, length: at + length };
}

/** Polls until `check` holds (real time); fails with `what` after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** How the promise settles within `limitMs`: {resolved}, the rejection, or 'pending'. */
export async function settle(promise: Promise<unknown>, limitMs: number): Promise<{ outcome: unknown; ms: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    promise.then(
      (value) => ({ resolved: value }),
      (error: unknown) => error,
    ),
    new Promise((resolve) => (timer = setTimeout(() => resolve('pending'), limitMs))),
  ]);
  clearTimeout(timer);
  return { outcome, ms: Date.now() - started };
}
