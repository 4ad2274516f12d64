// Review 2026-12-07d, end to end: the typed encoder (src/encode/rowbinary/encoder.ts) and the JSON decoder
// (src/decode/json.ts) as the service runs them, against the same modules with the WebAssembly path turned
// off. The second copies are loaded through module hooks (a `?js-only` URL whose json-wasm.ts has no module:
// every call goes to the JavaScript forms), so both encoders are the real code, byte for byte.
import assert from 'node:assert/strict';
import { registerHooks } from 'node:module';
import { test } from 'node:test';
import fc from 'fast-check';
import { generate } from '../../../dev/posthog/generator.ts';
import * as fastDecoder from '../../../src/decode/json.ts';
import * as fastWasm from '../../../src/decode/json-wasm.ts';
import { ByteChunks } from '../../../src/encode/byte-chunks.ts';
import * as fastEncoder from '../../../src/encode/rowbinary/encoder.ts';
import type { RowEncoder } from '../../../src/encode/types.ts';
import { EncodeError } from '../../../src/errors/inserter-error.ts';
import type { ColumnInfo } from '../../../src/sink/types.ts';
import type { SourceRecord } from '../../../src/source/types.ts';
import { prng } from './reference.ts';

const TAG = '?js-only';
let stubbed = 0;
registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    const parent = context.parentURL ?? '';
    if ((parent.endsWith(`/encode/rowbinary/encoder.ts${TAG}`) || parent.endsWith(`/decode/json.ts${TAG}`)) && resolved.url.endsWith('/decode/json-wasm.ts')) {
      return { ...resolved, url: `${resolved.url}${TAG}` };
    }
    return resolved;
  },
  load(url, context, next) {
    const loaded = next(url, context);
    if (!url.endsWith(`/decode/json-wasm.ts${TAG}`)) return loaded;
    const raw = loaded.source;
    const source =
      typeof raw === 'string'
        ? raw
        : raw === undefined
          ? ''
          : Buffer.from(raw instanceof ArrayBuffer ? new Uint8Array(raw) : new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength)).toString('utf8');
    const replaced = source.replace('const json = load();', 'const json: JsonExports | undefined = undefined;');
    assert.notEqual(replaced, source, 'json-wasm.ts still creates its module with `const json = load();`');
    stubbed++;
    return { ...loaded, source: replaced };
  },
});
const encoderUrl = new URL('../../../src/encode/rowbinary/encoder.ts', import.meta.url).href;
const decoderUrl = new URL('../../../src/decode/json.ts', import.meta.url).href;
const wasmUrl = new URL('../../../src/decode/json-wasm.ts', import.meta.url).href;
const slowEncoder = (await import(encoderUrl + TAG)) as typeof fastEncoder;
const slowDecoder = (await import(decoderUrl + TAG)) as typeof fastDecoder;
const slowWasm = (await import(wasmUrl + TAG)) as typeof fastWasm;

const record: SourceRecord = { topic: 'events', partition: 0, offset: 1n, timestamp: 1_700_000_000_000n, key: undefined, value: undefined, headers: [], epoch: 0 };
const col = (name: string, type: string, defaultKind = ''): ColumnInfo => ({ name, type, defaultKind });
const COLUMNS = [
  col('uuid', 'String'),
  col('event', 'LowCardinality(String)'),
  col('properties', 'String'),
  col('timestamp', 'String'),
  col('team_id', 'Int64'),
  col('distinct_id', 'String'),
  col('elements_chain', 'String'),
  col('person_properties', 'String'),
  col('s', 'String'),
  col('t', 'String', 'DEFAULT'),
  col('n', 'Nullable(String)'),
  col('a', 'Array(String)'),
];

function encoderFrom(module: typeof fastEncoder): RowEncoder {
  const e = module.typedEncoderFor(COLUMNS);
  if ('uncovered' in e) throw new Error(e.uncovered);
  return e;
}
const fast = encoderFrom(fastEncoder);
const slow = encoderFrom(slowEncoder);

/** The encoder's bytes for the row, or its error's class, code and message. */
function encoded(e: RowEncoder, row: Buffer): string {
  const out = new ByteChunks();
  try {
    e.write(out, record, row, undefined);
  } catch (error) {
    return `throws ${(error as Error).constructor.name} ${(error as { code?: string }).code ?? ''} ${(error as Error).message}`;
  }
  return Buffer.concat(out.slice(0, out.length)).toString('hex');
}

function assertSameRow(row: Buffer, label = ''): string {
  const expected = encoded(slow, row);
  assert.equal(encoded(fast, row), expected, `${label} ${JSON.stringify(row.toString('latin1').slice(0, 200))}`);
  return expected;
}

test('the JavaScript-only copies really run without the module, and the real encoder really uses it', () => {
  assert.equal(stubbed, 1);
  assert.equal(fastWasm.wasmJsonLoaded(), true);
  assert.equal(slowWasm.wasmJsonLoaded(), false);
  const probe = Buffer.from('{"s":"a\\tb"}');
  const out = { buf: Buffer.alloc(64), pos: 0, ensure: () => undefined };
  assert.equal(fastWasm.loadRow(probe), true);
  slow.write(new ByteChunks(), record, Buffer.from('{"s":"zz"}'), undefined);
  assert.equal(fastWasm.readStringFast(probe, 5, probe.length - 1, out), probe.length - 1, 'the JavaScript-only encoder left the module alone');
  fast.write(new ByteChunks(), record, Buffer.from('{"s":"zz"}'), undefined);
  assert.equal(fastWasm.readStringFast(probe, 5, probe.length - 1, out), -1, 'the real encoder loaded its own row into the module');
});

test('generated PostHog events: the same RowBinary, with decode scans of other records between the rows (as batches interleave)', () => {
  const options: fastDecoder.DecodeOptions = { maxMessageBytes: 4 * 1024 * 1024, teamId: { from: 'field', field: 'team_id' } };
  const messages = generate('clickhouse_events_json', { seed: 5, count: 150, teams: 30 });
  let previous: Buffer | undefined;
  for (const m of messages) {
    const r: SourceRecord = { ...record, value: m.value };
    const a = fastDecoder.decodeJsonRecord(r, options);
    const b = slowDecoder.decodeJsonRecord(r, options);
    assert.equal(a.teamId, b.teamId);
    assert.ok(a.row.equals(b.row));
    if (previous !== undefined) assertSameRow(previous, 'previous row, after a decode scan');
    assertSameRow(a.row);
    previous = a.row;
  }
});

test('the decoder: records with whitespace around the object (views), team ids in strings, nested and repeated', () => {
  const options: fastDecoder.DecodeOptions = { maxMessageBytes: 4 * 1024 * 1024, teamId: { from: 'field', field: 'team_id' } };
  const values = [
    ' \n{"team_id":5}\t',
    '{"a":"{\\"team_id\\":9}","team_id":"7"}',
    '{"x":{"team_id":1},"team_id" : 2 }',
    '{"team_id":3,"team_id":4}',
    '{"team_id":null}',
    '{"team_id":1.5}',
    '{"team_id":9007199254740993}',
    '{"s":"\\\\","team_id":6}',
    '{"s":"\\\\\\"","team_id":6}',
    '{"s":"\\"","team_id":6}}',
    '{"s":"\x80\xff\x00","team_id":8}',
    `{"s":"${'\\\\'.repeat(40)}\\"${'q'.repeat(70)}","team_id":11}`,
  ];
  for (const text of values) {
    for (const offset of [0, 13]) {
      const host = Buffer.alloc(offset + text.length + 64, 0x22);
      host.write(text, offset, 'latin1');
      const r: SourceRecord = { ...record, value: host.subarray(offset, offset + text.length) };
      const outcome = (d: typeof fastDecoder): string => {
        try {
          const got = d.decodeJsonRecord(r, options);
          return `${String(got.teamId)} ${got.row.toString('latin1')}`;
        } catch (error) {
          return `throws ${(error as { code?: string }).code ?? ''} ${(error as Error).message}`;
        }
      };
      assert.equal(outcome(fastDecoder), outcome(slowDecoder), text);
    }
  }
});

test('crafted rows: escapes at every offset of the 16-byte step, \\u escapes, high bytes, views with quotes after them', () => {
  const escapes = ['\\"', '\\\\', '\\/', '\\b', '\\f', '\\n', '\\r', '\\t', '\\q', '\\\x80', '\\u00e9', '\\ud83d\\ude00', '\\ud83d', '\\uZZZZ', '\x80', '\xff', '\x00'];
  let rows = 0;
  for (let pad = 0; pad < 40; pad += 1) {
    for (const escape of escapes) {
      const value = `${'x'.repeat(pad)}${escape}${'y'.repeat((pad * 7) % 33)}`;
      const texts = [`{"s":"${value}","t":"${escape}","z":"${value}"}`, `{"a":["${value}"],"n":"${value}","s":"","uuid":"${value}${value}"}`, `{"s":"${value}"}`];
      for (const text of texts) {
        const host = Buffer.alloc(text.length + 80, pad % 2 === 0 ? 0x22 : 0x5c);
        host.write(text, 7, 'latin1');
        assertSameRow(host.subarray(7, 7 + text.length), `pad ${pad}`);
        rows++;
      }
    }
  }
  assert.ok(rows > 1000);
});

test('rows of MAX_WASM_INPUT_BYTES - 1, exactly, and + 1, then a small row (the memory grew)', () => {
  for (const size of [fastWasm.MAX_WASM_INPUT_BYTES - 1, fastWasm.MAX_WASM_INPUT_BYTES, fastWasm.MAX_WASM_INPUT_BYTES + 1]) {
    const row = Buffer.alloc(size, 0x61);
    row.write('{"t":"\\n","s":"', 0, 'latin1');
    for (let k = 200; k < size - 200; k += 4099) row.write('\\"\\\\', k, 'latin1');
    row.write('","uuid":"\\r"}', size - 14, 'latin1');
    assert.doesNotMatch(assertSameRow(row, `size ${size}`), /^throws/);
  }
  assertSameRow(Buffer.from('{"s":"a\\"b","uuid":"\\\\"}'));
});

test('property: rows of random String values (any bytes, raw escapes), keys in any order and case, the same bytes or the same error', () => {
  const keys = fc.constantFrom('s', 't', 'n', 'uuid', 'S', 'UUID', 'zz', 'event', 'a', 'team_id');
  const value = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 90 }).map((s) => JSON.stringify(s)),
    fc.tuple(fc.string({ maxLength: 40 }), fc.array(fc.tuple(fc.nat(), fc.constantFrom('\\', '"', '\\u', '\\"', '\x80', '\\\\')), { maxLength: 2 })).map(([s, edits]) => {
      let raw = JSON.stringify(s);
      for (const [at, p] of edits) {
        const i = 1 + (at % Math.max(1, raw.length - 1));
        raw = raw.slice(0, i) + p + raw.slice(i);
      }
      return raw;
    }),
    fc.constantFrom('null', '1', '["x","\\"y"]', '{"q":"\\\\"}'),
  );
  const row = fc.array(fc.tuple(keys, value, fc.constantFrom('', ' ', '\n')), { maxLength: 6 }).map((fields) => `{${fields.map(([k, v, ws]) => `${ws}"${k}"${ws}:${ws}${v}`).join(',')}}`);
  fc.assert(
    fc.property(row, fc.nat(30), (text, offset) => {
      const bytes = Buffer.from(text, 'latin1');
      const host = Buffer.alloc(offset + bytes.length + 64, 0x22);
      bytes.copy(host, offset);
      assertSameRow(host.subarray(offset, offset + bytes.length));
    }),
    { numRuns: 1_500, seed: 2026120706 },
  );
});

test('the encoder on its own refuses a row whose last value takes the closing brace (no top-level brace left): as ClickHouse would', () => {
  /* fixed this session (a value that ends past the row's closing brace refuses the row); was todo: finding 4 (4c9a702, not WebAssembly): #scan's value scan became json-scan's endOfValue, which is not bounded by the row's closing brace; `{"z":{"k":"v"}` and `{"m":{"k":"v"}` are written as rows (they were refused before); only the decoder's own scan keeps them out */
  const e = fastEncoder.typedEncoderFor([col('s', 'String'), col('m', 'Map(String, String)')]);
  if ('uncovered' in e) throw new Error(e.uncovered);
  for (const text of ['{"z":{"k":"v"}', '{"m":{"k":"v"}', '{"z":[1,2}']) {
    assert.throws(
      () => e.write(new ByteChunks(), record, Buffer.from(text), undefined),
      (error: unknown) => error instanceof EncodeError && error.code === 'INSERTER_ENCODE_REJECTED',
      text,
    );
  }
});

test('a small hand-made soak: 400 rows alternating sizes (the memory grows), views, decode scans in between', () => {
  const rnd = prng(77);
  const key = Buffer.from('team_id');
  for (let r = 0; r < 400; r++) {
    const big = rnd(10) === 0;
    const body = 'w'.repeat(big ? 70_000 + rnd(200_000) : rnd(100));
    const esc = ['\\"', '\\\\', '\\n', '\\u0041', '\x80'][rnd(5)] as string;
    const text = `{"s":"${body}${esc}","uuid":"${esc}${body.slice(0, rnd(70))}","team_id":${r}}`;
    const host = Buffer.alloc(text.length + 100, 0x22);
    const offset = rnd(50);
    host.write(text, offset, 'latin1');
    const row = host.subarray(offset, offset + text.length);
    if (rnd(2) === 0) fastWasm.scanTopLevelFast(row, key, { start: 0, end: 0 });
    assertSameRow(row, `row ${r}`);
  }
});
