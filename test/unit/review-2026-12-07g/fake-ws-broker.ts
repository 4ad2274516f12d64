// Test helper: a fake Pulsar web service (node:http) for the dead-letter writer — the admin API's
// topic stats (200), and WebSocket producers that answer each send with an `ok` receipt, except that
// a frame announced larger than `dropAboveBytes` makes it drop the TCP connection at once, as the
// real service does for frames of several MB (the client sees an abnormal close, 1006).
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { encodeMessageId } from '../../../src/source/pulsar-message-id.ts';

export interface FakeBroker {
  readonly url: string;
  /** Frames published (their JSON), and connections dropped over a large frame. */
  readonly published: Array<Record<string, unknown>>;
  readonly dropped: number;
  stop(): Promise<void>;
}

function serverFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  if (payload.length < 126) return Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
  const head = Buffer.alloc(4);
  head[0] = 0x81;
  head[1] = 126;
  head.writeUInt16BE(payload.length, 2);
  return Buffer.concat([head, payload]);
}

export async function startFakeBroker(dropAboveBytes: number): Promise<FakeBroker> {
  const published: Array<Record<string, unknown>> = [];
  const sockets = new Set<Socket>();
  let dropped = 0;
  let entry = 0n;
  const server: Server = createServer((request, response) => {
    response.writeHead(request.url?.endsWith('/stats') === true ? 200 : 404, { 'content-type': 'application/json' });
    response.end('{}');
  });
  server.on('upgrade', (request, socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const accept = createHash('sha1')
      .update(`${String(request.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (buffer.length < 2) return;
        const opcode = (buffer[0] as number) & 0x0f;
        let length = (buffer[1] as number) & 0x7f;
        let at = 2;
        if (length === 126) {
          if (buffer.length < 4) return;
          length = buffer.readUInt16BE(2);
          at = 4;
        } else if (length === 127) {
          if (buffer.length < 10) return;
          length = Number(buffer.readBigUInt64BE(2));
          at = 10;
        }
        if (length > dropAboveBytes) {
          dropped++;
          socket.destroy();
          return;
        }
        if (buffer.length < at + 4 + length) return;
        const mask = buffer.subarray(at, at + 4);
        const payload = Buffer.from(buffer.subarray(at + 4, at + 4 + length));
        for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (mask[i % 4] as number);
        buffer = buffer.subarray(at + 4 + length);
        if (opcode === 0x8) {
          socket.end(Buffer.from([0x88, 0]));
          return;
        }
        if (opcode !== 0x1) continue;
        const frame = JSON.parse(payload.toString()) as Record<string, unknown>;
        if (typeof frame.payload !== 'string') continue; // a keepalive
        published.push(frame);
        const messageId = encodeMessageId({ ledgerId: 7n, entryId: entry++, partition: -1, batchIndex: -1 });
        socket.write(serverFrame(JSON.stringify({ result: 'ok', messageId, context: frame.context })));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('fake broker has no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    published,
    get dropped() {
      return dropped;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
