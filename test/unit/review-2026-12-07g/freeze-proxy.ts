// Test helper: a TCP proxy (node:net) that can freeze the connections open right now — they stay
// open, but nothing more is forwarded either way (a half-open connection: a network partition, a
// stalled middlebox) — or reset them, while new connections pass through. `clientClosed(n)` tells
// whether the client side of the n-th connection was closed by the client.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface FreezeProxy {
  readonly url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Connections still open (client side). */
  readonly open: number;
  /** Freezes every connection open now; returns their numbers. */
  freeze(): number[];
  /** Resets every connection open now. */
  reset(): void;
  /** Whether connection `n` (0-based) was closed. */
  closed(n: number): boolean;
  stop(): Promise<void>;
}

interface Pair {
  readonly n: number;
  readonly client: Socket;
  readonly upstream: Socket;
  frozen: boolean;
  closed: boolean;
}

export async function startFreezeProxy(target: string): Promise<FreezeProxy> {
  const { hostname, port } = new URL(target);
  const pairs: Pair[] = [];
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: hostname, port: Number(port) });
    const pair: Pair = { n: pairs.length, client, upstream, frozen: false, closed: false };
    pairs.push(pair);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.on('close', () => {
      pair.closed = true;
      upstream.destroy();
    });
    upstream.on('close', () => {
      // A frozen connection keeps its client side open: the client must notice by itself.
      if (!pair.frozen) client.destroy();
    });
    client.on('data', (chunk: Buffer) => {
      if (!pair.frozen) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.frozen) client.write(chunk);
    });
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('proxy has no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    get connections() {
      return pairs.length;
    },
    get open() {
      return pairs.filter((p) => !p.closed).length;
    },
    freeze() {
      const frozen: number[] = [];
      for (const pair of pairs) {
        if (pair.closed || pair.frozen) continue;
        pair.frozen = true;
        frozen.push(pair.n);
      }
      return frozen;
    },
    reset() {
      for (const pair of pairs) {
        if (pair.closed) continue;
        pair.client.resetAndDestroy();
        pair.upstream.resetAndDestroy();
      }
    },
    closed(n) {
      return pairs[n]?.closed ?? true;
    },
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      await closed;
    },
  };
}
