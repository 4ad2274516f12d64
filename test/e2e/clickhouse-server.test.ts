// The local stack's ClickHouse is ClickHouse's own server (tools/chlocal/launch.py hosts it from
// libchdb.so): what production sees from ClickHouse Cloud, checked with the official client, raw
// HTTP and the native TCP port — round trips, typed errors, request compression, parallel queries,
// authentication, per-user profiles, and data that survives a restart.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { ClickHouseError, ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { basicAuth, instancePid, startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { waitFor } from '../helpers/inserter.ts';

// The errors below are expected: the client's own error log would only repeat them.
const QUIET = { log: { level: ClickHouseLogLevel.OFF } };
const ERROR_BODY = /^Code: (\d+)\. DB::Exception: .* \(([A-Z_0-9]+)\) \(version 26\.7\.\d+\.\d+\)\n$/s;

function varUInt(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** ClickHouse's binary string: varint length, then the bytes (RowBinary and the native protocol). */
function binString(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  return Buffer.concat([varUInt(bytes.length), bytes]);
}

/**
 * Sends a native-protocol client Hello (packet 0: client name, version, revision, database, user,
 * password) to 127.0.0.1:port and returns the first bytes the server answers before closing.
 * Only with valid credentials: see the native TCP test.
 */
function nativeHello(port: number, user: string, password: string): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('connect', () => {
      socket.write(Buffer.concat([varUInt(0), binString('inserter-test'), varUInt(26), varUInt(7), varUInt(54460), binString('default'), binString(user), binString(password)]));
    });
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      // Enough for a Hello (name, version, timezone, display name) or an Exception's code and name.
      if (Buffer.concat(chunks).length >= 24) socket.destroy();
    });
    socket.on('close', () => resolvePromise(Buffer.concat(chunks)));
    socket.on('error', reject);
    socket.setTimeout(30_000, () => socket.destroy(new Error('no answer to the native Hello')));
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

void describe("chlocal: ClickHouse's own server hosted from libchdb", { timeout: 600_000 }, () => {
  let ch: ClickHouseInstance;
  let client: ClickHouseClient;
  const INGEST = { name: 'ingest', password: 's3cret' };

  before(async () => {
    const t0 = performance.now();
    ch = await startClickHouse({
      users: [{ name: 'default', password: '' }, INGEST, { name: 'few_parts', password: 'fp', settings: { parts_to_throw_insert: '2' } }, { name: 'reader', password: 'r', readonly: 1 }],
    });
    console.log(`server up in ${Math.round(performance.now() - t0)} ms at ${ch.url}, native TCP port ${ch.tcpPort}`);
    client = createClient({ url: ch.url, username: INGEST.name, password: INGEST.password, ...QUIET });
  });

  after(async () => {
    await client?.close();
    await ch?.stop();
  });

  void it('is ClickHouse: /ping, version, and ping() of the official client', async () => {
    const res = await fetch(`${ch.url}/ping`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'Ok.\n');
    assert.equal((await client.ping()).success, true);
    const rs = await client.query({ query: 'SELECT version() AS v, currentUser() AS u', format: 'JSONEachRow' });
    assert.deepEqual(await rs.json(), [{ v: '26.7.2.1', u: 'ingest' }]);
  });

  void it('creates a table, inserts JSONEachRow and RowBinary, reads back exact values', async () => {
    await client.command({
      query: `CREATE TABLE rt (id UInt64, name String, ts DateTime64(3, 'UTC'), tag Nullable(String)) ENGINE = MergeTree ORDER BY id`,
    });
    const rows = [
      { id: '18446744073709551615', name: 'ünïcødé \t "quoted"\n', ts: '2026-01-02 03:04:05.678', tag: null },
      { id: '1', name: '', ts: '1970-01-01 00:00:00.000', tag: 'x' },
    ];
    const inserted = await client.insert({ table: 'rt', values: rows, format: 'JSONEachRow' });
    assert.equal(inserted.summary?.written_rows, '2');

    // RowBinary: UInt64 LE, String, DateTime64(3) as Int64 LE ms, Nullable(String) as flag + String.
    const parts: Buffer[] = [];
    for (let i = 10; i < 1010; i++) {
      const id = Buffer.alloc(8);
      id.writeBigUInt64LE(BigInt(i));
      const ts = Buffer.alloc(8);
      ts.writeBigInt64LE(1_700_000_000_000n + BigInt(i));
      parts.push(id, binString(`\u0000\u00ff-${i}`), ts, Buffer.from([1]));
    }
    const r = await client.exec({ query: 'INSERT INTO rt FORMAT RowBinary', values: Readable.from([Buffer.concat(parts)]) });
    r.stream.destroy();
    assert.equal(r.summary?.written_rows, '1000');

    const back = await client.query({ query: 'SELECT toString(id) AS id, name, ts, tag FROM (SELECT * FROM rt WHERE id NOT BETWEEN 10 AND 1009) ORDER BY id DESC', format: 'JSONEachRow' });
    assert.deepEqual(await back.json(), rows);
    assert.equal(
      await ch.query("SELECT count(), sum(id), countIf(name = concat('\\0ÿ-', toString(id))), min(toUnixTimestamp64Milli(ts)), countIf(tag IS NULL) FROM rt WHERE id BETWEEN 10 AND 1009"),
      `1000\t${(10 + 1009) * 500}\t1000\t1700000000010\t1000\n`,
    );
  });

  void it("a server error is the client's typed ClickHouseError with ClickHouse's own code and name", async () => {
    const e = await expectClickHouseError(client.query({ query: 'SELECT * FROM no_such_table' }), '60', 'UNKNOWN_TABLE');
    assert.match(e.message, /Unknown table expression identifier 'no_such_table'/);
    const res = await fetch(`${ch.url}/`, { method: 'POST', headers: { Authorization: basicAuth(INGEST.name, INGEST.password) }, body: 'SELEC 1' });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('x-clickhouse-exception-code'), '62');
    assert.match(await res.text(), ERROR_BODY);
  });

  void it('accepts request bodies with Content-Encoding zstd, gzip and lz4', async () => {
    await ch.query('CREATE TABLE enc (id UInt32, how String) ENGINE = MergeTree ORDER BY id');
    const auth = basicAuth(INGEST.name, INGEST.password);
    const body = (how: string, base: number): Buffer => Buffer.from(Array.from({ length: 1000 }, (_, i) => JSON.stringify({ id: base + i, how })).join('\n'));
    const insert = async (encoding: string, compressed: Buffer): Promise<void> => {
      const res = await fetch(`${ch.url}/?query=${encodeURIComponent('INSERT INTO enc FORMAT JSONEachRow')}`, {
        method: 'POST',
        headers: { Authorization: auth, 'Content-Encoding': encoding },
        body: compressed,
      });
      assert.equal(res.status, 200, `${encoding}: ${await res.text()}`);
    };
    await insert('zstd', zstdCompressSync(body('zstd', 0)));
    await insert('gzip', gzipSync(body('gzip', 1000)));
    // No LZ4 frame encoder in Node.js: the server makes one (response compression, Accept-Encoding:
    // lz4), and the same bytes go back as a request body.
    const made = await fetch(`${ch.url}/?enable_http_compression=1&query=${encodeURIComponent("SELECT number + 2000 AS id, 'lz4' AS how FROM numbers(1000) FORMAT JSONEachRow")}`, {
      headers: { Authorization: auth, 'Accept-Encoding': 'lz4' },
    });
    assert.equal(made.headers.get('content-encoding'), 'lz4');
    // fetch does not decode lz4, so these are the frame's bytes: LZ4 frame magic 04 22 4D 18.
    const frame = Buffer.from(await made.arrayBuffer());
    assert.equal(frame.subarray(0, 4).toString('hex'), '04224d18');
    await insert('lz4', frame);
    assert.equal(await ch.query('SELECT how, count(), min(id), max(id) FROM enc GROUP BY how ORDER BY how'), 'gzip\t1000\t1000\t1999\nlz4\t1000\t2000\t2999\nzstd\t1000\t0\t999\n');
  });

  void it('runs two slow queries at the same time (both seen running by a third connection)', async () => {
    const ids = [randomUUID(), randomUUID()];
    // Each sleeps 0.5 s per row over 12 rows: ~6 s, far longer than one poll of system.processes.
    const slow = ids.map((id) =>
      client
        .query({
          query: 'SELECT sum(sleepEachRow(0.5)) AS s, count() AS c FROM numbers(12) SETTINGS max_block_size = 1',
          query_id: id,
          format: 'JSONEachRow',
        })
        .then((rs) => rs.json()),
    );
    let finished = false;
    const all = Promise.all(slow).finally(() => {
      finished = true;
    });
    const running = async (): Promise<number> => Number((await ch.query(`SELECT count() FROM system.processes WHERE query_id IN ('${ids.join("','")}')`)).trim());
    let both = false;
    await waitFor(async () => (both = (await running()) === 2) || finished, 'both slow queries running, or done', 60_000, 50);
    const results = await all;
    assert.ok(both, 'system.processes never listed both queries at once: they did not run in parallel');
    assert.deepEqual(results, [[{ s: '0', c: '12' }], [{ s: '0', c: '12' }]]);
  });

  void it("a wrong password gets ClickHouse's own 403 and X-ClickHouse-Exception-Code 516", async () => {
    const res = await fetch(`${ch.url}/`, { method: 'POST', headers: { Authorization: basicAuth(INGEST.name, 'wrong') }, body: 'SELECT 1' });
    assert.equal(res.status, 403);
    assert.equal(res.headers.get('x-clickhouse-exception-code'), '516');
    const text = await res.text();
    assert.match(text, /^Code: 516\. DB::Exception: ingest: Authentication failed: password is incorrect, or there is no user with such name/);
    const wrong = createClient({ url: ch.url, username: INGEST.name, password: 'wrong', ...QUIET });
    try {
      await expectClickHouseError(wrong.query({ query: 'SELECT 1' }), '516', 'AUTHENTICATION_FAILED');
    } finally {
      await wrong.close();
    }
  });

  void it('answers the native TCP protocol on its TCP port', async () => {
    // A native Hello with good credentials: the server's Hello (packet 0) names ClickHouse 26.7.
    const hello = await nativeHello(ch.tcpPort, INGEST.name, INGEST.password);
    assert.equal(hello[0], 0, `server Hello packet, got ${hello.toString('hex')}`);
    assert.equal(hello.subarray(1, 12).toString('latin1'), '\nClickHouse');
    assert.deepEqual([hello[12], hello[13]], [26, 7]);
    // (No wrong password here: in this hosted mode a failed native login aborts the whole server
    // process — tools/chlocal/README.md, "What is not like a server".)
    // And the server, as a native client of its own TCP port, reads and writes through it.
    const remote = `remote('127.0.0.1:${ch.tcpPort}', default.via_tcp, '${INGEST.name}', '${INGEST.password}')`;
    await ch.query('CREATE TABLE via_tcp (n UInt64) ENGINE = MergeTree ORDER BY n');
    await ch.query(`INSERT INTO FUNCTION ${remote} SELECT number FROM numbers(100)`);
    assert.equal(await ch.query(`SELECT count(), sum(n) FROM ${remote}`), '100\t4950\n');
  });

  void it("applies each user's profile: parts_to_throw_insert and readonly", async () => {
    await ch.query('CREATE TABLE parts (n UInt64) ENGINE = MergeTree ORDER BY n');
    await ch.query('SYSTEM STOP MERGES parts');
    const fewParts = createClient({ url: ch.url, username: 'few_parts', password: 'fp', ...QUIET });
    const reader = createClient({ url: ch.url, username: 'reader', password: 'r', ...QUIET });
    try {
      const setting = await fewParts.query({ query: "SELECT toString(getSetting('parts_to_throw_insert')) AS v", format: 'JSONEachRow' });
      assert.deepEqual(await setting.json(), [{ v: '2' }]);
      await fewParts.insert({ table: 'parts', values: [{ n: 1 }], format: 'JSONEachRow' });
      await fewParts.insert({ table: 'parts', values: [{ n: 2 }], format: 'JSONEachRow' });
      await expectClickHouseError(fewParts.insert({ table: 'parts', values: [{ n: 3 }], format: 'JSONEachRow' }), '252', 'TOO_MANY_PARTS');
      // The same insert by a user without that profile setting goes in.
      await client.insert({ table: 'parts', values: [{ n: 3 }], format: 'JSONEachRow' });
      await expectClickHouseError(reader.insert({ table: 'parts', values: [{ n: 4 }], format: 'JSONEachRow' }), '164', 'READONLY');
      assert.equal(await ch.query('SELECT groupArray(n) FROM (SELECT n FROM parts ORDER BY n)'), '[1,2,3]\n');
    } finally {
      await fewParts.close();
      await reader.close();
    }
  });

  void it('deduplicates a repeated insert_deduplication_token on plain MergeTree (like Cloud)', async () => {
    await ch.query('CREATE TABLE dedup (n UInt64) ENGINE = MergeTree ORDER BY n');
    for (let i = 0; i < 2; i++) {
      await client.insert({ table: 'dedup', values: [{ n: 7 }], format: 'JSONEachRow', clickhouse_settings: { insert_deduplication_token: 'batch-1' } });
    }
    assert.equal(await ch.query('SELECT count() FROM dedup'), '1\n');
  });

  void it('the `default` user of the local session only starts listeners when the users do not include it', async () => {
    const other = await startClickHouse({ users: [INGEST] });
    try {
      const res = await fetch(`${other.url}/`, { method: 'POST', body: 'CREATE TABLE x (n UInt8) ENGINE = Memory' });
      // ACCESS_DENIED is HTTP 500 on a real server (exceptionCodeToHTTPStatus maps only auth failures to 403).
      assert.equal(res.status, 500);
      assert.equal(res.headers.get('x-clickhouse-exception-code'), '497');
      assert.match(await res.text(), /^Code: 497\. DB::Exception: default: Not enough privileges/);
      assert.equal(await other.query('SELECT currentUser()'), 'chlocal_admin\n');
    } finally {
      await other.stop();
    }
  });

  void it('keeps its data, ports and users across a restart (a new server process)', async () => {
    await ch.query('CREATE TABLE kept (n UInt64) ENGINE = MergeTree ORDER BY n');
    await ch.query('INSERT INTO kept SELECT number FROM numbers(1000)');
    const before = { url: ch.url, tcp: ch.tcpPort, pid: instancePid(ch) };
    await ch.restart();
    assert.equal(ch.url, before.url);
    assert.notEqual(instancePid(ch), before.pid);
    assert.equal(await ch.query('SELECT count(), sum(n) FROM kept'), '1000\t499500\n');
    const rs = await client.query({ query: 'SELECT count() AS c FROM rt', format: 'JSONEachRow' });
    assert.deepEqual(await rs.json(), [{ c: '1002' }]);
    const hello = await nativeHello(before.tcp, INGEST.name, INGEST.password);
    assert.equal(hello[0], 0);
  });
});
