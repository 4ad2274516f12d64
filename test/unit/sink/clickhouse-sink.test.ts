// The ClickHouse sink over a fake HTTP server: describe reads the columns and, in the same call, the
// table's engine and deduplication settings (parameterised, never interpolated); every insert sends
// the token with deduplicate_blocks_in_dependent_materialized_views=1. The real SQL runs against
// real ClickHouse in test/e2e/dedup-safety.test.ts. Insert bodies are compressed by the sink with the
// destination's codec (Content-Encoding zstd or gzip), or sent as they are.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { buildConfig } from '../../../src/config/load.ts';
import { ClickHouseSink } from '../../../src/sink/clickhouse/sink.ts';

interface Seen {
  readonly url: URL;
  readonly body: string;
  readonly raw: Buffer;
  readonly encoding: string | undefined;
}

const seen: Seen[] = [];
let engineRow = {
  engine: 'MergeTree',
  engine_full: 'MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 0, index_granularity = 8192',
  defaults: ['non_replicated_deduplication_window=1000'],
};
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const url = new URL(req.url ?? '/', 'http://x');
    const raw = Buffer.concat(chunks);
    const body = raw.toString('utf8');
    seen.push({ url, body, raw, encoding: req.headers['content-encoding'] });
    const query = url.searchParams.get('query') ?? body;
    res.writeHead(200, { 'content-type': 'text/plain', 'x-clickhouse-summary': '{"written_rows":"1"}' });
    if (query.includes('system.columns')) res.end('{"name":"id","type":"UInt64","default_kind":""}\n');
    else if (query.includes('system.tables')) res.end(`${JSON.stringify(engineRow)}\n`);
    else res.end('');
  });
});
let sink: ClickHouseSink;
let port = 0;

function sinkWith(compression: 'none' | 'gzip' | 'zstd'): ClickHouseSink {
  const config = buildConfig(
    { kafka: { brokers: ['127.0.0.1:9092'] }, destinations: [{ id: 'a', url: `http://127.0.0.1:${port}`, compression }], routes: [{ topic: 't', table: 'x', destination: 'a' }] },
    '/tmp',
  );
  return new ClickHouseSink(config.destinations[0] as (typeof config.destinations)[number]);
}

before(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
  sink = sinkWith('none');
});

after(async () => {
  await sink.close();
  server.close();
});

test('describe returns the columns and the deduplication read from system.tables and merge_tree_settings', async () => {
  seen.length = 0;
  const schema = await sink.describe({ database: 'app', table: "we'ird" });
  assert.deepEqual(schema?.columns, [{ name: 'id', type: 'UInt64', defaultKind: '' }]);
  assert.equal(schema?.deduplication?.byToken, false, "the table's own 0 wins over the server's 1000");
  assert.equal(schema?.deduplication?.setting, 'non_replicated_deduplication_window');
  const tables = seen.find((s) => (s.url.searchParams.get('query') ?? s.body).includes('system.tables'));
  assert.ok(tables, 'system.tables was read');
  const sql = tables.url.searchParams.get('query') ?? tables.body;
  assert.match(sql, /system\.merge_tree_settings/);
  assert.doesNotMatch(sql, /we'ird/, 'the table name travels as a parameter');
  assert.match(tables.url.searchParams.get('param_table') ?? '', /^we.+ird$/);
  assert.equal(tables.url.searchParams.get('param_db'), 'app');

  engineRow = {
    engine: 'SharedMergeTree',
    engine_full: "SharedMergeTree('/t', '{replica}') ORDER BY id",
    defaults: ['replicated_deduplication_window=10000', 'replicated_deduplication_window_seconds=3600'],
  };
  const shared = await sink.describe({ database: 'app', table: 't' });
  assert.deepEqual([shared?.deduplication?.byToken, shared?.deduplication?.windowBlocks, shared?.deduplication?.windowSeconds], [true, 10000, 3600]);
});

test('every insert carries its token and deduplicates dependent materialized views', async () => {
  seen.length = 0;
  const result = await sink.insert({ table: { database: 'app', table: 't' }, format: 'JSONEachRow', body: [Buffer.from('{"id":1}\n')], rows: 1, bytes: 9, token: 'tok-1' });
  assert.equal(result.writtenRows, 1);
  const insert = seen.find((s) => (s.url.searchParams.get('query') ?? '').startsWith('INSERT'));
  assert.ok(insert, 'an INSERT was sent');
  assert.equal(insert.url.searchParams.get('insert_deduplication_token'), 'tok-1');
  assert.equal(insert.url.searchParams.get('insert_deduplicate'), '1');
  assert.equal(insert.url.searchParams.get('deduplicate_blocks_in_dependent_materialized_views'), '1');
});

test('insert bodies are sent as they are with compression none, and compressed with zstd or gzip (Content-Encoding)', async () => {
  // Several blocks, more than one compressed output chunk's worth of input: the body arrives whole and in order.
  const blocks = Array.from({ length: 40 }, (_, b) => Buffer.from(Array.from({ length: 2_000 }, (_, i) => `{"id":${b * 2_000 + i},"s":"${(b * 7919 + i).toString(36).repeat(20)}"}\n`).join('')));
  const expected = Buffer.concat(blocks);
  for (const [compression, decode] of [
    ['none', (b: Buffer) => b],
    ['zstd', zstdDecompressSync],
    ['gzip', gunzipSync],
  ] as const) {
    const s = compression === 'none' ? sink : sinkWith(compression);
    try {
      seen.length = 0;
      await s.insert({ table: { database: 'app', table: 't' }, format: 'JSONEachRow', body: blocks, rows: 80_000, bytes: expected.length, token: `tok-${compression}` });
      const insert = seen.find((x) => (x.url.searchParams.get('query') ?? '').startsWith('INSERT'));
      assert.ok(insert, `an INSERT was sent (${compression})`);
      assert.equal(insert.encoding, compression === 'none' ? undefined : compression);
      if (compression !== 'none') assert.ok(insert.raw.length < expected.length / 2, `${compression} compresses the body`);
      assert.ok(decode(insert.raw).equals(expected), `the ${compression} body is the rows, whole and in order`);
    } finally {
      if (s !== sink) await s.close();
    }
  }
});
