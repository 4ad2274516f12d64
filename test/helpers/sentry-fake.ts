// A local Sentry ingest endpoint for tests: accepts the SDK's envelopes (gzipped or not) on any path,
// keeps every decoded envelope and the raw text, and answers 200 — the real @sentry/node SDK talks to
// it through an ordinary DSN.
import { createServer, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';

export interface Envelope {
  header: Record<string, unknown>;
  items: Array<{ header: Record<string, unknown>; payload: Record<string, unknown> }>;
}

export interface SentryFake {
  readonly dsn: string;
  /** Every envelope received, in order. */
  readonly received: Envelope[];
  /** Every request body as text (to check nothing secret reached the wire). */
  readonly raw: string[];
  /** The payloads of the event items received so far. */
  events(): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startSentryFake(): Promise<SentryFake> {
  const received: Envelope[] = [];
  const raw: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const text = body.toString('utf8');
      raw.push(text);
      const lines = text.split('\n').filter((l) => l !== '');
      const envelope: Envelope = { header: JSON.parse(lines[0] ?? '{}') as Record<string, unknown>, items: [] };
      for (let i = 1; i + 1 < lines.length; i += 2) {
        envelope.items.push({ header: JSON.parse(lines[i] ?? '{}') as Record<string, unknown>, payload: JSON.parse(lines[i + 1] ?? '{}') as Record<string, unknown> });
      }
      received.push(envelope);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('the Sentry fake has no address');
  return {
    dsn: `http://public@127.0.0.1:${address.port}/1`,
    received,
    raw,
    events: () => received.flatMap((e) => e.items.filter((i) => i.header.type === 'event').map((i) => i.payload)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
