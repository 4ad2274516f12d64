// Each column writer's bytes for a JSON value, checked against RowBinary's layout by hand; that
// the values equal what ClickHouse stores is proven on a real server (test/e2e/typed-encoding.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ValueError } from '../../../../src/encode/rowbinary/json-text.ts';
import { RowBuffer } from '../../../../src/encode/rowbinary/row-buffer.ts';
import { writerFor } from '../../../../src/encode/rowbinary/writers.ts';

function bytes(type: string, json: string): string {
  const writer = writerFor(type, { serverTimezone: 'UTC' });
  if (typeof writer === 'string') throw new Error(writer);
  const out = new RowBuffer();
  const src = Buffer.from(json);
  writer.json(out, src, 0, src.length);
  return out.buf.toString('hex', 0, out.pos);
}

function rejects(type: string, json: string, message: RegExp): void {
  assert.throws(
    () => bytes(type, json),
    (error: unknown) => error instanceof ValueError && message.test(error.message),
  );
}

test('integers: little-endian at their width, quoted or not, wrapping like ClickHouse', () => {
  assert.equal(bytes('Int64', '12'), '0c00000000000000');
  assert.equal(bytes('Int64', '"-1"'), 'ffffffffffffffff');
  assert.equal(bytes('Int64', '9223372036854775808'), '0000000000000080');
  assert.equal(bytes('UInt8', '"300"'), '2c');
  assert.equal(bytes('Int8', '-129'), '7f');
  assert.equal(bytes('UInt16', 'true'), '0100');
  assert.equal(bytes('Int32', '""'), '00000000');
  assert.equal(bytes('UInt64', '18446744073709551615'), 'ffffffffffffffff');
  rejects('UInt32', '-1', /Unsigned type must not contain '-'/);
  rejects('Int64', '1.5', /expected ','/);
  rejects('Int64', '"1e3"', /expected '"'/);
  rejects('Int64', '-', /without any digits/);
});

test('Bool takes true/false/1/0 unquoted only', () => {
  assert.equal(bytes('Bool', 'true'), '01');
  assert.equal(bytes('Bool', '0'), '00');
  rejects('Bool', '"true"', /Invalid boolean value/);
  rejects('Bool', '2', /Invalid boolean value/);
});

test('String: unescaped content, other values as their JSON text, with a varint length', () => {
  assert.equal(bytes('String', '"a\\u00e9"'), '0361c3a9');
  assert.equal(bytes('String', '"\\ud83d\\ude00"'), '04f09f9880');
  assert.equal(bytes('String', '"\\x\\/"'), '02782f');
  assert.equal(bytes('String', '1e3'), '03316533');
  assert.equal(bytes('String', '{"a": 1}'), `08${Buffer.from('{"a": 1}').toString('hex')}`);
  assert.equal(bytes('LowCardinality(String)', 'false'), `05${Buffer.from('false').toString('hex')}`);
  const long = 'x'.repeat(200);
  assert.equal(bytes('String', `"${long}"`), `c801${Buffer.from(long).toString('hex')}`);
  // \u with non-hex characters: ClickHouse's table gives 0xFF per character (U+FFEF, U+013F).
  assert.equal(bytes('String', '"\\uZZZZ"'), '03efbfaf');
  assert.equal(bytes('String', '"\\u004Z"'), '02c4bf');
  assert.equal(bytes('String', '["\\uZZZZ"]'), `0a${Buffer.from('["\\uZZZZ"]').toString('hex')}`);
  rejects('String', '"\\ud83d"', /surrogate/);
  rejects('String', '"\\ud83d\\u0041"', /Incorrect surrogate pair/);
});

test('FixedString pads with zeros and refuses longer values and numbers', () => {
  assert.equal(bytes('FixedString(4)', '"ab"'), '61620000');
  rejects('FixedString(4)', '"abcde"', /Too large value/);
  rejects('FixedString(4)', '12', /expected opening quote/);
});

test('UUID: two little-endian UInt64 halves, from 36 or 32 hex characters', () => {
  const expected = '8f7e4d3cb2f189016b5a4f3e2d1c0b9a';
  assert.equal(bytes('UUID', '"0189f1b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b"'), expected);
  assert.equal(bytes('UUID', '"0189F1B23C4D7E8F9A0B1C2D3E4F5A6B"'), expected);
  rejects('UUID', '"{0189f1b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b}"', /Cannot parse UUID/);
  rejects('UUID', '""', /Cannot parse UUID/);
});

test('Enum: by name, or by number when it is a value', () => {
  const type = "Enum8('full' = 0, 'propertyless' = 1, 'force_upgrade' = 2)";
  assert.equal(bytes(type, '"propertyless"'), '01');
  assert.equal(bytes(type, '2'), '02');
  assert.equal(bytes(type, '"2"'), '02');
  assert.equal(bytes("Enum16('a' = 1000, 'b' = -5)", '"b"'), 'fbff');
  rejects(type, '"FULL"', /Unknown element 'FULL'/);
  rejects(type, '3', /Unexpected value 3/);
});

test('dates and times in UTC', () => {
  // 2023-10-04 07:53:29 = 1696406009 s = 0x651d19f9
  assert.equal(bytes('DateTime', '"2023-10-04 07:53:29"'), 'f9191d65');
  assert.equal(bytes("DateTime('UTC')", '"2023/10/04T07-53-29"'), 'f9191d65');
  assert.equal(bytes('DateTime', '1696406009'), 'f9191d65');
  assert.equal(bytes('DateTime', '-1'), '00000000');
  assert.equal(bytes('DateTime', '"2106-02-07 06:28:16"'), 'ffffffff');
  // 1696406009586 ms
  assert.equal(bytes('DateTime64(3)', '"2023-10-04 07:53:29.586"'), Buffer.from(BigInt(1696406009586).toString(16).padStart(16, '0'), 'hex').reverse().toString('hex'));
  assert.equal(bytes('DateTime64(3)', '1696406009586'), Buffer.from(BigInt(1696406009586).toString(16).padStart(16, '0'), 'hex').reverse().toString('hex'));
  assert.equal(bytes('Date', '"2023-10-04"'), 'b24c');
  assert.equal(bytes('Date', '"2023-1-4"'), bytes('Date', '"2023-01-04"'));
  assert.equal(bytes('Date', 'true'), '0100');
  rejects('DateTime', '"2023-10-04 07:53:29.586"', /expected '"'/);
  rejects('DateTime', '"2023-10-04T07:53:29Z"', /expected '"'/);
  rejects('DateTime64(3)', '"1234"', /at least 5 digits/);
  rejects('Date', '"19634"', /too short/);
});

test('Nullable, Array and Map', () => {
  assert.equal(bytes('Nullable(Int8)', 'null'), '01');
  assert.equal(bytes('Nullable(Int8)', '5'), '0005');
  assert.equal(bytes('Array(Int8)', '[1, null, "3"]'), '03010003');
  assert.equal(bytes('Array(Nullable(Int8))', '[null]'), '0101');
  assert.equal(bytes('Array(String)', 'null'), '00');
  assert.equal(bytes('Map(String, String)', '{"a":1,"a":null}'), '02016101310161' + '00');
  assert.equal(bytes('Array(Int8)', `[${Array.from({ length: 130 }, () => '1').join(',')}]`), `8201${'01'.repeat(130)}`);
  rejects('Array(String)', '"[]"', /Array does not start with '\['/);
  rejects('Map(String, String)', '[]', /expected '\{'/);
});

test('types outside the covered set say why', () => {
  assert.match(writerFor('Float64', { serverTimezone: 'UTC' }) as string, /Float64/);
  assert.match(writerFor('DateTime', { serverTimezone: 'Europe/Berlin' }) as string, /Europe\/Berlin/);
  assert.match(writerFor('Map(Int8, String)', { serverTimezone: 'UTC' }) as string, /Map\(String/);
});

test('DateTime64 from a quoted digit string: seconds up to 9999-12-31 23:59:59, beyond that ticks of the scale; Int64 overflow refused (values from ClickHouse 26.7)', () => {
  const i64 = (v: bigint): string => {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(v);
    return b.toString('hex');
  };
  assert.equal(bytes('DateTime64(3)', '"253402300799"'), i64(253402300799000n));
  assert.equal(bytes('DateTime64(3)', '"253402300800"'), i64(253402300800n));
  assert.equal(bytes('DateTime64(3)', '"1234567890123"'), i64(1234567890123n));
  assert.equal(bytes('DateTime64(6)', '"1234567890123456"'), i64(1234567890123456n));
  assert.equal(bytes('DateTime64(0)', '"9223372036854775807"'), i64(9223372036854775807n));
  assert.equal(bytes('DateTime64(6)', '"99999999999.123"'), i64(99999999999123000n));
  assert.equal(bytes('DateTime64(3)', '"1234567890123.5"'), i64(1234567890123500n));
  rejects('DateTime64(9)', '"9999999999"', /Decimal math overflow/);
  rejects('DateTime64(3)', '"1234567890123456789.5"', /Decimal math overflow/);
  rejects('DateTime64(3)', '"9223372036854775808"', /Overflow while parsing/);
});

test('DateTime64 from a negative quoted timestamp: -dddd[.f] taken (whole·10^scale − fraction), shorter forms refused (finding D5)', () => {
  const i64 = (v: bigint): string => {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(v);
    return b.toString('hex');
  };
  assert.equal(bytes('DateTime64(3)', '"-853255185"'), i64(-853255185000n));
  assert.equal(bytes('DateTime64(3)', '"-12345.5"'), i64(-12345500n));
  assert.equal(bytes('DateTime64(6)', '"-425110336.169956"'), i64(-425110336169956n));
  rejects('DateTime64(3)', '"-1.5"', /not taken/);
  rejects('DateTime64(3)', '"-123"', /not taken/);
  rejects('DateTime64(9)', '"-1234567890123"', /Decimal math overflow/);
});
