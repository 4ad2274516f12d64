import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TimestampValue, type FieldValue, type ObjectRowType } from '../../../../src/decode/row.ts';
import { ByteChunks } from '../../../../src/encode/byte-chunks.ts';
import { typedEncoderFor } from '../../../../src/encode/rowbinary/encoder.ts';
import type { ColumnWriter } from '../../../../src/encode/rowbinary/column-writer.ts';
import { fieldWriterFor } from '../../../../src/encode/rowbinary/field-writers.ts';
import { ValueError } from '../../../../src/encode/rowbinary/json-text.ts';
import { writeFieldAsJson, writeFieldValue } from '../../../../src/encode/rowbinary/object-row.ts';
import { RowBuffer } from '../../../../src/encode/rowbinary/row-buffer.ts';
import { writerFor } from '../../../../src/encode/rowbinary/writers.ts';
import { EncodeError } from '../../../../src/errors/inserter-error.ts';
import type { SourceRecord } from '../../../../src/source/types.ts';

function writer(type: string): ColumnWriter {
  const w = writerFor(type, { serverTimezone: 'UTC' });
  if (typeof w === 'string') throw new Error(w);
  return w;
}

type Outcome = { readonly hex: string } | { readonly error: string };

function show(value: FieldValue): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof TimestampValue) return `Timestamp(${value.seconds}, ${value.nanos})`;
  return typeof value === 'object' && value !== null ? JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) : String(value);
}

function outcome(write: (out: RowBuffer) => void): Outcome {
  const out = new RowBuffer();
  out.u8(0xaa); // a byte before the value: a declined direct write must leave it and the position alone
  try {
    write(out);
  } catch (error) {
    if (!(error instanceof ValueError)) throw error;
    return { error: error.message };
  }
  return { hex: out.buf.toString('hex', 1, out.pos) };
}

/** The value through the encoder's path (direct writer first) and through the JSON path alone. */
function both(type: string, value: FieldValue): { direct: Outcome; json: Outcome; taken: boolean } {
  const w = writer(type);
  const probe = new RowBuffer();
  const taken = fieldWriterFor(w).write(probe, value);
  if (!taken) assert.equal(probe.pos, 0, `${type} ${show(value)}: declined but wrote`);
  return { direct: outcome((out) => writeFieldValue(out, w, value)), json: outcome((out) => writeFieldAsJson(out, w, value)), taken };
}

/** Asserts the direct path gives what the JSON path gives; `taken`: whether the direct writer must take it. */
function same(type: string, value: FieldValue, taken: boolean, hex?: string): void {
  const r = both(type, value);
  const label = `${type} ${show(value)}`;
  assert.deepEqual(r.direct, r.json, label);
  assert.equal(r.taken, taken, `${label}: taken directly`);
  if (hex !== undefined) assert.deepEqual(r.direct, { hex }, label);
}

function le(bytes: number, v: bigint): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, v));
  return b.toString('hex', 0, bytes);
}

test('Int8…Int64 and UInt8…UInt64: safe integers and bigints at the edges of each range, wrapping as ClickHouse reads JSON', () => {
  const widths: [string, number, boolean][] = [
    ['Int8', 1, true],
    ['Int16', 2, true],
    ['Int32', 4, true],
    ['Int64', 8, true],
    ['UInt8', 1, false],
    ['UInt16', 2, false],
    ['UInt32', 4, false],
    ['UInt64', 8, false],
  ];
  for (const [type, bytes, signed] of widths) {
    const bits = BigInt(bytes * 8);
    const min = signed ? -(1n << (bits - 1n)) : 0n;
    const max = signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
    for (const v of [0n, 1n, min, max, max + 1n, min - 1n, 255n, 256n, 65535n, 65536n, 4294967295n, 4294967296n, 9007199254740991n, 9007199254740992n, 18446744073709551615n, 18446744073709551616n]) {
      if (v < 0n && !signed) continue;
      same(type, v, true, le(bytes, v));
      if (v >= -9007199254740991n && v <= 9007199254740991n) same(type, Number(v), true, le(bytes, v));
    }
    for (const v of [-1n, -128n, -129n, -9007199254740991n, -9223372036854775808n, -9223372036854775809n]) {
      if (signed) same(type, v, true, le(bytes, v));
      // A sign into an unsigned column is refused, by the JSON path's own message.
      else assert.deepEqual(both(type, v).direct, { error: "Unsigned type must not contain '-' symbol" });
    }
    if (signed) same(type, -1, true, le(bytes, -1n));
    else assert.deepEqual(both(type, -1).direct, { error: "Unsigned type must not contain '-' symbol" });
    same(type, -0, true, le(bytes, 0n));
    same(type, true, true, le(bytes, 1n));
    same(type, false, true, le(bytes, 0n));
    // Not taken directly: what the JSON path reads or refuses.
    for (const v of [1.5, 2 ** 60, 1e21, Number.NaN, Infinity, -Infinity, '12', 'x', new TimestampValue(1n, 0), [1], Buffer.from('7')]) same(type, v, false);
  }
  assert.deepEqual(both('Int32', 1.5).direct, { error: "Cannot parse input: expected ',' before: '.5'" });
});

test('Bool: booleans and 0/1 directly; other numbers and strings refused as before', () => {
  same('Bool', true, true, '01');
  same('Bool', false, true, '00');
  same('Bool', 1, true, '01');
  same('Bool', 0, true, '00');
  same('Bool', -0, true, '00');
  same('Bool', 1n, true, '01');
  same('Bool', 0n, true, '00');
  for (const v of [2, -1, 0.5, 2n, 'true', 'x']) {
    same('Bool', v, false);
    assert.ok('error' in both('Bool', v).direct, String(v));
  }
});

test('UUID from its text: 36 characters with dashes or 32 digits, either case; anything else refused as before', () => {
  const bytes = '61f0c404-5cb3-11e7-907b-a6006ad3dba0';
  const hex = 'e711b35c04c4f061' + 'a0dbd36a00a67b90';
  same('UUID', bytes, true, hex);
  same('UUID', bytes.toUpperCase(), true, hex);
  same('UUID', bytes.replaceAll('-', ''), true, hex);
  same('UUID', '00000000-0000-0000-0000-000000000000', true, '00'.repeat(16));
  same('UUID', 'ffffffff-ffff-ffff-ffff-ffffffffffff', true, 'ff'.repeat(16));
  for (const v of ['61f0c404-5cb3-11e7-907b-a6006ad3dbag', '61f0c4045-cb3-11e7-907b-a6006ad3dba0', '61f0c404-5cb3-11e7-907b-a6006ad3dba', '', 'é'.repeat(36), 'x', 7, 7n, true]) {
    same('UUID', v, false);
    assert.ok('error' in both('UUID', v).direct, String(v));
  }
  same('Nullable(UUID)', null, true, '01');
  same('Nullable(UUID)', bytes, true, '00' + hex);
  same('Nullable(UUID)', 'nope', false);
});

test('Enum8/Enum16: names and numbers (wrapped to the width as the JSON read does) that are values; anything else refused as before', () => {
  const e8 = "Enum8('full' = 0, 'propertyless' = 1, 'neg' = -128, 'top' = 127)";
  same(e8, 'full', true, '00');
  same(e8, 'propertyless', true, '01');
  same(e8, 'neg', true, '80');
  same(e8, 'top', true, '7f');
  same(e8, 1, true, '01');
  same(e8, -128, true, '80');
  same(e8, 127, true, '7f');
  same(e8, 257, true, '01');
  same(e8, 1n, true, '01');
  same(e8, 384n, true, '80');
  for (const v of ['FULL', 'missing', '1', 2, 129, 1.5, 2n, true, 9007199254740993n]) same(e8, v, false);
  same(e8, 128, true, '80'); // 128 wraps to -128
  assert.deepEqual(both(e8, 'missing').direct, { error: "Unknown element 'missing' for enum" });
  assert.deepEqual(both(e8, 2).direct, { error: 'Unexpected value 2 in enum' });
  const e16 = "Enum16('a' = -32768, 'b' = 32767, 'c' = 1000)";
  same(e16, 'a', true, '0080');
  same(e16, 'b', true, 'ff7f');
  same(e16, 1000, true, 'e803');
  same(e16, 1000 + 65536, true, 'e803');
  same(e16, -32768n, true, '0080');
  same(e16, 'd', false);
  same(`Nullable(${e16})`, null, true, '01');
  same(`Nullable(${e16})`, 'c', true, '00e803');
});

test('String and LowCardinality(String): text, bytes, integers and booleans as their JSON text', () => {
  for (const type of ['String', 'LowCardinality(String)', 'Nullable(String)', 'LowCardinality(Nullable(String))']) {
    const prefix = type.includes('Nullable') ? '00' : '';
    same(type, '', true, prefix + '00');
    same(type, 'é"\\\n', true, prefix + '05' + Buffer.from('é"\\\n').toString('hex'));
    same(type, 'x'.repeat(200), true, prefix + 'c801' + '78'.repeat(200));
    same(type, -9007199254740991, true, prefix + '11' + Buffer.from('-9007199254740991').toString('hex'));
    same(type, 18446744073709551616n, true, prefix + '14' + Buffer.from('18446744073709551616').toString('hex'));
    same(type, true, true, prefix + '04' + Buffer.from('true').toString('hex'));
    same(type, false, true, prefix + '05' + Buffer.from('false').toString('hex'));
    for (const v of [1.5, 1e21, Number.NaN, [1, 'a'], { k: 'v' }, new TimestampValue(0n, 0)]) same(type, v, false);
    if (prefix !== '') same(type, null, true, '01');
  }
});

test('FixedString(n): text of at most n UTF-8 bytes, zero-padded; longer text refused as before', () => {
  same('FixedString(4)', '', true, '00000000');
  same('FixedString(4)', 'ab', true, '61620000');
  same('FixedString(4)', 'abcd', true, '61626364');
  same('FixedString(4)', 'é\n', true, 'c3a90a00');
  same('FixedString(4)', '😀', true, 'f09f9880');
  for (const v of ['abcde', 'ééé', '\ud800', 'a\udc00', 5, Buffer.from('ab')]) same('FixedString(4)', v, false);
  assert.deepEqual(both('FixedString(4)', 'abcde').direct, { error: 'Too large value for FixedString(4)' });
  same('Nullable(FixedString(2))', null, true, '01');
  same('Nullable(FixedString(2))', 'a', true, '006100');
});

test('DateTime and DateTime64 from a Timestamp; in a Nullable DateTime64 column the same bytes as the JSON path within years 1000–9999', () => {
  const instants = [
    new TimestampValue(0n, 0),
    new TimestampValue(1696406009n, 123456789),
    new TimestampValue(-2208988800n, 0), // 1900-01-01
    new TimestampValue(-1n, 999999999),
    new TimestampValue(4294967295n, 999999999), // 2106-02-07 06:28:15
    new TimestampValue(4294967296n, 0),
    new TimestampValue(9214646399n, 999999999), // 2261-12-31 23:59:59
  ];
  /** Beyond DateTime64(9)'s Int64 ticks, and near the ends of years 1000 and 9999 . */
  const far = [new TimestampValue(10413791999n, 999999999), new TimestampValue(253402300799n, 999999999), new TimestampValue(-30610224000n, 0)];
  for (const scale of [0, 3, 6, 9]) {
    for (const t of instants) {
      const ticks = t.seconds * 10n ** BigInt(scale) + BigInt(Math.floor(t.nanos / 10 ** (9 - scale)));
      same(`DateTime64(${scale}, 'UTC')`, t, true, le(8, ticks));
      same(`Nullable(DateTime64(${scale}))`, t, true, '00' + le(8, ticks));
    }
    for (const t of far) {
      const ticks = t.seconds * 10n ** BigInt(scale) + BigInt(Math.floor(t.nanos / 10 ** (9 - scale)));
      if (ticks >= -(2n ** 63n) && ticks < 2n ** 63n) {
        same(`DateTime64(${scale}, 'UTC')`, t, true, le(8, ticks));
        same(`Nullable(DateTime64(${scale}))`, t, true, '00' + le(8, ticks));
      }
      // Ticks beyond Int64 are refused as the JSON path refuses them (they were written wrapped before).
      else assert.deepEqual(both(`DateTime64(${scale}, 'UTC')`, t), { direct: { error: 'Decimal math overflow' }, json: { error: 'Decimal math overflow' }, taken: false });
    }
    same(`Nullable(DateTime64(${scale}))`, null, true, '01');
    // Outside years 1000–9999 a nullable column's value takes the JSON path, as before.
    same(`Nullable(DateTime64(${scale}))`, new TimestampValue(-30610224001n, 0), false);
    same(`Nullable(DateTime64(${scale}))`, new TimestampValue(253402300800n, 0), false);
  }
  for (const t of instants) {
    const seconds = t.seconds < 0n ? 0n : t.seconds > 4294967295n ? 4294967295n : t.seconds;
    // Taken directly as before the direct writers (the JSON path refuses the fraction of its text).
    const r = both('DateTime', t);
    assert.ok(r.taken);
    assert.deepEqual(r.direct, { hex: le(4, seconds) });
    // A nullable DateTime takes the JSON path as before: ClickHouse refuses its text's fraction.
    same("Nullable(DateTime('UTC'))", t, false);
  }
  // Far instants in a non-nullable column are still taken directly (as before the direct writers).
  assert.ok(fieldWriterFor(writer('DateTime64(3)')).write(new RowBuffer(), new TimestampValue(400000000000n, 5)));
  // Strings and numbers into date columns take the JSON path.
  same('DateTime64(6)', '2023-10-04 07:53:29.123456', false);
  same('DateTime', 1696406009, false);
});

test('types without a direct writer (Date, Map) take the JSON path whole', () => {
  same('Date', '2023-10-04', false);
  same('Map(String, UInt8)', { a: 1 }, false);
});

test('Nullable(String) and Nullable(DateTime) take directly only what the JSON path reads the same', () => {
  same('Nullable(String)', 'a\ud800', false); // a lone high surrogate: refused by the JSON path
  assert.ok('error' in both('Nullable(String)', 'a\ud800').direct);
  same('Nullable(String)', 'a\udc00', false);
  same('Nullable(String)', Buffer.from('é\n'), true, '0003c3a90a');
  same('Nullable(String)', Buffer.from([0x61, 0xff]), false); // invalid UTF-8: its JSON text differs
  // A non-nullable String takes text and bytes as they are, as before the direct writers.
  assert.deepEqual(both('String', Buffer.from([0x61, 0xff])).direct, { hex: '0261ff' });
  same('Nullable(DateTime)', new TimestampValue(1696406009n, 0), false);
  same('Nullable(DateTime)', null, true, '01');
});

test('Array(T): elements through the direct writer of T, the count as a varint; any element declined sends the whole array to the JSON path', () => {
  same('Array(String)', [], true, '00');
  same('Array(String)', ['a', 'bc', ''], true, '03' + '0161' + '026263' + '00');
  same(
    'Array(String)',
    Array.from({ length: 200 }, () => 'x'),
    true,
    'c801' + '0178'.repeat(200),
  );
  same('Array(Int64)', [1, -2n, 9223372036854775807n], true, '03' + le(8, 1n) + le(8, -2n) + le(8, 9223372036854775807n));
  same('Array(UInt8)', [1, -1], false);
  assert.deepEqual(both('Array(UInt8)', [1, -1]).direct, { error: "Unsigned type must not contain '-' symbol" });
  same('Array(Int64)', [1, null], false); // null element of a non-nullable type: its zero, by the JSON path
  same('Array(Nullable(String))', ['a', null], true, '02' + '000161' + '01');
  same('Array(LowCardinality(String))', ['a'], true, '01' + '0161');
  same('Array(String)', ['a', '\ud800'], false);
  same('Array(Array(UInt8))', [[1, 2], []], true, '02' + '020102' + '00');
  same("Array(Enum8('a' = 1))", ['a', 1], true, '02' + '0101');
  same('Array(DateTime64(3))', [new TimestampValue(1696406009n, 123456789)], true, '01' + le(8, 1696406009123n));
  same('Array(DateTime64(3))', [new TimestampValue(253402300800n, 0)], false);
  same('Array(DateTime)', [new TimestampValue(1696406009n, 0)], false);
  same('Array(String)', 'not an array', false);
});

test('the typed encoder from an object row: absent = DEFAULT/type default, null = null byte or zero, refusals are INSERTER_ENCODE_REJECTED', () => {
  const columns = [
    { name: 'i', type: 'Int64', defaultKind: '' },
    { name: 'u', type: 'UInt8', defaultKind: 'DEFAULT' },
    { name: 'n', type: 'Nullable(Int32)', defaultKind: '' },
    { name: 'e', type: "Enum8('b' = 2, 'a' = 1)", defaultKind: '' },
    { name: 'id', type: 'UUID', defaultKind: '' },
  ];
  const e = typedEncoderFor(columns);
  if ('uncovered' in e) throw new Error(e.uncovered);
  const type: ObjectRowType = {
    name: 'T',
    fieldNames: ['i', 'u', 'n', 'e', 'id'],
    reader: (name) => (values) => (values as Record<string, FieldValue>)[name],
    toJson: () => Buffer.from('{}'),
  };
  const record: SourceRecord = { topic: 't', partition: 0, offset: 0n, timestamp: 0n, key: undefined, value: undefined, headers: [], epoch: 0 };
  const encode = (values: Record<string, FieldValue>): string => {
    const out = new ByteChunks();
    e.write(out, record, { type, values, size: 1 }, undefined);
    return Buffer.concat(out.slice(0, out.length)).toString('hex');
  };
  // Absent: the type defaults (an enum's smallest value), the DEFAULT flag, a Nullable's null.
  assert.equal(encode({}), '00' + '00'.repeat(8) + '01' + '0001' + '0001' + '00' + '00'.repeat(16));
  // null: zero for non-nullable columns, the DEFAULT flag, the null byte.
  assert.equal(encode({ i: null, u: null, n: null, e: null, id: null }), '00' + '00'.repeat(8) + '01' + '0001' + '0000' + '00' + '00'.repeat(16));
  const id = '61f0c404-5cb3-11e7-907b-a6006ad3dba0';
  assert.equal(encode({ i: -2n, u: 255, n: -2147483648, e: 'b', id }), '00' + 'feffffffffffffff' + '00ff' + '000000000080' + '0002' + '00' + 'e711b35c04c4f061a0dbd36a00a67b90');
  for (const [values, message] of [
    [{ u: -1 }, "Unsigned type must not contain '-' symbol"],
    [{ e: 'c' }, "Unknown element 'c' for enum"],
    [{ id: 'no' }, 'Cannot parse UUID'],
  ] as const) {
    assert.throws(
      () => encode(values),
      (error: unknown) => error instanceof EncodeError && error.code === 'INSERTER_ENCODE_REJECTED' && error.message.includes(message),
    );
  }
});
