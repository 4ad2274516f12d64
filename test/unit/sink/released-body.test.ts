// What the delivery's body-block reuse relies on (encode/block-pool.ts, pipeline/deliver.ts): once the
// ClickHouse sink's insert has resolved, nothing reads the body any more, with every codec — so its
// blocks can be written by the next body. Checked with the real sink over a fake server that, like
// ClickHouse, answers an INSERT only after the body's end: the body's list is not walked and its bytes
// are not sent after the insert resolved (poisoned blocks), and the server got every byte intact.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { constants, createZstdCompress, gunzipSync, zstdDecompressSync } from 'node:zlib';
import { buildConfig } from '../../../src/config/load.ts';
import { BLOCK_SIZE, BlockPool } from '../../../src/encode/block-pool.ts';
import { ByteChunks } from '../../../src/encode/byte-chunks.ts';
import { ClickHouseSink } from '../../../src/sink/clickhouse/sink.ts';

interface Received {
  raw: Buffer;
  /** Bytes that arrived after the server answered (none for an INSERT ClickHouse accepted). */
  late: number;
  closed: Promise<void>;
}

const received: Received[] = [];
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const chunks: Buffer[] = [];
  let answered = false;
  const entry: Received = { raw: Buffer.alloc(0), late: 0, closed: once(req, 'close').then(() => undefined) };
  received.push(entry);
  req.on('data', (c: Buffer) => {
    if (answered) entry.late += c.length;
    else chunks.push(c);
  });
  req.on('end', () => {
    entry.raw = Buffer.concat(chunks);
    answered = true;
    res.writeHead(200, { 'content-type': 'text/plain', 'x-clickhouse-summary': '{"written_rows":"1"}' });
    res.end('');
  });
});
let port = 0;

function sinkWith(compression: 'none' | 'gzip' | 'zstd'): ClickHouseSink {
  const config = buildConfig(
    { kafka: { brokers: ['127.0.0.1:9092'] }, destinations: [{ id: 'a', url: `http://127.0.0.1:${port}`, compression }], routes: [{ topic: 't', table: 'x', destination: 'a' }] },
    '/tmp',
  );
  return new ClickHouseSink(config.destinations[0] as (typeof config.destinations)[number]);
}

/** A ~5 MB JSONEachRow body in pool blocks, and its bytes. */
function pooledBody(pool: BlockPool, seed: number): { body: ByteChunks; expected: Buffer } {
  const body = new ByteChunks(pool);
  for (let i = 0; i < 60_000; i++) body.writeUtf8(`{"id":${seed * 1_000_000 + i},"s":"${((seed + 1) * 7919 + i).toString(36).repeat(8)}"}\n`);
  return { body, expected: Buffer.concat(body.slice(0, body.length)) };
}

/** The body's list, reporting every element read after `settled` is set. */
function watched(slices: Buffer[]): { list: readonly Buffer[]; settled: () => void; lateReads: () => number } {
  let settled = false;
  let late = 0;
  const list = new Proxy(slices, {
    get(target, key, receiver) {
      if (settled && typeof key === 'string' && /^\d+$/.test(key)) late++;
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
  return { list, settled: () => (settled = true), lateReads: () => late };
}

before(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

after(() => {
  server.close();
});

for (const [compression, decode] of [
  ['none', (b: Buffer) => b],
  ['zstd', zstdDecompressSync],
  ['gzip', gunzipSync],
] as const) {
  test(`compression ${compression}: after a landed insert nothing reads the body, so its blocks can be reused at once`, async () => {
    const sink = sinkWith(compression);
    const pool = new BlockPool();
    try {
      for (let round = 0; round < 3; round++) {
        received.length = 0;
        const { body, expected } = pooledBody(pool, round);
        const slices = body.slice(0, body.length);
        const blocks = slices.map((s) => Buffer.from(s.buffer, 0, s.buffer.byteLength));
        assert.ok(
          blocks.every((b) => b.length === BLOCK_SIZE),
          'every slice is in a pool block',
        );
        const list = watched(slices);
        await sink.insert({ table: { database: 'app', table: 't' }, format: 'JSONEachRow', body: list.list, rows: 60_000, bytes: body.length, token: `tok-${round}` });
        list.settled();
        body.release();
        for (const b of blocks) b.fill(0xee); // what the next body would do to them
        const request = received[0];
        assert.ok(request, 'the INSERT reached the server');
        await request.closed;
        assert.equal(list.lateReads(), 0, 'the body list is not walked after the insert resolved');
        assert.equal(request.late, 0, 'no byte of the body is sent after the insert resolved');
        assert.ok(decode(request.raw).equals(expected), 'the server got the rows whole, before the blocks were poisoned');
      }
      assert.ok(pool.stats.reused > 0, 'the later rounds reused the first round blocks');
    } finally {
      await sink.close();
    }
  });
}

test('why a failed insert body is not reused: a destroyed compressor still reads the write it had started', async () => {
  // The sink destroys its compressor when a request fails; zlib closes the stream at once but its
  // handle only after the write already on libuv's pool, which still reads its input meanwhile.
  const compressor = createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: 1 } });
  compressor.on('data', () => undefined);
  const input = Buffer.alloc(64 * 1024 * 1024);
  for (let i = 0; i < input.length; i += 4096) input[i] = i & 0xff;
  const order: string[] = [];
  const written = new Promise<void>((resolve) =>
    compressor.write(input, () => {
      order.push('write done');
      resolve();
    }),
  );
  compressor.destroy(); // the write is on libuv's pool already (zlib starts it synchronously)
  await once(compressor, 'close');
  order.push('closed');
  await written;
  assert.deepEqual(order, ['closed', 'write done'], 'the input was still being read after the stream closed');
});
