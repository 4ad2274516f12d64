import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteChunks } from '../../../../src/encode/byte-chunks.ts';
import { typedEncoderFor } from '../../../../src/encode/rowbinary/encoder.ts';
import type { RowEncoder } from '../../../../src/encode/types.ts';
import { EncodeError } from '../../../../src/errors/inserter-error.ts';
import type { ColumnInfo } from '../../../../src/sink/types.ts';
import type { SourceRecord } from '../../../../src/source/types.ts';

const record: SourceRecord = { topic: 'events', partition: 1, offset: 7n, timestamp: 1_700_000_000_123n, key: Buffer.from('k'), value: undefined, headers: [], epoch: 0 };

function encoder(columns: ColumnInfo[]): RowEncoder {
  const e = typedEncoderFor(columns);
  if ('uncovered' in e) throw new Error(e.uncovered);
  return e;
}

function row(e: RowEncoder, json: string): string {
  const out = new ByteChunks();
  e.write(out, record, Buffer.from(json), undefined);
  return Buffer.concat(out.slice(0, out.length)).toString('hex');
}

const col = (name: string, type: string, defaultKind = ''): ColumnInfo => ({ name, type, defaultKind });

test('columns in table order, MATERIALIZED/ALIAS/EPHEMERAL left out; fields matched by name in any order', () => {
  const e = encoder([col('a', 'UInt8'), col('m', 'String', 'MATERIALIZED'), col('x', 'String', 'ALIAS'), col('eph', 'String', 'EPHEMERAL'), col('b', 'String')]);
  assert.equal(e.format, 'RowBinaryWithDefaults');
  assert.deepEqual(e.columns, ['a', 'b']);
  assert.equal(row(e, '{"b":"z","unknown":[1,{"q":2}],"a":3}'), '0003' + '00017a');
  assert.equal(row(e, '{"\\u0061":3}'), '0003' + '0000');
});

test('a missing field: DEFAULT expression flag, else the type default (an enum its smallest value)', () => {
  const e = encoder([col('d', 'Int64', 'DEFAULT'), col('e', "Enum8('b' = 2, 'a' = 1)"), col('n', 'Nullable(Int8)')]);
  assert.equal(row(e, '{}'), '01' + '0001' + '0001');
  // null: the DEFAULT expression, else the zero value (an enum's raw 0, as ClickHouse stores it)
  assert.equal(row(e, '{"d":null,"e":null,"n":null}'), '01' + '0000' + '0001');
});

test('Kafka metadata columns come from the record', () => {
  const e = encoder([col('_topic', 'String'), col('_partition', 'UInt64'), col('_offset', 'UInt64'), col('_key', 'String'), col('_timestamp', 'DateTime'), col('_timestamp_ms', 'DateTime64(3)')]);
  const hex = row(e, '{}');
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64LE(1_700_000_000_123n);
  const seconds = Buffer.alloc(4);
  seconds.writeUInt32LE(1_700_000_000);
  assert.equal(hex, `00 06${Buffer.from('events').toString('hex')} 00 0100000000000000 00 0700000000000000 00 016b 00 ${seconds.toString('hex')} 00 ${ts.toString('hex')}`.replace(/ /g, ''));
});

test('a record without a time (-1): its timestamp columns take JSON null, as pass-through writes them', () => {
  const e = encoder([col('_timestamp', 'DateTime'), col('_timestamp_ms', 'Nullable(DateTime64(3))'), col('a', 'UInt8')]);
  const e2 = encoder([col('_timestamp', 'DateTime', 'DEFAULT')]);
  const out = new ByteChunks();
  const untimed = { ...record, timestamp: -1n };
  e.write(out, untimed, Buffer.from('{"a":1}'), undefined);
  e2.write(out, untimed, Buffer.from('{}'), undefined);
  // DateTime: not nullable, so its zero; Nullable: NULL; a DEFAULT expression: the default flag.
  assert.equal(Buffer.concat(out.slice(0, out.length)).toString('hex'), '0000000000' + '0001' + '0001' + '01');
});

test('a repeated field and a value ClickHouse would reject throw EncodeError; the body is left as it was', () => {
  const e = encoder([col('a', 'UInt8'), col('b', 'String')]);
  const out = new ByteChunks();
  e.write(out, record, Buffer.from('{"a":1}'), undefined);
  const before = out.length;
  for (const bad of ['{"a":1,"a":2}', '{"a":-1}', '{"a":1,"z":tru}']) {
    assert.throws(
      () => e.write(out, record, Buffer.from(bad), undefined),
      (error: unknown) => error instanceof EncodeError && error.code === 'INSERTER_ENCODE_REJECTED',
    );
  }
  assert.equal(out.length, before);
  assert.throws(() => e.write(out, record, Buffer.from('{"a":-1}'), undefined), /column a \(UInt8\), value -1: Unsigned type/);
});

test('an uncovered type names the column', () => {
  const e = typedEncoderFor([col('ok', 'String'), col('f', 'Float32')]);
  assert.ok('uncovered' in e);
  assert.match(e.uncovered, /column f Float32/);
});

test('a key matches its column exactly, else ignoring ASCII case; two columns matching so is "Ambiguous field"', () => {
  const e = encoder([col('s', 'String'), col('ab', 'UInt8'), col('AB', 'UInt8'), col('été', 'String')]);
  assert.equal(row(e, '{"S":"x","AB":5}'), '000178' + '0000' + '0005' + '0000');
  assert.equal(row(e, '{"éTé":"y"}'), '0000' + '0000' + '0000' + '000179');
  assert.equal(row(e, '{"ÉTÉ":"y"}'), '0000' + '0000' + '0000' + '0000');
  for (const bad of ['{"Ab":1}', '{"s":"a","S":"b"}']) {
    assert.throws(
      () => row(e, bad),
      (error: unknown) => error instanceof EncodeError && /Ambiguous field|Duplicate field/.test(error.message),
    );
  }
});
