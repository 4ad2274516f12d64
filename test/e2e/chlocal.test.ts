// Fidelity of chlocal (tools/chlocal) against what production sees from ClickHouse Cloud: the
// official client, raw HTTP, error codes/statuses, compression, settings scoping, deduplication.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { gunzipSync, gzipSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { ClickHouseError, createClient, type ClickHouseClient } from '@clickhouse/client';
import { REPO_ROOT, basicAuth, startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';

const VENV_PYTHON = join(REPO_ROOT, '.venv', 'chlocal', 'bin', 'python');
const ERROR_BODY = /^Code: (\d+)\. DB::Exception: .* \(([A-Z_0-9]+)\) \(version 26\.7\.\d+\.\d+\)\n$/s;

/** Compresses with the venv's Python packages (lz4 frame, ClickHouse native blocks). */
function pyCompress(kind: 'lz4frame' | 'native-lz4' | 'native-zstd', data: Buffer, corrupt = false): Buffer {
  const script = `
import sys, struct, lz4.frame, lz4.block, zstandard
from clickhouse_cityhash.cityhash import CityHash128
kind, corrupt = sys.argv[1], sys.argv[2] == '1'
data = sys.stdin.buffer.read()
if kind == 'lz4frame':
    sys.stdout.buffer.write(lz4.frame.compress(data)); sys.exit(0)
out = b''
for off in range(0, len(data), 100000):
    chunk = data[off:off + 100000]
    if kind == 'native-lz4':
        method, comp = 0x82, lz4.block.compress(chunk, store_size=False)
    else:
        method, comp = 0x90, zstandard.ZstdCompressor().compress(chunk)
    block = bytes([method]) + struct.pack('<II', len(comp) + 9, len(chunk)) + comp
    h = CityHash128(block)
    checksum = struct.pack('<QQ', h >> 64, h & ((1 << 64) - 1))
    if corrupt:
        checksum = bytes(16)
    out += checksum + block
sys.stdout.buffer.write(out)
`;
  return execFileSync(VENV_PYTHON, ['-c', script, kind, corrupt ? '1' : '0'], { input: data, maxBuffer: 256 * 1024 * 1024 });
}

function rowBinaryString(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  const len: number[] = [];
  let n = bytes.length;
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n > 0) b |= 0x80;
    len.push(b);
  } while (n > 0);
  return Buffer.concat([Buffer.from(len), bytes]);
}

/** GET without any automatic decoding of the response body. */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolvePromise, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function expectClickHouseError(promise: Promise<unknown>, code: string, type: string): Promise<ClickHouseError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ClickHouseError, `expected ClickHouseError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.equal(error.type, type, error.message);
    return error;
  }
  assert.fail(`expected ClickHouseError ${code} ${type}`);
}

void describe('chlocal: ClickHouse HTTP interface over chDB', { timeout: 600_000 }, () => {
  let ch: ClickHouseInstance;
  let client: ClickHouseClient;

  before(async () => {
    const t0 = performance.now();
    ch = await startClickHouse({
      users: [
        { name: 'default', password: '' },
        { name: 'ingest', password: 's3cret' },
        { name: 'tiny', password: 'tiny', settings: { max_memory_usage: '2000000' } },
        { name: 'reader', password: 'r', readonly: 1 },
      ],
    });
    console.log(`chlocal instance up in ${Math.round(performance.now() - t0)} ms at ${ch.url}`);
    client = createClient({ url: ch.url, username: 'ingest', password: 's3cret' });
  });

  after(async () => {
    await client?.close();
    await ch?.stop();
  });

  void it('answers /ping and / like ClickHouse, and ping() of the official client', async () => {
    for (const path of ['/ping', '/']) {
      const res = await fetch(`${ch.url}${path}`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'Ok.\n');
    }
    const ping = await client.ping();
    assert.equal(ping.success, true);
  });

  void it('creates a table, inserts JSONEachRow objects and reads back exact values', async () => {
    await client.command({
      query: `CREATE TABLE events (id UInt64, name String, ts DateTime64(3, 'UTC'), score Float64, tag Nullable(String))
              ENGINE = MergeTree ORDER BY id`,
    });
    const rows = [
      { id: '18446744073709551615', name: 'ünïcødé \t "quoted"\n', ts: '2026-01-02 03:04:05.678', score: 1.5, tag: null },
      { id: '1', name: '', ts: '1970-01-01 00:00:00.000', score: -0.25, tag: 'x' },
    ];
    const result = await client.insert({ table: 'events', values: rows, format: 'JSONEachRow' });
    assert.equal(result.executed, true);
    assert.equal(result.summary?.written_rows, '2');
    const rs = await client.query({
      query: 'SELECT toString(id) AS id, name, ts, score, tag FROM events ORDER BY id DESC',
      format: 'JSONEachRow',
    });
    assert.deepEqual(await rs.json(), rows);
  });

  void it('inserts RowBinary through client.exec with a raw stream, byte for byte', async () => {
    await client.command({ query: 'CREATE TABLE bin (id UInt32, s String, t DateTime64(3, \'UTC\')) ENGINE = MergeTree ORDER BY id' });
    const parts: Buffer[] = [];
    const expected: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const id = Buffer.alloc(4);
      id.writeUInt32LE(i);
      // Binary payloads that are not valid UTF-8 must pass through unchanged.
      const s = i % 2 === 0 ? `row-${i}` : `\u0000\u00ff${'x'.repeat(i % 7)}`;
      const t = Buffer.alloc(8);
      t.writeBigInt64LE(1_700_000_000_000n + BigInt(i));
      parts.push(id, rowBinaryString(s), t);
      expected.push(`${i}\t${Buffer.from(s, 'utf8').toString('hex')}\t${1_700_000_000_000 + i}`);
    }
    const r = await client.exec({ query: 'INSERT INTO bin FORMAT RowBinary', values: Readable.from([Buffer.concat(parts)]) });
    r.stream.destroy();
    assert.equal(r.summary?.written_rows, '1000');
    const text = await ch.query('SELECT id, lower(hex(s)), toUnixTimestamp64Milli(t) FROM bin ORDER BY id');
    assert.equal(text, expected.join('\n') + '\n');
  });

  void it('inserts Native format passed through unmodified', async () => {
    // Produce a Native block with the engine itself, send it back through the HTTP interface.
    const res = await fetch(`${ch.url}/?query=${encodeURIComponent('SELECT number::UInt64 AS n, toString(number) AS s FROM numbers(5000) FORMAT Native')}`);
    assert.equal(res.status, 200);
    const native = Buffer.from(await res.arrayBuffer());
    await ch.query('CREATE TABLE nat (n UInt64, s String) ENGINE = MergeTree ORDER BY n');
    const ins = await fetch(`${ch.url}/?query=${encodeURIComponent('INSERT INTO nat FORMAT Native')}`, { method: 'POST', body: native });
    assert.equal(ins.status, 200, await ins.text());
    assert.equal(await ch.query('SELECT count(), sum(n), sum(toUInt64(s)) FROM nat'), '5000\t12497500\t12497500\n');
  });

  void it('surfaces server errors as typed ClickHouseError, with ClickHouse status, headers and body', async () => {
    await expectClickHouseError(client.query({ query: 'SELECT * FROM no_such_table' }), '60', 'UNKNOWN_TABLE');
    await assert.rejects(client.command({ query: 'SELEC 1' }), (e: unknown) => e instanceof ClickHouseError && e.code === '62');

    const queryId = randomUUID();
    const res = await fetch(`${ch.url}/?query_id=${queryId}`, { method: 'POST', body: 'SELECT * FROM no_such_table' });
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('x-clickhouse-exception-code'), '60');
    assert.equal(res.headers.get('x-clickhouse-query-id'), queryId);
    assert.match(res.headers.get('x-clickhouse-exception-tag') ?? '', /^[a-z0-9]{16}$/);
    const body = await res.text();
    assert.match(body, ERROR_BODY);
    assert.match(body, /^Code: 60\. DB::Exception: .*\(UNKNOWN_TABLE\)/);

    const syntax = await fetch(`${ch.url}/`, { method: 'POST', body: 'SELECT 1; SELECT 2' });
    assert.equal(syntax.status, 400);
    assert.equal(syntax.headers.get('x-clickhouse-exception-code'), '62');

    const setting = await fetch(`${ch.url}/?no_such_setting=1`, { method: 'POST', body: 'SELECT 1' });
    assert.equal(setting.status, 404);
    assert.equal(setting.headers.get('x-clickhouse-exception-code'), '115');
  });

  void it('sends success headers: query id, summary, format, timezone, display name', async () => {
    const queryId = `q-${randomUUID()}`;
    const res = await fetch(`${ch.url}/?query_id=${queryId}&default_format=JSONEachRow`, { method: 'POST', body: 'SELECT 1 AS x' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '{"x":1}\n');
    assert.equal(res.headers.get('x-clickhouse-query-id'), queryId);
    assert.equal(res.headers.get('x-clickhouse-format'), 'JSONEachRow');
    assert.match(res.headers.get('x-clickhouse-timezone') ?? '', /UTC/);
    assert.ok(res.headers.get('x-clickhouse-server-display-name'));
    const summary = JSON.parse(res.headers.get('x-clickhouse-summary') ?? '{}') as Record<string, string>;
    assert.equal(summary.read_rows, '1');
    const generated = await fetch(`${ch.url}/`, { method: 'POST', body: 'SELECT 1', headers: { 'X-ClickHouse-Format': 'CSV' } });
    assert.match(generated.headers.get('x-clickhouse-query-id') ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(generated.headers.get('x-clickhouse-format'), 'CSV');
    assert.equal(await generated.text(), '1\n');
  });

  void it('authenticates by X-ClickHouse headers, Basic auth and URL parameters; wrong password is 516/403', async () => {
    const who = 'SELECT 1';
    for (const init of [
      { headers: { 'X-ClickHouse-User': 'ingest', 'X-ClickHouse-Key': 's3cret' } },
      { headers: { Authorization: basicAuth('ingest', 's3cret') } },
    ]) {
      const res = await fetch(`${ch.url}/`, { method: 'POST', body: who, ...init });
      assert.equal(res.status, 200, await res.text());
    }
    const viaParams = await fetch(`${ch.url}/?user=ingest&password=s3cret`, { method: 'POST', body: who });
    assert.equal(viaParams.status, 200);

    const bad = await fetch(`${ch.url}/`, { method: 'POST', body: who, headers: { Authorization: basicAuth('default', 'nope') } });
    assert.equal(bad.status, 403);
    assert.equal(bad.headers.get('x-clickhouse-exception-code'), '516');
    assert.equal(
      await bad.text(),
      'Code: 516. DB::Exception: default: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED) (version 26.7.2.1)\n',
    );
    const wrong = createClient({ url: ch.url, username: 'ingest', password: 'wrong' });
    try {
      await expectClickHouseError(wrong.query({ query: 'SELECT 1' }), '516', 'AUTHENTICATION_FAILED');
    } finally {
      await wrong.close();
    }
  });

  void it('applies URL settings to one request only (no leak into the next)', async () => {
    const read = async (): Promise<unknown> => {
      const rs = await client.query({
        query:
          "SELECT toString(getSetting('max_memory_usage')) AS m, getSetting('date_time_input_format') AS d, getSetting('async_insert') AS a, currentDatabase() AS db",
        format: 'JSONEachRow',
      });
      return (await rs.json())[0];
    };
    const baseline = await read();
    assert.deepEqual(baseline, { m: '0', d: 'basic', a: false, db: 'default' });

    const rs = await client.query({
      query: "SELECT toString(getSetting('max_memory_usage')) AS m, getSetting('date_time_input_format') AS d, currentDatabase() AS db",
      format: 'JSONEachRow',
      clickhouse_settings: { max_memory_usage: '123456789', date_time_input_format: 'best_effort' },
    });
    assert.deepEqual(await rs.json(), [{ m: '123456789', d: 'best_effort', db: 'default' }]);
    assert.deepEqual(await read(), baseline);

    // SET inside a request and the database parameter do not outlive the request either.
    await client.command({ query: 'SET max_memory_usage = 777' });
    await ch.query('CREATE DATABASE IF NOT EXISTS other');
    const other = await fetch(`${ch.url}/?database=other`, { method: 'POST', body: 'SELECT currentDatabase()' });
    assert.equal(await other.text(), 'other\n');
    assert.deepEqual(await read(), baseline);

    // Per-user settings profile applies to that user only.
    const tiny = await fetch(`${ch.url}/`, { method: 'POST', body: "SELECT getSetting('max_memory_usage')", headers: { Authorization: basicAuth('tiny', 'tiny') } });
    assert.equal(await tiny.text(), '2000000\n');
    assert.deepEqual(await read(), baseline);
  });

  void it('applies insert settings per request (date_time_input_format, input_format_skip_unknown_fields)', async () => {
    await client.command({ query: "CREATE TABLE st (id UInt32, t DateTime('UTC')) ENGINE = MergeTree ORDER BY id" });
    const row = { id: 1, t: 'Fri, 02 Jan 2026 03:04:05 GMT', extra: 1 };
    // Server defaults: date_time_input_format = basic (rejects RFC 1123), unknown fields skipped.
    await expectClickHouseError(client.insert({ table: 'st', values: [row], format: 'JSONEachRow' }), '41', 'CANNOT_PARSE_DATETIME');
    await expectClickHouseError(
      client.insert({
        table: 'st',
        values: [row],
        format: 'JSONEachRow',
        clickhouse_settings: { input_format_skip_unknown_fields: 0, date_time_input_format: 'best_effort' },
      }),
      '117',
      'INCORRECT_DATA',
    );
    await client.insert({ table: 'st', values: [row], format: 'JSONEachRow', clickhouse_settings: { date_time_input_format: 'best_effort' } });
    assert.equal(await ch.query('SELECT id, t FROM st'), '1\t2026-01-02 03:04:05\n');
  });

  void it('deduplicates MergeTree inserts by insert_deduplication_token (like ClickHouse Cloud)', async () => {
    await client.command({ query: 'CREATE TABLE dedup (id UInt32) ENGINE = MergeTree ORDER BY id' });
    const values = [{ id: 1 }, { id: 2 }, { id: 3 }];
    for (let i = 0; i < 2; i++) {
      await client.insert({ table: 'dedup', values, format: 'JSONEachRow', clickhouse_settings: { insert_deduplication_token: 'batch-1' } });
    }
    assert.equal(await ch.query('SELECT count() FROM dedup'), '3\n');
    await client.insert({ table: 'dedup', values, format: 'JSONEachRow', clickhouse_settings: { insert_deduplication_token: 'batch-2' } });
    assert.equal(await ch.query('SELECT count() FROM dedup'), '6\n');
    assert.match(await ch.query("SELECT value FROM system.merge_tree_settings WHERE name = 'non_replicated_deduplication_window'"), /^1000\n$/);
  });

  void it('decodes request bodies: gzip, deflate, zstd, lz4, br (client), decompress=1', async () => {
    await ch.query('CREATE TABLE comp (id UInt32, s String) ENGINE = MergeTree ORDER BY id');
    const body = (from: number): Buffer =>
      Buffer.from(Array.from({ length: 100 }, (_, i) => JSON.stringify({ id: from + i, s: `v${from + i}` })).join('\n'));
    const q = `${ch.url}/?query=${encodeURIComponent('INSERT INTO comp FORMAT JSONEachRow')}`;
    const cases: Array<[string, Record<string, string>, Buffer]> = [
      ['gzip', { 'Content-Encoding': 'gzip' }, gzipSync(body(0))],
      ['zstd', { 'Content-Encoding': 'zstd' }, zstdCompressSync(body(100))],
      ['lz4', { 'Content-Encoding': 'lz4' }, pyCompress('lz4frame', body(200))],
    ];
    for (const [name, headers, payload] of cases) {
      const res = await fetch(q, { method: 'POST', body: payload, headers });
      assert.equal(res.status, 200, `${name}: ${await res.text()}`);
    }
    for (const [i, kind] of (['native-lz4', 'native-zstd'] as const).entries()) {
      const res = await fetch(`${q}&decompress=1`, { method: 'POST', body: pyCompress(kind, body(300 + i * 100)) });
      assert.equal(res.status, 200, `${kind}: ${await res.text()}`);
    }
    const corrupt = await fetch(`${q}&decompress=1`, { method: 'POST', body: pyCompress('native-lz4', body(900), true) });
    assert.equal(corrupt.status, 500);
    assert.equal(corrupt.headers.get('x-clickhouse-exception-code'), '40'); // CHECKSUM_DOESNT_MATCH
    assert.equal(await ch.query('SELECT count(), uniqExact(id), min(id), max(id) FROM comp'), '500\t500\t0\t499\n');

    const compressing = createClient({ url: ch.url, username: 'ingest', password: 's3cret', compression: { request: true, response: true } });
    try {
      await compressing.insert({ table: 'comp', values: [{ id: 1000, s: 'gz' }], format: 'JSONEachRow' });
      const rs = await compressing.query({ query: 'SELECT s FROM comp WHERE id = 1000', format: 'JSONEachRow' });
      assert.deepEqual(await rs.json(), [{ s: 'gz' }]);
    } finally {
      await compressing.close();
    }
  });

  void it('compresses responses when enable_http_compression=1 and the client accepts it', async () => {
    const url = `${ch.url}/?enable_http_compression=1&query=${encodeURIComponent('SELECT number FROM numbers(1000)')}`;
    const expected = Array.from({ length: 1000 }, (_, i) => `${i}\n`).join('');
    for (const [encoding, decode] of [['gzip', gunzipSync], ['zstd', zstdDecompressSync]] as const) {
      const res = await rawGet(url, { 'Accept-Encoding': encoding });
      assert.equal(res.headers['content-encoding'], encoding);
      assert.notEqual(res.body.toString(), expected);
      assert.equal(decode(res.body).toString(), expected, encoding);
    }
    const plain = await fetch(`${ch.url}/?query=${encodeURIComponent('SELECT 1')}`, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(plain.headers.get('content-encoding'), null);
  });

  void it('returns TOO_MANY_PARTS (252) with HTTP 500 when parts pile up', async () => {
    await client.command({
      query: 'CREATE TABLE parts (id UInt32) ENGINE = MergeTree ORDER BY id SETTINGS parts_to_throw_insert = 2, parts_to_delay_insert = 1000',
    });
    await client.command({ query: 'SYSTEM STOP MERGES parts' });
    await client.insert({ table: 'parts', values: [{ id: 1 }], format: 'JSONEachRow' });
    await client.insert({ table: 'parts', values: [{ id: 2 }], format: 'JSONEachRow' });
    await expectClickHouseError(client.insert({ table: 'parts', values: [{ id: 3 }], format: 'JSONEachRow' }), '252', 'TOO_MANY_PARTS');
    const res = await fetch(`${ch.url}/?query=${encodeURIComponent('INSERT INTO parts FORMAT JSONEachRow')}`, { method: 'POST', body: '{"id":4}' });
    assert.equal(res.status, 500);
    assert.equal(res.headers.get('x-clickhouse-exception-code'), '252');
    assert.match(await res.text(), ERROR_BODY);
  });

  void it('returns MEMORY_LIMIT_EXCEEDED (241) for a user whose profile has a tiny max_memory_usage', async () => {
    const tiny = createClient({ url: ch.url, username: 'tiny', password: 'tiny' });
    try {
      await expectClickHouseError(
        tiny.query({ query: 'SELECT groupArray(number) FROM numbers(5000000)', format: 'JSONEachRow' }),
        '241',
        'MEMORY_LIMIT_EXCEEDED',
      );
    } finally {
      await tiny.close();
    }
    const res = await fetch(`${ch.url}/`, {
      method: 'POST',
      body: 'SELECT groupArray(number) FROM numbers(5000000)',
      headers: { Authorization: basicAuth('tiny', 'tiny') },
    });
    assert.equal(res.status, 500);
    assert.equal(res.headers.get('x-clickhouse-exception-code'), '241');
    // ... and the limit does not stick to the engine for other users.
    assert.equal((await ch.query('SELECT length(groupArray(number)) FROM numbers(5000000)')).trim(), '5000000');
  });

  void it('enforces readonly: readonly users and GET requests', async () => {
    const ro = await fetch(`${ch.url}/`, { method: 'POST', body: 'CREATE TABLE ro (id UInt8) ENGINE = Memory', headers: { Authorization: basicAuth('reader', 'r') } });
    assert.equal(ro.status, 500);
    assert.equal(ro.headers.get('x-clickhouse-exception-code'), '164');
    const sel = await fetch(`${ch.url}/`, { method: 'POST', body: 'SELECT 1', headers: { Authorization: basicAuth('reader', 'r') } });
    assert.equal(await sel.text(), '1\n');
    const get = await fetch(`${ch.url}/?query=${encodeURIComponent('CREATE TABLE ro (id UInt8) ENGINE = Memory')}`);
    assert.equal(get.headers.get('x-clickhouse-exception-code'), '164');
  });

  void it('serves concurrent requests on pooled keep-alive connections', async () => {
    const results = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const rs = await client.query({ query: `SELECT ${i} AS i, sum(number) AS s FROM numbers(100000)`, format: 'JSONEachRow' });
        return rs.json<{ i: number; s: string }>();
      }),
    );
    results.forEach((rows, i) => assert.deepEqual(rows, [{ i, s: '4999950000' }])); // UInt64 quoted, as on a server
  });

  void it('takes large bodies (~24 MB JSONEachRow of ~1.5 KB rows)', async () => {
    await ch.query('CREATE TABLE big (id UInt64, payload String) ENGINE = MergeTree ORDER BY id');
    const filler = 'x'.repeat(1480);
    const rows = 16_000;
    const body = Buffer.from(Array.from({ length: rows }, (_, i) => `{"id":${i},"payload":"${filler}"}`).join('\n'));
    const t0 = performance.now();
    const res = await fetch(`${ch.url}/?query=${encodeURIComponent('INSERT INTO big FORMAT JSONEachRow')}`, { method: 'POST', body });
    const ms = performance.now() - t0;
    assert.equal(res.status, 200, await res.text());
    const summary = JSON.parse(res.headers.get('x-clickhouse-summary') ?? '{}') as Record<string, string>;
    assert.equal(summary.written_rows, String(rows));
    console.log(`JSONEachRow insert: ${rows} rows, ${(body.length / 1e6).toFixed(1)} MB in ${Math.round(ms)} ms = ${Math.round(rows / (ms / 1000))} rows/s`);
    assert.equal(await ch.query('SELECT count(), sum(length(payload)) FROM big'), `${rows}\t${rows * 1480}\n`);
  });

  void it('survives a crash of the engine process: the request fails, the next one works, data stays', async () => {
    const enginePid = Number(readFileSync(join(ch.dir, 'engine.pid'), 'utf8').trim());
    process.kill(enginePid, 'SIGKILL');
    const res = await fetch(`${ch.url}/`, { method: 'POST', body: 'SELECT 1' });
    assert.equal(res.status, 500);
    assert.equal(await ch.query('SELECT count() FROM dedup'), '6\n');
    assert.notEqual(Number(readFileSync(join(ch.dir, 'engine.pid'), 'utf8').trim()), enginePid);
  });

  void it('runs several instances at once, isolated, and restart() keeps port and data', async () => {
    const [a, b] = await Promise.all([startClickHouse(), startClickHouse()]);
    try {
      assert.notEqual(a.url, b.url);
      await a.query('CREATE TABLE only_here (x UInt8) ENGINE = MergeTree ORDER BY x');
      await a.query('INSERT INTO only_here VALUES (7)');
      await assert.rejects(b.query('SELECT * FROM only_here'), /UNKNOWN_TABLE/);
      const url = a.url;
      await a.restart();
      assert.equal(a.url, url);
      assert.equal(await a.query('SELECT x FROM only_here'), '7\n');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
