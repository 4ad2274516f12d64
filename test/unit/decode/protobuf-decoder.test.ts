import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { schemaRegistrySchema, protobufRouteSchema } from '../../../src/config/typed-schema.ts';
import { ProtobufDecoder, type ProtobufRoute } from '../../../src/decode/protobuf/decoder.ts';
import { SchemaRegistryUnavailableError } from '../../../src/decode/protobuf/registry-client.ts';
import { WireRowType } from '../../../src/decode/protobuf/wire-row-type.ts';
import { writeWireHeader } from '../../../src/decode/protobuf/wire-format.ts';
import { decoderFor } from '../../../src/decode/types.ts';
import type { ObjectRow } from '../../../src/decode/row.ts';
import type { RouteConfig } from '../../../src/config/load.ts';
import { ConfigError, DecodeError } from '../../../src/errors/inserter-error.ts';
import type { SourceRecord } from '../../../src/source/types.ts';
import { FakeSchemaRegistry } from '../../helpers/schema-registry.ts';
import { buildKinds, encode } from './protobuf/fixtures.ts';

const kinds = buildKinds();
const Kinds = kinds.message('test.kinds.Kinds');
const Inner = kinds.message('test.kinds.Inner');
const Deep = kinds.message('test.kinds.Second.Deep');
const WithRef = kinds.message('test.refs.WithRef');
const fake = new FakeSchemaRegistry({ firstId: 100 });
let url = '';
let kindsId = 0;
let refsId = 0;
let relativeId = 0;
let avroId = 0;
let garbageId = 0;

before(async () => {
  url = await fake.start();
  kindsId = fake.register('kinds.proto', kinds.serializedFile('kinds.proto'));
  refsId = fake.register('refs-value', kinds.serializedFile('refs.proto'), { references: [{ name: 'kinds.proto', subject: 'kinds.proto', version: 1 }] });
  // A registry may answer with type names relative to their scope: "Inner" instead of ".test.kinds.Inner".
  const relative = fromBinary(FileDescriptorProtoSchema, Buffer.from(kinds.serializedFile('kinds.proto'), 'base64'));
  for (const message of relative.messageType) for (const field of message.field) if (field.typeName.startsWith('.test.kinds.')) field.typeName = field.typeName.slice('.test.kinds.'.length);
  relativeId = fake.register('relative-value', Buffer.from(toBinary(FileDescriptorProtoSchema, relative)).toString('base64'));
  avroId = fake.register('avro-value', '{"type":"string"}', { schemaType: 'AVRO' });
  garbageId = fake.register('garbage-value', Buffer.from('not a descriptor at all').toString('base64'));
});
after(async () => {
  await fake.stop();
  kinds.cleanup();
});

const rec = (value: Buffer | undefined, extra: Partial<SourceRecord> = {}): SourceRecord => ({
  topic: 't',
  partition: 0,
  offset: 0n,
  timestamp: 0n,
  key: undefined,
  value,
  headers: [],
  epoch: 0,
  ...extra,
});
const framed = (id: number, indexes: number[], payload: Buffer): Buffer => Buffer.concat([writeWireHeader(id, indexes), payload]);
const route = (extra: Partial<ProtobufRoute> = {}): ProtobufRoute => ({ name: 'r', teamId: { from: 'field', field: 'team_id' }, destination: 'team', ...extra });
const registryConfig = (extra: Record<string, unknown> = {}) => schemaRegistrySchema.parse({ url, timeoutMs: 1_000, ...extra });
const viaRegistry = (extra: Partial<ProtobufRoute> = {}, registry = registryConfig(), more: Record<string, unknown> = {}): ProtobufDecoder =>
  new ProtobufDecoder(route(extra), { maxMessageBytes: 10_000, baseDir: kinds.dir, schemaRegistry: registry, retry: { baseMs: 5, capMs: 20 }, ...more });
const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    if (error instanceof DecodeError) return error.code;
    throw error;
  }
  return 'decoded';
};
const json = (row: unknown): Record<string, unknown> => {
  const r = row as ObjectRow;
  return JSON.parse(r.type.toJson(r.values).toString('utf8')) as Record<string, unknown>;
};

test('a descriptor set route: raw messages of the configured type, the team from its field, size = value length + the wire row overhead (its values object and index slots)', () => {
  const decoder = new ProtobufDecoder(route({ protobuf: protobufRouteSchema.parse({ descriptorSet: 'kinds.binpb', messageType: 'test.kinds.Kinds' }) }), {
    maxMessageBytes: 10_000,
    baseDir: kinds.dir,
  });
  const value = encode(Kinds, { teamId: 7n, text: 'hi', i64: 5n });
  const decoded = decoder.decode(rec(value));
  assert.equal(decoded.teamId, 7);
  const row = decoded.row as ObjectRow;
  assert.equal(row.type.name, 'test.kinds.Kinds');
  assert.ok(row.type instanceof WireRowType);
  assert.equal(row.size, value.length + row.type.rowOverhead, 'a wire row counts its bytes and its small index against the memory budget');
  assert.deepEqual({ text: json(row).text, i64: json(row).i64 }, { text: 'hi', i64: 5 });
  assert.equal(decoder.prepare(rec(value), AbortSignal.timeout(1000)), undefined, 'nothing to wait for');
  assert.equal(
    codeOf(() => decoder.decode(rec(Buffer.from([0x0a, 0x05, 0x61])))),
    'INSERTER_DECODE_BAD_PROTOBUF',
    'a truncated payload',
  );
});

test('a descriptor set route may read the Confluent framing (the schema id is then ignored)', () => {
  const decoder = new ProtobufDecoder(
    route({ destination: 'fixed', protobuf: protobufRouteSchema.parse({ descriptorSet: 'kinds.binpb', messageType: 'test.kinds.Inner', wireFormat: 'confluent' }) }),
    {
      maxMessageBytes: 10_000,
      baseDir: kinds.dir,
    },
  );
  const decoded = decoder.decode(rec(framed(123456, [0], encode(Inner, { name: 'x', count: 3n }))));
  assert.deepEqual(json(decoded.row), { name: 'x', count: 3, color: 'COLOR_UNSPECIFIED' });
  assert.equal(decoded.teamId, undefined, 'Inner has no team_id: no team (routing dead-letters it as no_team)');
});

test('config errors name the route and field: an unknown type, a missing team field, no registry', () => {
  const make =
    (protobuf: Record<string, unknown> | undefined, extra: Partial<ProtobufRoute> = {}) =>
    () =>
      new ProtobufDecoder(route({ ...(protobuf === undefined ? {} : { protobuf: protobufRouteSchema.parse(protobuf) }), ...extra }), { maxMessageBytes: 10_000, baseDir: kinds.dir });
  assert.throws(
    make({ descriptorSet: 'kinds.binpb', messageType: 'test.kinds.Nope' }),
    (e: unknown) => e instanceof ConfigError && /protobuf\.messageType: test\.kinds\.Nope is not in kinds\.binpb \(it has .*test\.kinds\.Kinds/.test(e.message),
  );
  assert.throws(make({ descriptorSet: 'missing.binpb', messageType: 'test.kinds.Kinds' }), (e: unknown) => e instanceof ConfigError && /protobuf\.descriptorSet/.test(e.message));
  assert.throws(
    make({ descriptorSet: 'kinds.binpb', messageType: 'test.kinds.Inner' }),
    (e: unknown) => e instanceof ConfigError && /teamId\.field: test\.kinds\.Inner has no field team_id/.test(e.message),
  );
  make({ descriptorSet: 'kinds.binpb', messageType: 'test.kinds.Inner' }, { destination: 'fixed' })(); // a fixed destination needs no team
  assert.throws(make(undefined), (e: unknown) => e instanceof ConfigError && /needs the top-level schemaRegistry/.test(e.message));
  assert.equal(protobufRouteSchema.safeParse({ descriptorSet: 'x.binpb' }).success, false, 'a descriptor set needs its messageType');
  assert.equal(protobufRouteSchema.safeParse({ wireFormat: 'raw' }).success, false, 'raw needs a descriptor set');
});

test('the registry config: https unless loopback or allowHttp, no credentials in the URL, a password needs its user', () => {
  const issues = (raw: Record<string, unknown>): string[] => {
    const parsed = schemaRegistrySchema.safeParse(raw);
    return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  assert.deepEqual(issues({ url: 'https://registry.example.com' }), []);
  assert.deepEqual(issues({ url: 'http://localhost:8081' }), []);
  assert.deepEqual(issues({ url: 'http://127.0.0.1:8081/apis/ccompat/v7' }), []);
  assert.match(issues({ url: 'http://registry.example.com' }).join(), /url: must be https/);
  assert.deepEqual(issues({ url: 'http://registry.example.com', allowHttp: true }), []);
  const leaked = issues({ url: 'https://key:s3cret@registry.example.com' }).join();
  assert.match(leaked, /must not carry credentials/);
  assert.doesNotMatch(leaked, /s3cret/);
  assert.match(issues({ url: 'https://r.example.com', password: 'x' }).join(), /username: a password needs its username/);
  assert.match(issues({ url: 'ftp://r.example.com' }).join(), /url:/);
});

test('registry: prepare fetches the schema once, then every message of it decodes (message indexes pick the type)', async () => {
  const decoder = viaRegistry();
  const before = fake.requests.length;
  const value = framed(kindsId, [1], encode(Kinds, { teamId: 3n, color: 1, at: { seconds: 1n, nanos: 0 } }));
  const waiting = decoder.prepare(rec(value), AbortSignal.timeout(5_000));
  assert.ok(waiting instanceof Promise);
  await waiting;
  assert.equal(decoder.prepare(rec(value), AbortSignal.timeout(5_000)), undefined, 'cached');
  const decoded = decoder.decode(rec(value));
  assert.equal(decoded.teamId, 3);
  assert.equal((decoded.row as ObjectRow).type.name, 'test.kinds.Kinds');
  assert.equal(json(decoded.row).color, 'COLOR_RED');
  assert.equal(json(decoded.row).at, '1970-01-01 00:00:01.000000');
  const deep = decoder.decode(rec(framed(kindsId, [2, 0], encode(Deep, { value: 'v', teamId: 9n }))));
  assert.equal((deep.row as ObjectRow).type.name, 'test.kinds.Second.Deep');
  assert.equal(deep.teamId, 9);
  const first = decoder.decode(rec(framed(kindsId, [0], encode(Inner, { name: 'i' }))));
  assert.equal((first.row as ObjectRow).type.name, 'test.kinds.Inner');
  assert.equal(fake.requests.length - before, 1, 'one request for the schema, whatever its messages');
  assert.equal(fake.requests.at(-1)?.path, `/schemas/ids/${kindsId}?format=serialized`);
  assert.equal(
    codeOf(() => decoder.decode(rec(framed(kindsId, [7], Buffer.alloc(0))))),
    'INSERTER_DECODE_BAD_MESSAGE_INDEX',
  );
  assert.equal(
    codeOf(() => decoder.decode(rec(framed(kindsId, [2, 5], Buffer.alloc(0))))),
    'INSERTER_DECODE_BAD_MESSAGE_INDEX',
  );
  assert.equal(
    codeOf(() => decoder.decode(rec(framed(kindsId, [1], Buffer.from([0x12, 0x09, 0x01]))))),
    'INSERTER_DECODE_BAD_PROTOBUF',
    'a truncated payload',
  );
  assert.equal(
    codeOf(() => decoder.decode(rec(Buffer.from('{"team_id":1}')))),
    'INSERTER_DECODE_BAD_MAGIC',
  );
});

test('registry: without prepare, decode of an id not loaded is retryable (the record waits), never a DecodeError, and never blocks', () => {
  const decoder = viaRegistry();
  const started = Date.now();
  assert.throws(
    () => decoder.decode(rec(framed(kindsId, [1], encode(Kinds, { teamId: 4n })))),
    (e: unknown) => e instanceof SchemaRegistryUnavailableError && !(e instanceof DecodeError) && e.retryable && e.code === 'INSERTER_SCHEMA_REGISTRY_UNAVAILABLE',
  );
  assert.ok(Date.now() - started < 200, 'answered at once, without asking the registry');
});

test('registry: references are fetched by subject and version; relative type names resolve', async () => {
  const decoder = viaRegistry();
  const value = framed(refsId, [0], encode(WithRef, { inner: { name: 'n', count: 2n }, teamId: 11n, color: 2 }));
  await decoder.prepare(rec(value), AbortSignal.timeout(5_000));
  const relativeValue = framed(relativeId, [1], encode(Kinds, { inner: { name: 'r' }, teamId: 1n }));
  await decoder.prepare(rec(relativeValue), AbortSignal.timeout(5_000));
  assert.ok(fake.requests.some((r) => r.path === '/subjects/kinds.proto/versions/1?format=serialized'));
  const decoded = decoder.decode(rec(value));
  assert.equal(decoded.teamId, 11);
  assert.deepEqual(json(decoded.row), { inner: { name: 'n', count: 2, color: 'COLOR_UNSPECIFIED' }, team_id: 11, color: 'COLOR_GREEN' });
  const relative = decoder.decode(rec(relativeValue));
  assert.deepEqual(json(relative.row).inner, { name: 'r', count: 0, color: 'COLOR_UNSPECIFIED' });
});

test('registry, Karapace dialect: a reference served as .proto text by its subject version is fetched serialized by its id', async () => {
  fake.dialect = 'karapace';
  const before = fake.requests.length;
  try {
    const decoder = viaRegistry();
    const value = framed(refsId, [0], encode(WithRef, { inner: { name: 'k', count: 3n }, teamId: 12n, color: 1 }));
    await decoder.prepare(rec(value), AbortSignal.timeout(5_000));
    const decoded = decoder.decode(rec(value));
    assert.equal(decoded.teamId, 12);
    assert.deepEqual(json(decoded.row).inner, { name: 'k', count: 3, color: 'COLOR_UNSPECIFIED' });
    const asked = fake.requests.slice(before).map((r) => r.path);
    assert.deepEqual(asked, [`/schemas/ids/${refsId}?format=serialized`, '/subjects/kinds.proto/versions/1?format=serialized', `/schemas/ids/${kindsId}?format=serialized`]);
  } finally {
    fake.dialect = 'confluent';
  }
});

test('registry, Apicurio dialect: raw bytes where format=serialized promises base64 are a DecodeError that says why', async () => {
  fake.dialect = 'apicurio';
  try {
    const decoder = viaRegistry({ protobuf: protobufRouteSchema.parse({ messageType: 'test.kinds.Kinds' }) });
    const value = framed(kindsId, [1], encode(Kinds, { teamId: 1n }));
    await decoder.prepare(rec(value), AbortSignal.timeout(5_000));
    assert.throws(
      () => decoder.decode(rec(value)),
      (e: unknown) => e instanceof DecodeError && e.code === 'INSERTER_DECODE_SCHEMA_INVALID' && /not serve it serialized/.test(e.message),
    );
  } finally {
    fake.dialect = 'confluent';
  }
});

test('registry: an unknown id, an Avro schema, a schema that does not load, another type than the route reads: DecodeErrors, remembered', async () => {
  const decoder = viaRegistry({ protobuf: protobufRouteSchema.parse({ messageType: 'test.kinds.Kinds' }) });
  const payload = encode(Kinds, { teamId: 1n });
  for (const id of [999_999, avroId, garbageId, kindsId]) await decoder.prepare(rec(framed(id, [1], payload)), AbortSignal.timeout(5_000));
  const before = fake.requests.length;
  assert.equal(
    codeOf(() => decoder.decode(rec(framed(999_999, [1], payload)))),
    'INSERTER_DECODE_UNKNOWN_SCHEMA',
  );
  assert.equal(
    codeOf(() => decoder.decode(rec(framed(999_999, [1], payload)))),
    'INSERTER_DECODE_UNKNOWN_SCHEMA',
  );
  assert.equal(decoder.prepare(rec(framed(999_999, [1], payload)), AbortSignal.timeout(5_000)), undefined, 'nothing more to wait for');
  assert.equal(
    codeOf(() => decoder.decode(rec(framed(avroId, [0], payload)))),
    'INSERTER_DECODE_NOT_PROTOBUF',
  );
  assert.equal(
    codeOf(() => decoder.decode(rec(framed(garbageId, [0], payload)))),
    'INSERTER_DECODE_SCHEMA_INVALID',
  );
  assert.equal(
    codeOf(() => decoder.decode(rec(framed(kindsId, [0], encode(Inner, {}))))),
    'INSERTER_DECODE_WRONG_TYPE',
  );
  assert.equal(
    codeOf(() => decoder.decode(rec(framed(kindsId, [1], payload)))),
    'decoded',
  );
  assert.equal(fake.requests.length, before, 'decoding asked the registry nothing: an unknown id is remembered (negativeCacheTtlMs), not asked per record');
});

test('registry down is not a decode error: prepare reports each failure and waits it out, then the record decodes', async () => {
  const value = framed(kindsId, [1], encode(Kinds, { teamId: 8n }));
  for (const mode of ['error', 'down'] as const) {
    const failures: string[] = [];
    const decoder = viaRegistry({}, registryConfig(), { onRegistryUnavailable: (e: SchemaRegistryUnavailableError, attempt: number) => failures.push(`${attempt} ${e.code} ${e.retryable}`) });
    fake.failNext(3, mode);
    const waiting = decoder.prepare(rec(value), AbortSignal.timeout(5_000));
    assert.ok(waiting instanceof Promise);
    await waiting;
    assert.deepEqual(
      failures,
      [1, 2, 3].map((n) => `${n} INSERTER_SCHEMA_REGISTRY_UNAVAILABLE true`),
      `${mode}: each failure reported, then retried after a backoff`,
    );
    assert.equal(decoder.decode(rec(value)).teamId, 8);
  }
});

test('registry: a slow registry times out (unavailable); prepare gives up only when its signal fires', async () => {
  const decoder = viaRegistry({}, registryConfig({ timeoutMs: 100 }));
  const value = framed(kindsId, [1], encode(Kinds, { teamId: 8n }));
  fake.mode = 'slow';
  fake.slowMs = 1_000;
  try {
    const stop = new AbortController();
    const waiting = decoder.prepare(rec(value), stop.signal);
    assert.ok(waiting instanceof Promise);
    setTimeout(() => stop.abort(new Error('revoked')), 300);
    await assert.rejects(waiting);
    assert.equal(decoder.prepare(rec(value), AbortSignal.timeout(5_000)) instanceof Promise, true, 'still not loaded');
  } finally {
    fake.mode = 'ok';
  }
});

test('registry: basic auth with a secret from the environment; a refused login is unavailable, never a decode error', async () => {
  const secured = new FakeSchemaRegistry({ username: 'key', password: 's3cret' });
  const securedUrl = await secured.start();
  try {
    const id = secured.register('kinds.proto', kinds.serializedFile('kinds.proto'));
    const value = framed(id, [1], encode(Kinds, { teamId: 6n }));
    const good = viaRegistry({}, schemaRegistrySchema.parse({ url: securedUrl, username: 'key', password: { env: 'REGISTRY_SECRET' } }), { env: { REGISTRY_SECRET: 's3cret' } });
    await good.prepare(rec(value), AbortSignal.timeout(5_000));
    assert.equal(good.decode(rec(value)).teamId, 6);
    assert.equal(secured.requests.at(-1)?.authorization, `Basic ${Buffer.from('key:s3cret').toString('base64')}`);
    const refused: string[] = [];
    const stop = new AbortController();
    const bad = viaRegistry({}, schemaRegistrySchema.parse({ url: securedUrl, username: 'key', password: 'wrong' }), {
      onRegistryUnavailable: (e: SchemaRegistryUnavailableError) => {
        refused.push(e.message);
        stop.abort();
      },
    });
    await assert.rejects(bad.prepare(rec(value), stop.signal) ?? Promise.resolve());
    assert.match(refused.join(), /HTTP 401, check schemaRegistry.username and password/);
    assert.doesNotMatch(refused.join(), /wrong/);
    assert.throws(() => viaRegistry({}, schemaRegistrySchema.parse({ url: securedUrl, username: 'key', password: { env: 'UNSET_SECRET' } }), { env: {} }), ConfigError);
  } finally {
    await secured.stop();
  }
});

test('team id: from a field (0 of a field without presence is no team), a header or the key; a bad one is a DecodeError', () => {
  const fixed = (teamId: ProtobufRoute['teamId'], destination = 'team') =>
    new ProtobufDecoder(route({ teamId, destination, protobuf: protobufRouteSchema.parse({ descriptorSet: 'kinds.binpb', messageType: 'test.kinds.Kinds' }) }), {
      maxMessageBytes: 200,
      baseDir: kinds.dir,
    });
  const field = fixed({ from: 'field', field: 'team_id' });
  assert.equal(field.decode(rec(encode(Kinds, { teamId: 0n }))).teamId, undefined);
  assert.equal(field.decode(rec(encode(Kinds, { teamId: 12n }))).teamId, 12);
  assert.equal(
    codeOf(() => field.decode(rec(encode(Kinds, { teamId: 2n ** 60n })))),
    'INSERTER_DECODE_BAD_TEAM',
  );
  assert.equal(fixed({ from: 'field', field: 'team_id' }, 'fixed').decode(rec(encode(Kinds, { teamId: 2n ** 60n }))).teamId, undefined, 'a fixed destination ignores a bad team');
  assert.equal(fixed({ from: 'field', field: 'maybe_int' }).decode(rec(encode(Kinds, { maybeInt: 0n }))).teamId, 0, 'with presence, 0 is 0');
  assert.equal(fixed({ from: 'field', field: 'text' }).decode(rec(encode(Kinds, { text: '42' }))).teamId, 42, 'a string of digits');
  assert.equal(
    codeOf(() => fixed({ from: 'field', field: 'text' }).decode(rec(encode(Kinds, { text: '4x' })))),
    'INSERTER_DECODE_BAD_TEAM',
  );
  assert.equal(fixed({ from: 'field', field: 'wrapped_int' }).decode(rec(encode(Kinds, { wrappedInt: 5n }))).teamId, 5);
  const header = fixed({ from: 'header', header: 'team' });
  assert.equal(header.decode(rec(encode(Kinds, {}), { headers: [[Buffer.from('team'), Buffer.from('-3')]] })).teamId, -3);
  assert.equal(header.decode(rec(encode(Kinds, {}))).teamId, undefined);
  assert.equal(
    codeOf(() => header.decode(rec(encode(Kinds, {}), { headers: [[Buffer.from('team'), Buffer.from('abc')]] }))),
    'INSERTER_DECODE_BAD_TEAM',
  );
  assert.equal(fixed({ from: 'key' }).decode(rec(encode(Kinds, {}), { key: Buffer.from('77') })).teamId, 77);
  assert.equal(
    codeOf(() => field.decode(rec(undefined))),
    'INSERTER_DECODE_EMPTY',
  );
  assert.equal(field.decode(rec(Buffer.alloc(0))).teamId, undefined, 'an empty raw message is every field at its default');
  assert.equal(
    codeOf(() => field.decode(rec(encode(Kinds, { text: 'x'.repeat(300) })))),
    'INSERTER_DECODE_OVERSIZED',
  );
});

test('decoderFor: a protobuf route gets the Protobuf decoder, with the config folder and the registry', async () => {
  const raw = { name: 'p', topic: 't', table: 'x', format: 'protobuf', teamId: { from: 'field', field: 'team_id' }, destination: 'team' };
  const decoder = decoderFor(raw as unknown as RouteConfig, { maxMessageBytes: 10_000, baseDir: kinds.dir, schemaRegistry: registryConfig() });
  assert.equal(decoder.format, 'protobuf');
  const value = framed(kindsId, [1], encode(Kinds, { teamId: 21n }));
  await decoder.prepare?.(rec(value), AbortSignal.timeout(5_000));
  assert.equal(decoder.decode(rec(value)).teamId, 21);
  assert.equal('prepare' in decoderFor({ ...raw, format: 'json' } as unknown as RouteConfig, { maxMessageBytes: 100 }), false, 'JSON never waits');
});
