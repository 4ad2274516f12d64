// Test helper: a TCP fault proxy (node:net) between inserter and a ClickHouse endpoint, on a free
// port, whose behaviour is switched at runtime:
//   pass   forward both ways
//   reset  reset every connection (open ones at once, new ones on arrival)
//   stall  accept and read, forward nothing, answer nothing (until the mode changes or stop())
//   cut    forward the request only up to `cutAfterBytes`, then reset: a body cut mid-way
// and, once, whatever the mode: `loseNextInsertReply(onLost)` forwards the next INSERT whole and
// resets the connection when ClickHouse starts to answer — the insert is stored, the client sees a
// broken connection (an outcome it cannot know); `onLost` runs then. With `{ before }`, that INSERT
// is held at the proxy until `before()` settles (say an ALTER the insert must land under).
//
//   const proxy = await startFaultProxy(ch.url);   // proxy.url = "http://127.0.0.1:PORT"
//   proxy.setMode('reset'); … proxy.setMode('pass');
//   await proxy.stop();                             // every socket closed
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export type FaultMode = 'pass' | 'reset' | 'stall' | 'cut';

export interface FaultProxy {
  readonly url: string;
  readonly port: number;
  readonly mode: FaultMode;
  /** Connections accepted so far, and how many the proxy reset. */
  readonly stats: { connections: number; resets: number; cuts: number };
  setMode(mode: FaultMode, options?: { cutAfterBytes?: number }): void;
  /**
   * The next INSERT reaches ClickHouse whole; its reply is dropped (connection reset) and `onLost`
   * runs. With `before`, the INSERT's bytes wait at the proxy until it settles (a rejection resets
   * the connection instead).
   */
  loseNextInsertReply(onLost?: () => void, options?: { before?: () => Promise<void> }): void;
  stop(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
  sent: number;
  /** This connection carries the INSERT whose reply is to be lost. */
  loseReply: boolean;
  /** Its bytes, held until the INSERT's `before` settles. */
  held: Buffer[] | undefined;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const { hostname, port: targetPort } = new URL(target);
  let mode: FaultMode = 'pass';
  let cutAfterBytes = 2048;
  const pairs = new Set<Pair>();
  const stats = { connections: 0, resets: 0, cuts: 0 };
  let loseInsert: { onLost: (() => void) | undefined; before: (() => Promise<void>) | undefined } | undefined;

  const reset = (pair: Pair): void => {
    pair.client.resetAndDestroy();
    pair.upstream?.resetAndDestroy();
    pairs.delete(pair);
  };

  const forward = (pair: Pair, chunk: Buffer): void => {
    if (pair.held !== undefined) {
      pair.held.push(chunk);
      return;
    }
    // The request line names the query (the client sends it in the URL): armed, the first INSERT's connection loses its reply.
    if (loseInsert !== undefined && !pair.loseReply && chunk.subarray(0, 2048).toString('latin1').includes('INSERT')) {
      pair.loseReply = true;
      const { before } = loseInsert;
      if (before !== undefined) {
        const held = [chunk];
        pair.held = held;
        before().then(
          () => {
            pair.held = undefined;
            for (const c of held) forward(pair, c);
          },
          () => reset(pair),
        );
        return;
      }
    }
    if (mode === 'stall') return; // swallowed: the request never arrives
    if (mode === 'cut') {
      const room = cutAfterBytes - pair.sent;
      if (room > 0) pair.upstream?.write(chunk.subarray(0, room));
      pair.sent += Math.min(chunk.length, Math.max(room, 0));
      if (chunk.length >= room) {
        stats.cuts++;
        // Give the partial body a moment to reach the server, then cut both sides.
        setTimeout(() => reset(pair), 20);
      }
      return;
    }
    pair.sent += chunk.length;
    pair.upstream?.write(chunk);
  };

  const server: Server = createServer((client) => {
    stats.connections++;
    const pair: Pair = { client, upstream: undefined, sent: 0, loseReply: false, held: undefined };
    pairs.add(pair);
    client.on('error', () => undefined);
    client.on('close', () => {
      pair.upstream?.destroy();
      pairs.delete(pair);
    });
    if (mode === 'reset') {
      stats.resets++;
      reset(pair);
      return;
    }
    const upstream = createConnection({ host: hostname, port: Number(targetPort) });
    pair.upstream = upstream;
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    upstream.on('data', (chunk: Buffer) => {
      if (pair.loseReply && loseInsert !== undefined) {
        const { onLost } = loseInsert;
        loseInsert = undefined;
        stats.resets++;
        reset(pair);
        onLost?.();
        return;
      }
      if (mode !== 'stall') client.write(chunk);
    });
    client.on('data', (chunk: Buffer) => forward(pair, chunk));
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('fault proxy has no address');

  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    get mode() {
      return mode;
    },
    stats,
    setMode(next, options = {}) {
      mode = next;
      if (options.cutAfterBytes !== undefined) cutAfterBytes = options.cutAfterBytes;
      if (next === 'reset') {
        for (const pair of [...pairs]) {
          stats.resets++;
          reset(pair);
        }
      }
      if (next === 'cut') for (const pair of pairs) pair.sent = 0;
    },
    loseNextInsertReply(onLost, options = {}) {
      loseInsert = { onLost, before: options.before };
    },
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const pair of [...pairs]) {
        pair.client.destroy();
        pair.upstream?.destroy();
      }
      pairs.clear();
      await closed;
    },
  };
}
