// The typed encoder (RowBinaryWithDefaults) against ClickHouse's own JSONEachRow input, on a real
// server: for every covered type, the same JSON values are inserted once as the pass-through
// JSONEachRow line and once typed, and the stored rows must be identical; a value ClickHouse
// rejects must be rejected by the encoder (EncodeError INSERTER_ENCODE_REJECTED), and no other.
// Then one wide table with every covered type, Kafka metadata columns, a DEFAULT and a
// MATERIALIZED column, read back as JSONEachRow from both tables.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { ByteChunks } from '../../src/encode/byte-chunks.ts';
import { JsonEachRowEncoder } from '../../src/encode/json-each-row.ts';
import { typedEncoderFor } from '../../src/encode/rowbinary/encoder.ts';
import type { RowEncoder } from '../../src/encode/types.ts';
import { EncodeError } from '../../src/errors/inserter-error.ts';
import type { ColumnInfo } from '../../src/sink/types.ts';
import type { SourceRecord } from '../../src/source/types.ts';

let ch: ClickHouseInstance;

before(async () => {
  ch = await startClickHouse();
  await ch.query('CREATE DATABASE t');
});

after(async () => {
  await ch?.stop();
});

const SETTINGS = { input_format_skip_unknown_fields: '1', input_format_defaults_for_omitted_fields: '1', input_format_null_as_default: '1' };

/** Runs `sql` with `body` as the sink does (the same input settings); the server's error text, or ''. */
async function post(sql: string, body: Buffer | string): Promise<string> {
  const params = new URLSearchParams({ ...SETTINGS, query: sql });
  const auth = Buffer.from(`${ch.admin.name}:${ch.admin.password}`).toString('base64');
  const response = await fetch(`${ch.url}/?${params.toString()}`, { method: 'POST', headers: { authorization: `Basic ${auth}` }, body });
  const text = await response.text();
  return response.ok ? '' : text;
}

async function columnsOf(table: string): Promise<ColumnInfo[]> {
  const out = await ch.query(`SELECT name, type, default_kind AS defaultKind FROM system.columns WHERE database = 't' AND table = '${table}' ORDER BY position FORMAT JSONEachRow`);
  return out
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ColumnInfo);
}

function record(offset: number): SourceRecord {
  return {
    topic: 'events',
    partition: 3,
    offset: BigInt(offset),
    timestamp: 1_700_000_000_123n + BigInt(offset),
    key: Buffer.from(`key-${offset}`),
    value: undefined,
    headers: [[Buffer.from('h'), Buffer.from(`v${offset}`)]],
    epoch: 0,
  };
}

function encode(encoder: RowEncoder, out: ByteChunks, line: string, offset: number): string | undefined {
  try {
    encoder.write(out, record(offset), Buffer.from(line), undefined);
    return undefined;
  } catch (error) {
    assert.ok(error instanceof EncodeError, `not an EncodeError: ${String(error)}`);
    assert.equal(error.code, 'INSERTER_ENCODE_REJECTED');
    return error.message;
  }
}

function body(out: ByteChunks): Buffer {
  return Buffer.concat(out.slice(0, out.length));
}

/** (type, JSON values) as probed on ClickHouse 26.7: docs/design/typed-encoding.md. */
const CASES: readonly (readonly [string, readonly string[]])[] = [
  ['String', ['"a"', '12', '-1.50', '1e3', 'true', 'false', 'null', '{"a": [1, 2]}', '[1,"x"]', '"\\u00e9"', '"\\ud83d\\ude00"', '"\\ud83d"', '"\\x"', '"a\\/b"', '"\\u0000"']],
  [
    'Int64',
    [
      '12',
      '"12"',
      '"-12"',
      '1.5',
      '"1.5"',
      '1e3',
      '-0',
      'true',
      'false',
      'null',
      '9223372036854775807',
      '9223372036854775808',
      '18446744073709551615',
      '18446744073709551616',
      '"abc"',
      '""',
      '" 12"',
      '"12 "',
      '+12',
      '012',
      '"0x1F"',
      '[1]',
      '{}',
    ],
  ],
  ['UInt8', ['255', '256', '-1', '"300"', '1.9', '-1.9', 'true']],
  ['Int8', ['127', '128', '-129', '"-128"']],
  ['UInt64', ['-1', '18446744073709551615', '18446744073709551616', '1.5', '1e19']],
  ['Bool', ['true', 'false', '1', '0', '2', '"true"', '"false"', '"1"', '"yes"', '"on"', '"t"', '"T"', '"TRUE"', 'null', '1.5']],
  [
    'Int64',
    [
      '99999999999999999999999',
      '-9223372036854775808',
      '-9223372036854775809',
      '"9223372036854775808"',
      '-',
      '"-"',
      '"+5"',
      '1.0',
      '"1e3"',
      '00000000000000000000000001',
      '-18446744073709551617',
      '36893488147419103232',
    ],
  ],
  ['UInt64', ['"-1"', '99999999999999999999', '""', '+1']],
  ['Int32', ['2147483648', '4294967296', '-2147483649']],
  ['UInt32', ['4294967296', '4294967297', '99999999999']],
  [
    "DateTime('UTC')",
    [
      '"2023-10-04 07:53:29"',
      '"2023-10-04 07:53:29.586"',
      '"2023-10-04T07:53:29"',
      '"2023-10-04T07:53:29Z"',
      '"2023-10-04 07:53:29Z"',
      '"2023-10-04 07:53:29+02:00"',
      '"2023-10-04"',
      '1696406009',
      '"1696406009"',
      '1696406009.5',
      '"1696406009.5"',
      '"2023-10-04 7:53:29"',
      '"2023-1-4 07:53:29"',
      '"2023-10-04 07:53"',
      '""',
      'null',
      '0',
      '-1',
      '"1969-12-31 23:59:59"',
      '"2106-02-07 06:28:15"',
      '"2106-02-07 06:28:16"',
      '"2023/10/04 07:53:29"',
      '"20231004075329"',
      '"2023-10-04 07:53:29 "',
      '"2023-02-30 00:00:00"',
      '"2023-10-04 25:00:00"',
      '"0000-00-00 00:00:00"',
      '4294967296',
      '99999999999',
      '"12"',
      '12',
    ],
  ],
  [
    "DateTime64(6, 'UTC')",
    [
      '"2023-10-04 07:53:29"',
      '"2023-10-04 07:53:29.586"',
      '"2023-10-04 07:53:29.1234567"',
      '"2023-10-04T07:53:29.5Z"',
      '"2023-10-04 07:53:29.5+02:00"',
      '1696406009',
      '1696406009.5',
      '"1696406009.123"',
      '"2023-10-04"',
      '"1900-01-01 00:00:00"',
      '"1899-12-31 23:59:59"',
      '"2299-12-31 23:59:59"',
      '"2300-01-01 00:00:00"',
      '-1',
      '-1.5',
      '""',
      '"2023-10-04 07:53:29."',
      '1e3',
      '"12"',
      '"2023-10-04 07:53:29,5"',
    ],
  ],
  ['DateTime64(3)', ['"2023-10-04 07:53:29.1239"', '"1970-01-01 00:00:00"', '1696406009.9999']],
  ['DateTime', ['"2023-10-04 07:53:29"']],
  [
    "DateTime('UTC')",
    [
      '"2023-13-01 00:00:00"',
      '"2023-00-10 00:00:00"',
      '"2023-10-00 00:00:00"',
      '"2023-10-32 00:00:00"',
      '"2023-10-04 99:99:99"',
      '"1900-01-01 00:00:00"',
      '"2299-12-31 00:00:00"',
      '"2300-01-01 00:00:00"',
      '"9999-12-31 00:00:00"',
      '"2023-10-04x07:53:29"',
      '"2023-10-04 07-53-29"',
      '"2023-10-0407:53:29"',
    ],
  ],
  [
    "DateTime64(3, 'UTC')",
    [
      '"1899-12-31 00:00:00"',
      '"1800-01-01 00:00:00"',
      '"2300-01-01 00:00:00"',
      '"2299-12-31 23:59:59.999"',
      '"9999-12-31 00:00:00"',
      '"0000-01-01 00:00:00"',
      '"1969-12-31 23:59:59.5"',
      '"1925-12-12 13:14:15.123"',
      '"2023-02-29 00:00:00"',
      '"2023-10-04 07:53:29."',
      '"2023-10-04 07:53:29.1"',
    ],
  ],
  [
    'UUID',
    [
      '"0189f1b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b"',
      '"0189F1B2-3C4D-7E8F-9A0B-1C2D3E4F5A6B"',
      '"0189f1b23c4d7e8f9a0b1c2d3e4f5a6b"',
      '"{0189f1b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b}"',
      '""',
      'null',
      '"xyz"',
      '"0189f1b2-3c4d-7e8f-9a0b-1c2d3e4f5a6"',
      '"0189f1b2-3c4d-7e8f-9a0b-1c2d3e4f5a6bb"',
      '"0189f1b2x3c4dx7e8fx9a0bx1c2d3e4f5a6b"',
      '"g189f1b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b"',
      '12',
      '"00000000-0000-0000-0000-000000000000"',
    ],
  ],
  ["Enum8('full' = 0, 'propertyless' = 1, 'force_upgrade' = 2)", ['"full"', '"propertyless"', '0', '2', '3', '"2"', '"FULL"', 'null', '""', 'true', '-1', '1.0']],
  ["Enum8('a' = 1, 'b' = 2)", ['null', '"c"', '"1"']],
  ["Enum16('a' = 1000, 'b' = -5)", ['"b"', '-5', '1000']],
  ['Nullable(String)', ['null', '"x"', '12', '{"a":1}', '"null"', '""']],
  ['Nullable(Int64)', ['null', '""', '"null"', '12', '"x"']],
  ['Nullable(UUID)', ['""', 'null']],
  ["Nullable(DateTime64(6,'UTC'))", ['""', 'null', '"2023-10-04 07:53:29.5"']],
  ['Array(String)', ['["a","b"]', '[]', 'null', '"[\\"a\\"]"', '[1, true, null, {"x":1}]', '["a" , "b" ]', '""', '"x"', '[["a"]]']],
  ['Array(Int64)', ['[1,2]', '["1"]', '[null]', '[1.5]']],
  ['Array(Nullable(String))', ['[null, "a"]']],
  ['Map(String, String)', ['{"a":"b"}', '{}', 'null', '{"a":1,"b":null,"c":{"x":1}}', '{"a":"1","a":"2"}', '"{}"', '[]']],
  ['LowCardinality(String)', ['"x"', 'null', '1']],
  ['LowCardinality(Nullable(String))', ['null', '"x"']],
  ['FixedString(4)', ['"ab"', '"abcd"', '"abcde"', 'null', '12', '"\\u00e9"']],
  [
    'Date',
    [
      '"2023-10-04"',
      '"2023-10-04 07:53:29"',
      '19634',
      '"19634"',
      '"1970-01-01"',
      '"2149-06-06"',
      '"2149-06-07"',
      '"1969-12-31"',
      'null',
      '""',
      '-1',
      '65536',
      '"2023-1-4"',
      '"2023/10/04"',
      '"20231004"',
    ],
  ],
  ['Date32', ['"2023-10-04"', '"1900-01-01"', '"1899-12-31"', '"2299-12-31"', '"2300-01-01"', '-1', '19634', '"-1"']],
  ['SimpleAggregateFunction(sum, Int64)', ['5', '"5"', 'null']],
  ['Bool', ['""']],
  ['Int64', ['"true"', '"null"', '"1\\u0032"']],
  [
    "DateTime64(3, 'UTC')",
    [
      '"2023-13-01 00:00:00"',
      '"2023-00-10 00:00:00"',
      '"2023-10-32 00:00:00"',
      '"1800-02-29 00:00:00"',
      '"2300-02-29 00:00:00"',
      '"2023-10-04 99:99:99"',
      '"1000-01-01 00:00:00"',
      '"0001-01-01 00:00:00"',
      '"2023-10-04T07:53:29.123"',
      '"2023/10/04 07.53.29.5"',
      '"1696406009"',
      '"0"',
      '"00000"',
      '"12345"',
      '"1234"',
      '"123456789012345678901"',
      '"99999999999"',
      '"10413792000"',
      '"10413792000.5"',
      '-5',
    ],
  ],
  ["DateTime('UTC')", ['"-5"', '"12345"', '"1234"', '"00000"', '"1696406009.0"']],
  ['String', ['"\\b\\f\\n\\r\\t\\\\\\""', '"\\\'"', '"\\a"', '"\\0"', '"a\tb"', '"\\uD83D\\u0041"', '"\\udc00"', '"\\u00"', '"\\U00e9"']],
];

test('every covered type: the typed row equals ClickHouse JSONEachRow, and rejections agree', async () => {
  const problems: string[] = [];
  let table = 0;
  for (const [type, values] of CASES) {
    table++;
    for (const side of ['a', 'b']) await ch.query(`CREATE TABLE t.c${side}${table} (k UInt32, c ${type}) ENGINE = MergeTree ORDER BY k`);
    const encoder = typedEncoderFor(await columnsOf(`cb${table}`));
    assert.ok(!('uncovered' in encoder), `${type}: ${'uncovered' in encoder ? encoder.uncovered : ''}`);
    const typed = new ByteChunks();
    for (let i = 0; i < values.length; i++) {
      const line = `{"k":${i},"c":${values[i] ?? ''}}`;
      const serverError = await post(`INSERT INTO t.ca${table} FORMAT JSONEachRow`, `${line}\n`);
      const encoderError = encode(encoder, typed, line, i);
      if ((serverError !== '') !== (encoderError !== undefined)) {
        problems.push(`${type} ${values[i]}: server ${serverError === '' ? 'accepted' : serverError.slice(0, 120)}; encoder ${encoderError ?? 'accepted'}`);
      }
    }
    const insertError = await post(`INSERT INTO t.cb${table} (${(encoder.columns ?? []).join(', ')}) FORMAT RowBinaryWithDefaults`, body(typed));
    assert.equal(insertError, '', `${type}: typed insert failed`);
    const read = (side: string): Promise<string> =>
      ch.query(`SELECT k, hex(toString(${type.startsWith('Enum') ? "CAST(c, 'Int16')" : 'c'})), toTypeName(c) FROM t.c${side}${table} ORDER BY k FORMAT TSV`);
    const [viaJson, viaTyped] = await Promise.all([read('a'), read('b')]);
    if (viaJson !== viaTyped) problems.push(`${type}: stored rows differ\n  JSONEachRow: ${viaJson}\n  typed:       ${viaTyped}`);
  }
  assert.deepEqual(problems, []);
});

const WIDE = `CREATE TABLE t.wide_SIDE (
  k UInt32, s String, fs FixedString(4), u UUID, lc LowCardinality(String), lcn LowCardinality(Nullable(String)),
  i8 Int8, i16 Int16, i32 Int32, i64 Int64, u8 UInt8, u16 UInt16, u32 UInt32, u64 UInt64, b Bool,
  d Date, d32 Date32, dt DateTime, dtu DateTime('UTC'), dt64 DateTime64(3), dt64u DateTime64(6, 'UTC'),
  e8 Enum8('full' = 0, 'propertyless' = 1, 'force_upgrade' = 2), e16 Enum16('x' = 1000, 'y' = -5),
  ns Nullable(String), ni Nullable(Int64), nd Nullable(DateTime64(6, 'UTC')), arr Array(String), ani Array(Nullable(Int32)),
  m Map(String, String), agg SimpleAggregateFunction(sum, Int64), withDefault Int64 DEFAULT 42, upperS String MATERIALIZED upper(s),
  eph String EPHEMERAL, fromEph String DEFAULT concat('e:', eph),
  _topic String, _partition UInt64, _offset UInt64, _key String, _timestamp DateTime, _timestamp_ms DateTime64(3),
  \`_headers.name\` Array(String), \`_headers.value\` Array(String)
) ENGINE = MergeTree ORDER BY k`;

const WIDE_ROWS = [
  '{"k":0}',
  '{"k":1,"s":"a\\u00e9\\ud83d\\ude00","fs":"ab","u":"0189f1b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b","lc":"x","lcn":null,"i8":-128,"i16":"123","i32":true,"i64":"-9223372036854775808","u8":255,"u16":65535,"u32":"4294967295","u64":18446744073709551615,"b":true,"d":"2023-10-04","d32":"1900-01-01","dt":"2023-10-04 07:53:29","dtu":1696406009,"dt64":"2023-10-04 07:53:29.586","dt64u":"2023-10-04T07:53:29.123456","e8":"propertyless","e16":-5,"ns":"n","ni":7,"nd":"2023-10-04 07:53:29.5","arr":["a",1,null,{"x":[1]}],"ani":[1,null,"3"],"m":{"a":"b","n":1,"z":null},"agg":5,"withDefault":1,"eph":"zz","unknown":{"deep":[1,2,{"x":"y"}]},"project_id":2}',
  '{"k":2,"s":12.50,"fs":"abcd","u":"0189F1B23C4D7E8F9A0B1C2D3E4F5A6B","lc":null,"lcn":"v","i8":300,"i64":null,"b":0,"d":19634,"d32":-1,"dt":"2023-02-30 25:00:00","dtu":"1696406009","dt64":1696406009123,"dt64u":"1925-12-12 13:14:15.123","e8":2,"e16":"x","ns":{"o":1},"ni":null,"nd":null,"arr":[],"ani":[],"m":{},"agg":"-3","withDefault":null}',
  '{"k":3,"s":null,"u":null,"e8":null,"e16":null,"dt":null,"dt64u":null,"arr":null,"m":null,"d":null,"b":null,"fs":null}',
  '{"k":4,"s":{"a": [1, 2]},"dt64":"2299-12-31 23:59:59.999","dt64u":"1000-01-01 00:00:00","d":"2149-06-07","dt":"2106-02-07 06:28:16","e8":"0"}',
];

test('a wide table with every covered type, metadata, DEFAULT, MATERIALIZED and EPHEMERAL columns reads back the same', async () => {
  await ch.query(WIDE.replace('SIDE', 'a'));
  await ch.query(WIDE.replace('SIDE', 'b'));
  const columns = await columnsOf('wide_b');
  const typed = typedEncoderFor(columns);
  assert.ok(!('uncovered' in typed), 'uncovered' in typed ? typed.uncovered : '');
  assert.ok(!(typed.columns ?? []).includes('upperS') && !(typed.columns ?? []).includes('eph'), 'MATERIALIZED and EPHEMERAL columns are not sent');
  const json = new JsonEachRowEncoder(columns);
  const a = new ByteChunks();
  const b = new ByteChunks();
  WIDE_ROWS.forEach((line, i) => {
    json.write(a, record(i), Buffer.from(line), undefined);
    typed.write(b, record(i), Buffer.from(line), undefined);
  });
  assert.equal(await post('INSERT INTO t.wide_a FORMAT JSONEachRow', body(a)), '');
  assert.equal(await post(`INSERT INTO t.wide_b (${(typed.columns ?? []).join(', ')}) FORMAT RowBinaryWithDefaults`, body(b)), '');
  const read = (side: string): Promise<string> => ch.query(`SELECT * EXCEPT (e8, e16), CAST(e8, 'Int16') AS e8i, CAST(e16, 'Int16') AS e16i, upperS FROM t.wide_${side} ORDER BY k FORMAT JSONEachRow`);
  const [viaJson, viaTyped] = await Promise.all([read('a'), read('b')]);
  assert.equal(viaTyped.trim().split('\n').length, WIDE_ROWS.length);
  assert.equal(viaTyped, viaJson);
});

test('a repeated field and a field no column takes that ClickHouse cannot skip are rejected like ClickHouse does', async () => {
  // Three columns: ClickHouse stops reading an object once every column has its value.
  await ch.query('CREATE TABLE t.small (k UInt32, s String, x Int64) ENGINE = MergeTree ORDER BY k');
  const encoder = typedEncoderFor(await columnsOf('small'));
  assert.ok(!('uncovered' in encoder));
  for (const line of ['{"k":1,"s":"a","s":"b"}', '{"k":1,"other":tru}', '{"k":1,"other":"\\ud83d"}', '{"k":1,"other":[1,,2]}', '{"s":"a","s":"b","k":4}']) {
    const serverError = await post('INSERT INTO t.small FORMAT JSONEachRow', `${line}\n`);
    assert.notEqual(serverError, '', `server accepted ${line}`);
    assert.ok(encode(encoder, new ByteChunks(), line, 0) !== undefined, `encoder accepted ${line}`);
  }
  // Once k, s and x are read, later fields are skipped like unknown ones: a repeat is no error.
  for (const line of ['{"k":1,"s":"a","x":1,"s":"b"}', '{"k":1,"s":"a","x":1,"s":{"b":[1]},"k":"z"}']) {
    assert.equal(await post('INSERT INTO t.small FORMAT JSONEachRow', `${line}\n`), '', `server rejected ${line}`);
    assert.equal(encode(encoder, new ByteChunks(), line, 0), undefined, `encoder rejected ${line}`);
  }
});

test('types the encoder does not cover name the column and keep the route on pass-through', () => {
  const uncovered = typedEncoderFor([
    { name: 'k', type: 'UInt32', defaultKind: '' },
    { name: 'x', type: 'Float64', defaultKind: '' },
  ]);
  assert.ok('uncovered' in uncovered && uncovered.uncovered.includes('x') && uncovered.uncovered.includes('Float64'));
  const zoned = typedEncoderFor([{ name: 't', type: "DateTime('Europe/Berlin')", defaultKind: '' }]);
  assert.ok('uncovered' in zoned && zoned.uncovered.includes('Europe/Berlin'));
});
