import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { RowTypes } from '../../../src/decode/protobuf/row-type.ts';
import { formatTimestamp } from '../../../src/decode/protobuf/json-writer.ts';
import { TimestampValue } from '../../../src/decode/row.ts';
import { fromBinary } from '@bufbuild/protobuf';
import { buildKinds, encode } from './protobuf/fixtures.ts';

const kinds = buildKinds();
after(() => kinds.cleanup());
const desc = kinds.message('test.kinds.Kinds');
const types = new RowTypes(kinds.registry);
const type = types.typeOf(desc);

const ts = (seconds: number, nanos = 0): { seconds: bigint; nanos: number } => ({ seconds: BigInt(seconds), nanos });
const full = {
  i32: -7,
  i64: -9007199254740993n,
  u64: 18446744073709551615n,
  s64: -5n,
  f64: 12n,
  u32: 4000000000,
  dbl: 1.5,
  flt: 0.25,
  flag: true,
  text: 'héllo "q"\n',
  blob: new Uint8Array([0x22, 0x5c, 0x01, 0xff, 0x41]),
  color: 2,
  at: ts(1_700_000_000, 123_456_000),
  maybe: '',
  maybeInt: 0n,
  wrappedInt: 42n,
  wrappedText: 'w',
  inner: { name: 'in', count: 3n, color: 1, at: ts(0) },
  tags: ['a', 'b'],
  numbers: [1n, 9007199254740993n],
  inners: [{ name: 'x' }, { name: 'y', count: 2n }],
  colors: [1, 2, 7],
  times: [ts(86_400), ts(-1, 500_000_000)],
  counts: { k: 5n },
  names: { 3: 'three' },
  innerByKey: { a: { name: 'A' } },
  choice: { case: 'choiceInt', value: 77n },
  teamId: 2n,
  attributes: { plan: 'pro', seats: 3, nested: { ok: true } },
  wrappedBlob: new Uint8Array([1, 2]),
  teamAsStringField: '12345678901234567',
  nested: { note: 'n' },
};
const values = fromBinary(desc, encode(desc, full));
const read = (field: string): unknown => {
  const reader = type.reader(field);
  assert.ok(reader, `a reader for ${field}`);
  return reader(values);
};

test('the type names its fields as producers do (proto names) and knows no others', () => {
  assert.equal(type.name, 'test.kinds.Kinds');
  assert.ok(type.fieldNames.includes('maybe_int') && type.fieldNames.includes('inner_by_key') && type.fieldNames.includes('choice_int'));
  assert.equal(type.reader('maybeInt'), undefined);
  assert.equal(type.reader('nope'), undefined);
  assert.equal(types.typeOf(desc), type, 'one type per message type (stable identity)');
});

test('readers: scalars, 64-bit integers as bigint, enums by name, Timestamp, bytes', () => {
  assert.equal(read('i32'), -7);
  assert.equal(read('i64'), -9007199254740993n);
  assert.equal(read('u64'), 18446744073709551615n);
  assert.equal(read('s64'), -5n);
  assert.equal(read('f64'), 12n);
  assert.equal(read('u32'), 4000000000);
  assert.equal(read('dbl'), 1.5);
  assert.equal(read('flt'), 0.25);
  assert.equal(read('flag'), true);
  assert.equal(read('text'), 'héllo "q"\n');
  assert.deepEqual([...(read('blob') as Uint8Array)], [0x22, 0x5c, 0x01, 0xff, 0x41]);
  assert.equal(read('color'), 'COLOR_GREEN');
  assert.deepEqual(read('at'), new TimestampValue(1_700_000_000n, 123_456_000));
  assert.equal(read('team_as_string_field'), 12345678901234567n, 'a jstype=JS_STRING int64 is still a bigint');
});

test('readers: presence, wrappers, nested messages as JSON text, repeated, maps, oneofs, Struct', () => {
  assert.equal(read('maybe'), '', 'an optional field set to its zero is present');
  assert.equal(read('maybe_int'), 0n);
  assert.equal(read('wrapped_int'), 42n);
  assert.equal(read('wrapped_text'), 'w');
  assert.deepEqual([...(read('wrapped_blob') as Uint8Array)], [1, 2]);
  assert.equal(read('inner'), '{"name":"in","count":3,"color":"COLOR_RED","at":"1970-01-01 00:00:00.000000"}');
  assert.equal(read('nested'), '{"note":"n"}');
  assert.deepEqual(read('tags'), ['a', 'b']);
  assert.deepEqual(read('numbers'), [1n, 9007199254740993n]);
  assert.deepEqual(read('inners'), ['{"name":"x","count":0,"color":"COLOR_UNSPECIFIED"}', '{"name":"y","count":2,"color":"COLOR_UNSPECIFIED"}']);
  assert.deepEqual(read('colors'), ['COLOR_RED', 'COLOR_GREEN', 7], 'an unknown enum number stays a number');
  assert.deepEqual(read('times'), [new TimestampValue(86_400n, 0), new TimestampValue(-1n, 500_000_000)]);
  assert.deepEqual(read('counts'), { k: 5n });
  assert.deepEqual(read('names'), { 3: 'three' });
  assert.deepEqual(read('inner_by_key'), { a: '{"name":"A","count":0,"color":"COLOR_UNSPECIFIED"}' });
  assert.equal(read('choice_int'), 77n);
  assert.equal(read('choice_text'), undefined, 'the oneof members not chosen are absent');
  assert.equal(read('choice_inner'), undefined);
  assert.deepEqual(JSON.parse(read('attributes') as string), { plan: 'pro', seats: 3, nested: { ok: true } });
});

test('readers: unset fields with presence are absent (undefined), those without are their zero', () => {
  const empty = fromBinary(desc, encode(desc, {}));
  const get = (field: string): unknown => type.reader(field)?.(empty);
  for (const field of ['at', 'maybe', 'maybe_int', 'wrapped_int', 'wrapped_text', 'inner', 'choice_text', 'choice_int', 'attributes', 'nested']) assert.equal(get(field), undefined, field);
  assert.equal(get('i64'), 0n);
  assert.equal(get('text'), '');
  assert.equal(get('color'), 'COLOR_UNSPECIFIED');
  assert.deepEqual(get('tags'), []);
  assert.deepEqual(get('counts'), {});
});

test('toJson: proto field names, int64 as exact numbers, Timestamp as ClickHouse text, enums by name, bytes unchanged', () => {
  const json = type.toJson(values);
  // Raw bytes (0xff) are not UTF-8: compare at the byte level where it matters, parse the rest.
  const blobAt = json.indexOf('"blob":');
  assert.deepEqual([...json.subarray(blobAt + 7, blobAt + 7 + 11)], [...Buffer.from('"\\"\\\\\\u0001')].concat([0xff, 0x41, 0x22]).slice(0, 11));
  const text = json.toString('latin1');
  assert.ok(text.includes('"i64":-9007199254740993,'), 'int64 beyond 2^53 written exactly');
  assert.ok(text.includes('"u64":18446744073709551615,'));
  assert.ok(text.includes('"numbers":[1,9007199254740993]'));
  assert.ok(text.includes('"team_as_string_field":12345678901234567'));
  const parsed = JSON.parse(json.toString('utf8')) as Record<string, unknown>;
  assert.equal(parsed.i32, -7);
  assert.equal(parsed.text, 'héllo "q"\n');
  assert.equal(parsed.color, 'COLOR_GREEN');
  assert.equal(parsed.at, '2023-11-14 22:13:20.123456');
  assert.equal(parsed.maybe, '');
  assert.equal(parsed.maybe_int, 0);
  assert.equal(parsed.wrapped_int, 42);
  assert.equal(parsed.wrapped_text, 'w');
  assert.deepEqual(parsed.inner, { name: 'in', count: 3, color: 'COLOR_RED', at: '1970-01-01 00:00:00.000000' });
  assert.deepEqual(parsed.inners, [
    { name: 'x', count: 0, color: 'COLOR_UNSPECIFIED' },
    { name: 'y', count: 2, color: 'COLOR_UNSPECIFIED' },
  ]);
  assert.deepEqual(parsed.colors, ['COLOR_RED', 'COLOR_GREEN', 7]);
  assert.deepEqual(parsed.times, ['1970-01-02 00:00:00.000000', '1969-12-31 23:59:59.500000']);
  assert.deepEqual(parsed.counts, { k: 5 });
  assert.deepEqual(parsed.names, { 3: 'three' });
  assert.deepEqual(parsed.inner_by_key, { a: { name: 'A', count: 0, color: 'COLOR_UNSPECIFIED' } });
  assert.equal(parsed.choice_int, 77);
  assert.equal('choice_text' in parsed, false);
  assert.deepEqual(parsed.attributes, { plan: 'pro', seats: 3, nested: { ok: true } });
  assert.equal(parsed.team_id, 2);
  assert.deepEqual(parsed.nested, { note: 'n' });
});

test('toJson leaves absent fields out (their column takes its DEFAULT) and writes zeros of fields without presence', () => {
  const parsed = JSON.parse(type.toJson(fromBinary(desc, encode(desc, {}))).toString('utf8')) as Record<string, unknown>;
  for (const field of ['at', 'maybe', 'maybe_int', 'wrapped_int', 'inner', 'choice_int', 'attributes', 'nested']) assert.equal(field in parsed, false, field);
  assert.equal(parsed.i64, 0);
  assert.equal(parsed.text, '');
  assert.equal(parsed.flag, false);
  assert.deepEqual(parsed.tags, []);
  assert.deepEqual(parsed.counts, {});
});

test('toJson: non-finite floats are the strings nan/inf; each call returns its own buffer', () => {
  const a = type.toJson(fromBinary(desc, encode(desc, { dbl: Number.NaN, flt: Number.NEGATIVE_INFINITY })));
  const b = type.toJson(fromBinary(desc, encode(desc, { dbl: Number.POSITIVE_INFINITY })));
  assert.match(a.toString(), /"dbl":"nan","flt":"-inf"/);
  assert.match(b.toString(), /"dbl":"inf"/);
  assert.match(a.toString(), /"dbl":"nan"/, 'the first row is not overwritten by the second');
});

test('toJson: long strings (counted before escaping) come back whole', () => {
  const text = `{"a":"${'x\\"é'.repeat(40_000)}"}\n\t`;
  const parsed = JSON.parse(type.toJson(fromBinary(desc, encode(desc, { text, tags: [text] }))).toString('utf8')) as Record<string, unknown>;
  assert.equal(parsed.text, text);
  assert.deepEqual(parsed.tags, [text]);
});

test('timestamps: microseconds, nanoseconds when needed, before 1970', () => {
  assert.equal(formatTimestamp(0n, 0), '1970-01-01 00:00:00.000000');
  assert.equal(formatTimestamp(1_696_406_009n, 586_000_000), '2023-10-04 07:53:29.586000');
  assert.equal(formatTimestamp(1_696_406_009n, 586_123_456), '2023-10-04 07:53:29.586123456');
  assert.equal(formatTimestamp(-86_401n, 999_999_000), '1969-12-30 23:59:59.999999');
  assert.equal(formatTimestamp(1_893_456_000n, 1000), '2030-01-01 00:00:00.000001');
});
