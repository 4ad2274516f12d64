// Property-based fuzzing (fast-check) of decode → encode, the path every record takes before it
// reaches the warehouse: random JSON, mutated PostHog events, deep nesting, huge strings, invalid
// UTF-8, odd keys and headers, tombstones. For every input the decoder either returns one JSON
// object and its team id or throws a DecodeError with a decode code (dead-lettered with that
// reason); nothing else escapes. What it accepts, encoded with every metadata column (or wrapped in
// `_message`), is exactly one JSON value holding the original fields and the record's metadata.
// Seeded: FUZZ_SEED=<n> replays a run; FUZZ_RUNS=<n> runs longer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { generate } from '../../../dev/posthog/generator.ts';
import { decodeJsonRecord, type DecodeOptions } from '../../../src/decode/json.ts';
import { ByteChunks } from '../../../src/encode/byte-chunks.ts';
import { rowShapeFor, writeRow } from '../../../src/encode/json-each-row.ts';
import { DecodeError } from '../../../src/errors/inserter-error.ts';
import type { ColumnInfo } from '../../../src/sink/types.ts';
import type { SourceRecord } from '../../../src/source/types.ts';

// CI runs one fixed seed (a run there must not fail by the luck of the draw); elsewhere each run draws anew.
const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : process.env.CI === 'true' ? 20261206 : undefined;
const numRuns = Number(process.env.FUZZ_RUNS ?? 300);
const params = { numRuns, ...(seed === undefined ? {} : { seed }) };

const MAX_BYTES = 1 << 20;
const decodeCodes = new Set(['INSERTER_DECODE_EMPTY', 'INSERTER_DECODE_OVERSIZED', 'INSERTER_DECODE_NOT_OBJECT', 'INSERTER_DECODE_BAD_JSON', 'INSERTER_DECODE_BAD_TEAM']);
const column = (name: string): ColumnInfo => ({ name, type: 'String', defaultKind: '' });
const fullShape = rowShapeFor(['_topic', '_partition', '_offset', '_key', '_timestamp', '_timestamp_ms', '_headers.name', '_headers.value'].map(column));
const wrapShape = rowShapeFor(['_message', 'team_id', '_offset'].map(column));
const posthog = [...generate('clickhouse_events_json', { seed: 11, count: 40, teams: 30 })].map((m) => m.value);

const deep = fc.integer({ min: 1, max: 3000 }).map((n) => Buffer.from(`{"team_id":7,"x":${'['.repeat(n)}${']'.repeat(n)},"y":${'{"a":'.repeat(n % 500)}1${'}'.repeat(n % 500)}}`));
const huge = fc.tuple(fc.integer({ min: 0, max: 300_000 }), fc.constantFrom('a', 'é', '\\"', '\\n', '😀')).map(([n, unit]) => Buffer.from(`{"team_id":3,"s":"${unit.repeat(n / unit.length)}"}`));
const mutated = fc
  .tuple(fc.constantFrom(...posthog), fc.nat(), fc.nat({ max: 255 }), fc.constantFrom('truncate', 'insert', 'flip', 'twice', 'trail', 'lines', 'none'))
  .map(([event, at, byte, how]) => {
    const i = at % (event.length + 1);
    switch (how) {
      case 'truncate':
        return event.subarray(0, i);
      case 'insert':
        return Buffer.concat([event.subarray(0, i), Buffer.from([byte]), event.subarray(i)]);
      case 'flip': {
        const copy = Buffer.from(event);
        if (copy.length > 0) copy[i % copy.length] = byte;
        return copy;
      }
      case 'twice':
        return Buffer.concat([event, event]);
      case 'trail':
        return Buffer.concat([event, Buffer.from([byte])]);
      case 'lines':
        return Buffer.concat([event, Buffer.from('\n'), event, Buffer.from('\n')]);
      default:
        return event;
    }
  });
const jsonText = fc.oneof(
  fc.json(),
  fc.jsonValue().map((v) => JSON.stringify(v, null, 2)),
  fc.object().map((o) => JSON.stringify(o)),
);
const objectWithTeam = fc
  .tuple(fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 8 }), fc.option(fc.integer({ min: -1e9, max: 1e9 })))
  .map(([o, team]) => Buffer.from(JSON.stringify(team === null ? o : { ...o, team_id: team })));
const value = fc.oneof(
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  jsonText.map((t) => Buffer.from(t)),
  objectWithTeam,
  mutated,
  deep,
  huge,
  fc.constantFrom(Buffer.alloc(0), Buffer.from('  \n\t'), Buffer.from('{}{}'), Buffer.from('{"a":1}\n{"b":2}'), Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), Buffer.from('{"\\u0000":"\\ud800"}')),
);
const bytes = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
const record = fc.record({
  value,
  key: fc.option(bytes, { nil: undefined }),
  headers: fc.array(fc.tuple(bytes, bytes), { maxLength: 4 }),
  partition: fc.nat({ max: 1000 }),
  offset: fc.bigInt({ min: 0n, max: 2n ** 53n - 1n }),
  timestamp: fc.bigInt({ min: 0n, max: 4_102_444_800_000n }),
  topic: fc.stringMatching(/^[A-Za-z0-9._-]{1,40}$/),
});
const teamSources: Array<DecodeOptions['teamId']> = [{ from: 'field', field: 'team_id' }, { from: 'key' }, { from: 'header', header: 'team' }];

function sourceRecord(r: { value: Buffer | undefined; key: Buffer | undefined; headers: Array<[Buffer, Buffer]>; partition: number; offset: bigint; timestamp: bigint; topic: string }): SourceRecord {
  return { topic: r.topic, partition: r.partition, offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value, headers: r.headers, epoch: 0 };
}

function encode(shape: typeof fullShape, record: SourceRecord, json: Buffer, team: number | undefined): string {
  const out = new ByteChunks();
  writeRow(out, shape, record, json, team);
  const text = Buffer.concat(out.slice(0, out.length)).toString('utf8');
  assert.ok(text.endsWith('\n'), 'a row ends with a newline');
  return text.slice(0, -1);
}

function parsed(value: Buffer): unknown {
  try {
    return JSON.parse(value.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Equal as JSON. Values nested too deep for the test's own (recursive) comparison are skipped: the scanner under test is iterative. */
function assertSameJson(actual: unknown, expected: unknown, what: string): void {
  let a: string | undefined;
  let e: string | undefined;
  try {
    a = JSON.stringify(actual);
    e = JSON.stringify(expected);
  } catch (error) {
    if (error instanceof RangeError) return;
    throw error;
  }
  assert.equal(a, e, what);
}

test('decode → encode: every record is one row with its metadata, or a decode error with a decode code; nothing else escapes', () => {
  fc.assert(
    fc.property(record, fc.constantFrom(...teamSources), (r, teamId) => {
      const rec = sourceRecord(r);
      let decoded;
      try {
        decoded = decodeJsonRecord(rec, { maxMessageBytes: MAX_BYTES, teamId });
      } catch (error) {
        assert.ok(error instanceof DecodeError, `not a DecodeError: ${String(error)}`);
        assert.ok(decodeCodes.has(error.code), error.code);
        return;
      }
      const { row: json, teamId: team } = decoded;
      assert.equal(json[0], 0x7b);
      assert.equal(json[json.length - 1], 0x7d);
      assert.ok(team === undefined || Number.isSafeInteger(team));
      const original = parsed(json);
      // The decoder does not validate values (the warehouse does, and its rejections are isolated);
      // what it lets through that is JSON is exactly one object.
      if (original === undefined) return;
      assert.ok(isObject(original), 'one JSON object');
      if (teamId.from === 'field') {
        const expected = original.team_id;
        if (typeof expected === 'number') assert.equal(team, expected);
      }
      const row = JSON.parse(encode(fullShape, rec, json, team)) as Record<string, unknown>;
      for (const key of Object.keys(original)) assertSameJson(row[key], original[key], key);
      const meta: Record<string, unknown> = {
        _topic: rec.topic,
        _partition: rec.partition,
        _offset: Number(rec.offset),
        _key: rec.key === undefined ? '' : rec.key.toString('utf8'),
        _timestamp: Number(rec.timestamp / 1000n),
        '_headers.name': rec.headers.map(([n]) => n.toString('utf8')),
        '_headers.value': rec.headers.map(([, v]) => v.toString('utf8')),
      };
      for (const [key, expected] of Object.entries(meta)) if (!Object.hasOwn(original, key)) assertSameJson(row[key], expected, key);
      const wrapped = JSON.parse(encode(wrapShape, rec, json, team)) as Record<string, unknown>;
      assertSameJson(wrapped._message, original, '_message');
    }),
    params,
  );
});

test('more than one JSON value in a message is never accepted', () => {
  fc.assert(
    fc.property(fc.array(objectWithTeam, { minLength: 2, maxLength: 4 }), fc.constantFrom('', '\n', ' ', '\r\n'), (objects, separator) => {
      const value = Buffer.from(objects.map((o) => o.toString('utf8')).join(separator));
      assert.throws(
        () =>
          decodeJsonRecord(sourceRecord({ value, key: undefined, headers: [], partition: 0, offset: 0n, timestamp: 0n, topic: 't' }), {
            maxMessageBytes: MAX_BYTES,
            teamId: { from: 'field', field: 'team_id' },
          }),
        (error: unknown) => error instanceof DecodeError && error.code === 'INSERTER_DECODE_BAD_JSON',
      );
    }),
    params,
  );
});

test('a JSON object with an integer team id (or none) is always accepted, with that team', () => {
  fc.assert(
    fc.property(objectWithTeam, (value) => {
      const { teamId } = decodeJsonRecord(sourceRecord({ value, key: undefined, headers: [], partition: 0, offset: 0n, timestamp: 0n, topic: 't' }), {
        maxMessageBytes: MAX_BYTES,
        teamId: { from: 'field', field: 'team_id' },
      });
      const expected = (JSON.parse(value.toString('utf8')) as { team_id?: number }).team_id;
      assert.equal(teamId, expected);
    }),
    params,
  );
});
