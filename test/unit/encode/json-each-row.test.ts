import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteChunks } from '../../../src/encode/byte-chunks.ts';
import type { ColumnInfo } from '../../../src/sink/types.ts';
import { rowShapeFor, writeRow } from '../../../src/encode/json-each-row.ts';
import type { SourceRecord } from '../../../src/source/types.ts';

const record: SourceRecord = {
  topic: 'events',
  partition: 3,
  offset: 42n,
  timestamp: 1_696_405_999_007n,
  key: Buffer.from('k"1'),
  value: Buffer.from('{"a":1}'),
  headers: [[Buffer.from('h'), Buffer.from('v')]],
  epoch: 0,
};
const col = (name: string, type = 'String', defaultKind = ''): ColumnInfo => ({ name, type, defaultKind });

function encode(columns: ColumnInfo[], json: string): unknown {
  const out = new ByteChunks();
  writeRow(out, rowShapeFor(columns), record, Buffer.from(json), 7);
  const text = Buffer.concat(out.slice(0, out.length)).toString('utf8');
  assert.ok(text.endsWith('\n'));
  return JSON.parse(text);
}

test('passes the message through untouched when the table has no metadata columns', () => {
  assert.deepEqual(encode([col('a')], '{"a":1,"b":"x"}'), { a: 1, b: 'x' });
});

test('splices exactly the metadata columns the live table has', () => {
  const columns = [
    col('a'),
    col('_offset', 'UInt64'),
    col('_timestamp', 'DateTime'),
    col('_partition', 'UInt64'),
    col('_key'),
    col('_topic'),
    col('_timestamp_ms', 'DateTime64(3)'),
    col('_headers.name', 'Array(String)'),
    col('_headers.value', 'Array(String)'),
  ];
  assert.deepEqual(encode(columns, '{"a":1}'), {
    _topic: 'events',
    _partition: 3,
    _offset: 42,
    _key: 'k"1',
    _timestamp: 1_696_405_999,
    _timestamp_ms: '1696405999.007',
    '_headers.name': ['h'],
    '_headers.value': ['v'],
    a: 1,
  });
});

test('an empty object still yields valid JSON', () => {
  assert.deepEqual(encode([col('_offset', 'UInt64')], '{ }'), { _offset: 42 });
});

test('materialized metadata columns are not written', () => {
  assert.deepEqual(encode([col('_offset', 'UInt64', 'MATERIALIZED')], '{"a":1}'), { a: 1 });
});

test('a table with a _message column receives the whole message and the team', () => {
  assert.deepEqual(encode([col('team_id', 'Int64'), col('_message', 'JSON'), col('_offset', 'UInt64')], '{"a":{"b":2}}'), { _offset: 42, team_id: 7, _message: { a: { b: 2 } } });
});

test('large values are referenced and slices cross block boundaries intact', () => {
  const out = new ByteChunks();
  const big = Buffer.alloc(200_000, 0x61);
  out.writeUtf8('x'.repeat(100_000));
  out.writeBytes(big);
  out.writeUtf8('yz');
  assert.equal(out.length, 300_002);
  const mid = Buffer.concat(out.slice(99_999, 300_001)).toString('latin1');
  assert.equal(mid, `x${'a'.repeat(200_000)}y`);
});

test('a key and headers that are not UTF-8 keep their bytes inside the JSON strings (as the Kafka engine stores them)', () => {
  const columns = [col('_key'), col('_headers.name', 'Array(String)'), col('_headers.value', 'Array(String)'), col('_offset', 'UInt64')];
  const raw = { ...record, key: Buffer.from([0xff, 0x22, 0xfe, 0x5c, 0x0a, 0x41]), headers: [[Buffer.from([0xc3]), Buffer.from('v')]] as const };
  for (const json of ['{"a":1}', '{}']) {
    const out = new ByteChunks();
    writeRow(out, rowShapeFor(columns), raw, Buffer.from(json), undefined);
    const bytes = Buffer.concat(out.slice(0, out.length));
    const expected = Buffer.concat([
      Buffer.from('{"_offset":42,"_key":"'),
      Buffer.from([0xff, 0x5c, 0x22, 0xfe, 0x5c, 0x5c]),
      Buffer.from('\\u000aA","_headers.name":["'),
      Buffer.from([0xc3]),
      Buffer.from(`"],"_headers.value":["v"]${json === '{}' ? '' : ',"a":1'}}\n`),
    ]);
    assert.equal(bytes.toString('hex'), expected.toString('hex'));
  }
});

test('metadata digits are written exactly: padded milliseconds, offsets and times past 2^53, records without a time', () => {
  const columns = [col('_partition', 'UInt64'), col('_offset', 'UInt64'), col('_timestamp', 'DateTime'), col('_timestamp_ms', 'DateTime64(3)')];
  const line = (offset: bigint, timestamp: bigint, json = '{"a":1}'): string => {
    const out = new ByteChunks();
    writeRow(out, rowShapeFor(columns), { ...record, offset, timestamp }, Buffer.from(json), undefined);
    return Buffer.concat(out.slice(0, out.length)).toString('utf8');
  };
  assert.equal(line(0n, 1_696_405_999_007n), '{"_partition":3,"_offset":0,"_timestamp":1696405999,"_timestamp_ms":"1696405999.007","a":1}\n');
  assert.equal(line(10n, 1_696_405_999_000n, '{}'), '{"_partition":3,"_offset":10,"_timestamp":1696405999,"_timestamp_ms":"1696405999.000"}\n');
  assert.equal(line(9_007_199_254_740_993n, 999n), '{"_partition":3,"_offset":9007199254740993,"_timestamp":0,"_timestamp_ms":"0.999","a":1}\n');
  // Kafka's "no timestamp" (-1): null, as the Kafka engine's NULL (the column's default unless Nullable).
  assert.equal(line(5n, -1n), '{"_partition":3,"_offset":5,"_timestamp":null,"_timestamp_ms":null,"a":1}\n');
  assert.equal(line(5n, 2n ** 60n), '{"_partition":3,"_offset":5,"_timestamp":1152921504606846,"_timestamp_ms":"1152921504606846.976","a":1}\n');
});

test('ByteChunks writes decimals and byte ranges across block boundaries', () => {
  const out = new ByteChunks();
  out.writeUtf8('x'.repeat(256 * 1024 - 3));
  out.writeDecimal(1_234_567);
  out.writeDecimal(7, 3);
  out.writeBytes(Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789'), 30);
  out.writeBytes(Buffer.from('{"b":2}'), 1);
  assert.equal(Buffer.concat(out.slice(256 * 1024 - 3, out.length)).toString('latin1'), '1234567007456789"b":2}');
});
