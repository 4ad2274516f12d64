// `.proto` files named in a route's config, compiled by the real buf CLI at start-up
// (src/decode/protobuf/proto-compiler.ts): the same types as the descriptor set buf builds from them,
// and every problem reported as a config error naming the route's field.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildConfig } from '../../../src/config/load.ts';
import { protobufRouteSchema } from '../../../src/config/typed-schema.ts';
import { ProtobufDecoder, type ProtobufRoute } from '../../../src/decode/protobuf/decoder.ts';
import type { ObjectRow } from '../../../src/decode/row.ts';
import { ConfigError } from '../../../src/errors/inserter-error.ts';
import type { SourceRecord } from '../../../src/source/types.ts';
import { buildKinds, encode } from './protobuf/fixtures.ts';
import { tempDirSync } from '../../helpers/temp-dir.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'protobuf');
const kinds = buildKinds();
const scratch = tempDirSync('inserter-proto-');
after(() => {
  kinds.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

const rec = (value: Buffer): SourceRecord => ({ topic: 't', partition: 0, offset: 0n, timestamp: 0n, key: undefined, value, headers: [], epoch: 0 });
const route = (protobuf: Record<string, unknown>): ProtobufRoute => ({
  name: 'r',
  teamId: { from: 'field', field: 'team_id' },
  destination: 'team',
  protobuf: protobufRouteSchema.parse(protobuf),
});
const decoderOf = (protobuf: Record<string, unknown>, baseDir: string): ProtobufDecoder => new ProtobufDecoder(route(protobuf), { maxMessageBytes: 10_000, baseDir });
const rowJson = (row: unknown): unknown => {
  const r = row as ObjectRow;
  return JSON.parse(r.type.toJson(r.values).toString('utf8'));
};

test('a route with .proto files decodes every message as the descriptor set buf builds from the same files', () => {
  const Kinds = kinds.message('test.kinds.Kinds');
  const WithRef = kinds.message('test.refs.WithRef');
  const samples: Array<[string, string[] | undefined, Buffer]> = [
    ['test.kinds.Kinds', ['kinds.proto'], encode(Kinds, { teamId: 7n, text: 'hi', i64: -5n, u64: 18446744073709551615n, inner: { name: 'n', count: 3n } })],
    // refs.proto imports kinds.proto: buf compiles the import with it; no `files`: all of the root.
    ['test.refs.WithRef', ['refs.proto'], encode(WithRef, { teamId: 9n, inner: { name: 'nested', count: 2n }, color: 1 })],
    ['test.refs.WithRef', undefined, encode(WithRef, { teamId: 10n })],
  ];
  for (const [messageType, files, value] of samples) {
    const fromProto = decoderOf({ messageType, proto: { root: 'protobuf', ...(files === undefined ? {} : { files }) } }, dirname(fixtures)).decode(rec(value));
    const fromSet = decoderOf({ messageType, descriptorSet: 'kinds.binpb' }, kinds.dir).decode(rec(value));
    assert.equal(fromProto.teamId, fromSet.teamId, messageType);
    assert.deepEqual(rowJson(fromProto.row), rowJson(fromSet.row), `${messageType} from ${files?.join(', ') ?? 'the whole root'}`);
    assert.equal((fromProto.row as ObjectRow).type.name, messageType);
  }
});

test('a file that does not compile, or a type it lacks, is a config error naming the field and what buf said', () => {
  writeFileSync(join(scratch, 'bad.proto'), 'syntax = "proto3";\npackage bad;\nmessage A { int32 a = 1 }\n');
  writeFileSync(join(scratch, 'good.proto'), 'syntax = "proto3";\npackage good;\nmessage B { int64 team_id = 1; }\n');
  assert.throws(
    () => decoderOf({ messageType: 'bad.A', proto: { root: '.', files: ['bad.proto'] } }, scratch),
    (e: unknown) => e instanceof ConfigError && /route r: protobuf\.proto: buf could not compile bad\.proto: .*bad\.proto:3:\d+/.test(e.message),
  );
  assert.throws(
    () => decoderOf({ messageType: 'good.Nope', proto: { root: '.', files: ['good.proto'] } }, scratch),
    (e: unknown) => e instanceof ConfigError && /protobuf\.messageType: good\.Nope is not in the \.proto files under \. \(it has good\.B\)/.test(e.message),
  );
  assert.equal(decoderOf({ messageType: 'good.B', proto: { root: '.', files: ['good.proto'] } }, scratch).decode(rec(Buffer.from([0x08, 0x05]))).teamId, 5);
});

test('the config: proto or descriptorSet, not both; a message type; .proto file names; the root and files must be readable', () => {
  const parse = (p: Record<string, unknown>): boolean => protobufRouteSchema.safeParse(p).success;
  assert.equal(parse({ messageType: 'a.B', proto: { root: 'p' } }), true);
  assert.equal(parse({ messageType: 'a.B', proto: { root: 'p' }, wireFormat: 'raw' }), true, 'raw messages with .proto files');
  assert.equal(parse({ proto: { root: 'p' } }), false, '.proto files need the message type');
  assert.equal(parse({ messageType: 'a.B', proto: { root: 'p' }, descriptorSet: 'x.binpb' }), false, 'not both');
  assert.equal(parse({ messageType: 'a.B', proto: { root: 'p', files: ['x.txt'] } }), false, 'files are .proto files');
  assert.equal(parse({ messageType: 'a.B', proto: { root: 'p', extra: 1 } }), false, 'unknown keys are refused');
  const config = (proto: Record<string, unknown>) => ({
    kafka: { brokers: ['127.0.0.1:9092'] },
    destinations: [{ id: 'a', url: 'http://127.0.0.1:8123' }],
    teams: { map: { '2': 'a' } },
    routes: [{ topic: 'events', table: 'events', format: 'protobuf', protobuf: { messageType: 'good.B', proto } }],
  });
  const issues = (proto: Record<string, unknown>): string => {
    try {
      buildConfig(config(proto), scratch, {});
    } catch (error) {
      if (error instanceof ConfigError) return error.message;
      throw error;
    }
    return '';
  };
  assert.equal(issues({ root: '.', files: ['good.proto'] }), '', 'no schemaRegistry needed');
  assert.match(issues({ root: 'missing' }), /routes\.0\.protobuf\.proto\.root: cannot read folder missing/);
  assert.match(issues({ root: '.', files: ['good.proto', 'gone.proto'] }), /routes\.0\.protobuf\.proto\.files\.1: cannot read gone\.proto/);
  assert.match(issues({ root: 'good.proto' }), /routes\.0\.protobuf\.proto\.root: .*good\.proto/, 'a file is not a root');
});
