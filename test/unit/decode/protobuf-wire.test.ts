// Differential test of the wire rows (decode/protobuf/wire-row-type.ts) against the `fromBinary`
// rows (row-type.ts): for generated wire bytes of every field kind (test.wire.All, test.kinds.Kinds,
// the eight PostHog types, and the generator's real PostHog messages), every reader's value from the
// wire row deep-equals the value from the `fromBinary` row, and toJson is the same. Malformed
// payloads (mutations): whatever `fromBinary` rejects, the wire walk rejects at decode time with a
// DecodeError INSERTER_DECODE_BAD_PROTOBUF; the wire walk rejects more only where a value overruns
// the message, map entry or packed list holding it (protobuf-es reads on into the parent's bytes;
// the reference implementations reject). Seeded: FUZZ_SEED=<n> replays a run, FUZZ_RUNS=<n> runs longer.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { createFileRegistry, fromBinary, type DescMessage, type Registry } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { descriptorSet, PROTOBUF_TYPES, toProtobuf } from '../../../dev/posthog/protobuf.ts';
import { ALL_TOPICS, generate } from '../../../dev/posthog/generator.ts';
import { ProtobufDecoder } from '../../../src/decode/protobuf/decoder.ts';
import { RowTypes } from '../../../src/decode/protobuf/row-type.ts';
import { WireMessage, WireRowType, WireRowTypes } from '../../../src/decode/protobuf/wire-row-type.ts';
import { TimestampValue, type TextSpan } from '../../../src/decode/row.ts';
import { DecodeError } from '../../../src/errors/inserter-error.ts';
import { buildKinds } from './protobuf/fixtures.ts';
import { genMessage, mutate, Rand, type GenOptions } from './protobuf/wire-gen.ts';

const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const numRuns = Number(process.env.FUZZ_RUNS ?? 1500);
const params = (runs: number): fc.Parameters<[number]> => ({ numRuns: runs, ...(seed === undefined ? {} : { seed }) });

const kinds = buildKinds();
after(() => kinds.cleanup());
const posthogRegistry = createFileRegistry(fromBinary(FileDescriptorSetSchema, descriptorSet(ALL_TOPICS)));

interface Pair {
  readonly wire: WireRowType;
  readonly desc: DescMessage;
}

function pairOf(registry: Registry & { getMessage(name: string): DescMessage | undefined }, typeName: string): Pair {
  const desc = registry.getMessage(typeName);
  if (desc === undefined) throw new Error(`no ${typeName}`);
  const type = new WireRowTypes(new RowTypes(registry)).typeOf(desc);
  assert.ok(type instanceof WireRowType, `${typeName} is read from the wire`);
  return { wire: type, desc };
}

type Outcome = 'equal' | 'both rejected' | 'stricter';

/** Reads `payload` both ways (behind a random prefix, as a framed record's payload is) and compares. */
function compare(pair: Pair, payload: Buffer, prefix = 0): Outcome {
  const { wire, desc } = pair;
  let expected: object | undefined;
  let expectedError: unknown;
  try {
    expected = fromBinary(desc, payload, { readUnknownFields: false });
  } catch (error) {
    expectedError = error;
  }
  const record = Buffer.concat([Buffer.alloc(prefix, 0xee), payload]);
  let actual: object | undefined;
  let actualError: unknown;
  try {
    actual = wire.read(record, prefix, record.length);
  } catch (error) {
    actualError = error;
  }
  const hex = payload.toString('hex');
  if (actualError !== undefined) {
    assert.ok(actualError instanceof DecodeError && actualError.code === 'INSERTER_DECODE_BAD_PROTOBUF', `a DecodeError, not ${(actualError as Error).message} (${hex})`);
    if (expectedError !== undefined) return 'both rejected';
    assert.match(actualError.message, /overruns/, `only overruns are rejected where fromBinary reads on: ${actualError.message} (${hex})`);
    return 'stricter';
  }
  assert.equal(expectedError, undefined, `fromBinary rejects what the wire walk accepted: ${String(expectedError)} (${hex})`);
  const objects = wire.objects;
  for (const name of wire.fieldNames) {
    // A value the JSON conversion refuses (a Timestamp or Duration out of range) throws both ways.
    const got = outcome(() => wire.reader(name)?.(actual as object));
    const want = outcome(() => objects.reader(name)?.(expected as object));
    assert.deepStrictEqual(got, want, `field ${name} (${hex})`);
    // A string field's bytes (typed encoders copy them into String columns) are its reader's text.
    const text = wire.textReader(name);
    if (text === undefined) continue;
    const span: TextSpan = { buf: Buffer.alloc(0), start: 0, end: 0 };
    const value = wire.reader(name)?.(actual as object);
    if (text(actual as object, span)) assert.equal(span.buf.toString('utf8', span.start, span.end), value, `text of ${name} (${hex})`);
    else assert.equal(value, undefined, `no text only for an absent ${name} (${hex})`);
    texts++;
  }
  assert.deepStrictEqual(
    outcome(() => wire.toJson(actual as object)),
    outcome(() => objects.toJson(expected as object)),
    `toJson (${hex})`,
  );
  return 'equal';
}

/** String fields whose bytes were compared with their reader's text (the differential must reach some). */
let texts = 0;

function outcome(read: () => unknown): unknown {
  try {
    return entriesOf(read());
  } catch (error) {
    return { threw: (error as Error).message };
  }
}

/**
 * Plain objects as lists of entries, recursively: a map's keys are data, and a key such as
 * `constructor` makes node:assert compare two equal objects as unequal (seen: seed 825653565).
 */
function entriesOf(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(entriesOf);
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  return { type: Object.getPrototypeOf(value) === Object.prototype ? 'object' : 'instance', entries: Object.entries(value).map(([key, item]) => [key, entriesOf(item)]) };
}

function differential(pair: Pair, options: GenOptions, runs: number, mutated: boolean): Record<Outcome, number> {
  const counts: Record<Outcome, number> = { equal: 0, 'both rejected': 0, stricter: 0 };
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0x7fffffff }), (s) => {
      const r = new Rand(s);
      let bytes = genMessage(r, pair.desc, options);
      if (mutated) bytes = mutate(r, bytes);
      counts[compare(pair, bytes, r.int(3) * 3)]++;
    }),
    params(runs),
  );
  return counts;
}

const ALL_OPTIONS: GenOptions = { fields: 40, wrongWireType: 0.03 };

test('differential: generated test.wire.All messages (every scalar type singular, optional, packed, unpacked; enums; nested; maps; oneof; wrappers; Timestamp; Struct; Duration)', () => {
  const counts = differential(pairOf(kinds.registry, 'test.wire.All'), ALL_OPTIONS, numRuns, false);
  // The generator writes a little invalid UTF-8 and wrong wire types: most messages must be valid.
  assert.ok(counts.equal > numRuns * 0.5, `most generated messages are valid: ${JSON.stringify(counts)}`);
  assert.ok(texts > numRuns, `string fields' bytes compared with their text: ${texts}`);
});

test('differential: generated test.wire.Flat (JSON written from the wire), test.wire.Leaf and test.kinds.Kinds messages', () => {
  for (const name of ['test.wire.Flat', 'test.wire.Leaf', 'test.kinds.Kinds', 'test.kinds.Inner']) {
    const counts = differential(pairOf(kinds.registry, name), ALL_OPTIONS, Math.ceil(numRuns / 3), false);
    assert.ok(counts.equal > numRuns / 6, `${name}: ${JSON.stringify(counts)}`);
  }
});

test('differential: the eight PostHog types, generated at the wire level and from the generator’s messages', () => {
  for (const topic of ALL_TOPICS) {
    const pair = pairOf(posthogRegistry, PROTOBUF_TYPES[topic].desc.typeName);
    const counts = differential(pair, { fields: 30, wrongWireType: 0.02 }, Math.ceil(numRuns / 5), false);
    assert.ok(counts.equal > numRuns / 10, `${topic}: ${JSON.stringify(counts)}`);
    let n = 0;
    for (const message of generate(topic, { seed: 7, count: 150 })) {
      let payload: Buffer;
      try {
        payload = toProtobuf(message);
      } catch {
        continue; // a corrupt generated message (not JSON): no Protobuf twin
      }
      assert.equal(compare(pair, payload, n % 2 === 0 ? 0 : 6), 'equal');
      n++;
    }
    assert.ok(n > 100, `${topic}: ${n} generated messages compared`);
  }
});

test('malformed payloads: what fromBinary rejects is rejected at decode time (DecodeError BAD_PROTOBUF); the wire walk rejects more only for overruns', () => {
  const all = differential(pairOf(kinds.registry, 'test.wire.All'), ALL_OPTIONS, numRuns, true);
  const event = differential(pairOf(posthogRegistry, 'posthog.v1.Event'), { fields: 30, wrongWireType: 0.02 }, numRuns, true);
  for (const counts of [all, event]) assert.ok(counts['both rejected'] > numRuns * 0.2 && counts.equal > numRuns * 0.05, JSON.stringify(counts));
  // Overruns are a small share of the malformed payloads (nested lengths corrupted to reach into the parent).
  assert.ok(all.stricter + event.stricter < numRuns * 0.2, `stricter: ${all.stricter} + ${event.stricter}`);
});

/** Wire bytes by hand: [field, wire type, payload bytes] (varint payloads as given). */
function wire(...parts: (readonly [number, number, readonly number[]])[]): Buffer {
  const out: number[] = [];
  for (const [no, wt, payload] of parts) {
    let t = (no << 3) | wt;
    while (t >= 0x80) {
      out.push((t & 0x7f) | 0x80);
      t >>>= 7;
    }
    out.push(t);
    if (wt === 2) out.push(payload.length);
    out.push(...payload);
  }
  return Buffer.from(out);
}

test('JSON is written from the wire for types of wire-read kinds only (PostHog’s all are)', () => {
  assert.equal(pairOf(kinds.registry, 'test.wire.Flat').wire.jsonFromWire, true);
  assert.equal(pairOf(kinds.registry, 'test.wire.All').wire.jsonFromWire, false);
  for (const topic of ALL_TOPICS) assert.equal(pairOf(posthogRegistry, PROTOBUF_TYPES[topic].desc.typeName).wire.jsonFromWire, true, topic);
});

test('hand-made wire: last one wins, message occurrences merge, packed and unpacked mix, the last oneof member wins, unknown groups skipped', () => {
  const pair = pairOf(kinds.registry, 'test.wire.All');
  const read = (bytes: Buffer, field: string): unknown => {
    assert.equal(compare(pair, bytes), 'equal');
    return pair.wire.reader(field)?.(pair.wire.read(bytes, 0, bytes.length));
  };
  assert.equal(read(wire([14, 2, [0x61]], [3, 0, [5]], [14, 2, [0x62, 0x63]]), 'f_string'), 'bc');
  // ts {seconds: 5} then ts {nanos: 7}: merged.
  assert.deepEqual(read(wire([64, 2, [0x08, 5]], [3, 0, [0]], [64, 2, [0x10, 7]]), 'ts'), new TimestampValue(5n, 7));
  // r_int32 packed [1, 2], unpacked 3, packed [4].
  assert.deepEqual(read(wire([35, 2, [1, 2]], [35, 0, [3]], [35, 2, [4]]), 'r_int32'), [1, 2, 3, 4]);
  assert.deepEqual(read(wire([49, 2, [1, 2]], [49, 0, [3]]), 'u_int32'), [1, 2, 3], 'an unpacked list reads packed occurrences too');
  const oneof = wire([79, 0, [9]], [78, 2, [0x78]]);
  assert.equal(read(oneof, 'p_string'), 'x');
  assert.equal(read(oneof, 'p_int64'), undefined);
  // An unknown group (field 990) holding an unknown varint, then a known field.
  assert.equal(read(Buffer.concat([wire([990, 3, []], [991, 0, [1]], [990, 4, []]), wire([4, 0, [0x7f]])]), 'f_int64'), 127n);
  // A 10-byte negative int32, and an int64 field sent as wire type 2 (read as its type: a varint).
  assert.equal(read(wire([3, 0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]]), 'f_int32'), -1);
  assert.equal(read(Buffer.from([0x22, 0x05]), 'f_int64'), 5n);
  // Unset: proto3 zero, optional absent, wrapper absent, list empty.
  assert.equal(read(Buffer.alloc(0), 'f_uint64'), 0n);
  assert.equal(read(Buffer.alloc(0), 'o_uint64'), undefined);
  assert.equal(read(Buffer.alloc(0), 'w_string'), undefined);
  assert.equal(read(Buffer.alloc(0), 'f_enum'), 'LEVEL_UNSPECIFIED');
  assert.deepEqual(read(Buffer.alloc(0), 'r_enum'), []);
  assert.equal(read(wire([16, 0, [2]]), 'f_enum'), 'LEVEL_HIGH', 'an aliased number reads as its first name');
  assert.equal(read(wire([100000, 2, [0x7a]]), 'far'), 'z');
});

test('a nested value overrunning its message is rejected (stricter than protobuf-es, which reads on into the parent)', () => {
  const pair = pairOf(kinds.registry, 'test.wire.All');
  // leaf (55) of 2 bytes holding name (1) of 3 bytes: the name's bytes run past the leaf into field 3.
  const bytes = Buffer.from([0xba, 0x03, 0x02, 0x0a, 0x03, 0x18, 0x01, 0x61]);
  assert.equal(compare(pair, bytes), 'stricter');
});

test('the decoder: undecodable payloads are DecodeErrors at decode, a wire row counts its bytes and a small overhead', () => {
  const decoder = new ProtobufDecoder(
    { name: 'r', teamId: { from: 'field', field: 'team_id' }, destination: 'team', protobuf: { descriptorSet: kinds.descriptorSet, messageType: 'test.kinds.Kinds' } },
    { maxMessageBytes: 1 << 20, baseDir: kinds.dir },
  );
  const rec = (value: Buffer) => ({ topic: 't', partition: 0, offset: 0n, timestamp: 0n, key: undefined, value, headers: [], epoch: 0 });
  for (const bad of [Buffer.from([0x0a, 0x05, 0x61]), Buffer.from([0x00]), Buffer.from([0x52, 0x02, 0xc3, 0x28]), Buffer.from([0xf8, 0x07])]) {
    assert.throws(
      () => decoder.decode(rec(bad)),
      (e: unknown) => e instanceof DecodeError && e.code === 'INSERTER_DECODE_BAD_PROTOBUF' && e.message.startsWith('message is not a valid test.kinds.Kinds'),
      bad.toString('hex'),
    );
  }
  const value = wire([30, 0, [7]], [10, 2, [0x61, 0x62]]);
  const { row, teamId } = decoder.decode(rec(value));
  assert.equal(teamId, 7);
  assert.ok(!Buffer.isBuffer(row) && row.values instanceof WireMessage, 'a wire row');
  assert.ok(row.size > value.length && row.size < value.length + 512, `its bytes plus a small overhead: ${row.size}`);
});
