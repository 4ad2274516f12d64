import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { JsonScanError, scanTopLevel, type ValueRange } from '../../../src/decode/json-scan.ts';
import { loadRow, MAX_WASM_INPUT_BYTES, readStringFast, scanTopLevelFast, wasmJsonLoaded, wasmScanVerdict } from '../../../src/decode/json-wasm.ts';
import { readStringInto, ValueError } from '../../../src/encode/rowbinary/json-text.ts';
import { RowBuffer } from '../../../src/encode/rowbinary/row-buffer.ts';
import { generate } from '../../../dev/posthog/generator.ts';
import { tempDirSync } from '../../helpers/temp-dir.ts';

const KEY = Buffer.from('team_id');
const root = new URL('../../../', import.meta.url).pathname;

/** What the JavaScript scan says: the key's range, 'absent', or 'error'. */
function jsVerdict(json: Buffer, key: Buffer | undefined): string {
  const out: ValueRange = { start: 0, end: 0 };
  try {
    return scanTopLevel(json, key, out) ? `${out.start}-${out.end}` : 'absent';
  } catch (error) {
    assert.ok(error instanceof JsonScanError, String(error));
    return 'error';
  }
}

/** What the WebAssembly module says, in the same terms. */
function wasmVerdict(json: Buffer, key: Buffer | undefined): string {
  const out: ValueRange = { start: 0, end: 0 };
  const verdict = wasmScanVerdict(json, key, out);
  assert.notEqual(verdict, undefined, 'the module runs on inputs this size');
  return verdict === 1 ? `${out.start}-${out.end}` : verdict === 0 ? 'absent' : 'error';
}

function agree(json: Buffer, key: Buffer | undefined = KEY): void {
  assert.equal(wasmVerdict(json, key), jsVerdict(json, key), json.toString('latin1').slice(0, 300));
}

test('the module loads here (WebAssembly SIMD), so the tests below hold it against the JavaScript scan', () => {
  assert.equal(wasmJsonLoaded(), true);
});

test('the committed json.wasm is what its AssemblyScript source builds', () => {
  const dir = tempDirSync('inserter-wasm-');
  try {
    execFileSync('bash', [join(root, 'scripts/build-wasm.sh'), dir], { stdio: 'pipe' });
    assert.ok(readFileSync(join(dir, 'json.wasm')).equals(readFileSync(join(root, 'src/decode/wasm/json.wasm'))), 'run bash scripts/build-wasm.sh and commit the result');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('same verdicts and ranges as the JavaScript scan on generated PostHog events, whole and cut short', () => {
  for (const m of generate('clickhouse_events_json', { seed: 7, count: 300, teams: 50 })) {
    const value = m.value;
    agree(value);
    agree(value, undefined);
    agree(value, Buffer.from('properties'));
    agree(value, Buffer.from('no_such_key'));
    // Every cut that still ends in a brace: strings, escapes and values broken at every place.
    for (let end = 2; end < value.length; end += 7) {
      const cut = Buffer.concat([value.subarray(0, end), Buffer.from('}')]);
      agree(cut);
    }
  }
});

test('the cases the JavaScript scan is specified by', () => {
  const cases = [
    '{"team_id":2}',
    '{ "a" : {"team_id":9,"b":[1,{"team_id":8}]}, "s":"\\"team_id\\":7", "team_id" : -42 }',
    '{"properties":"{\\"team_id\\":5}","x":[{"team_id":3}],"y":null}',
    '{"a":"back\\\\","team_id":4}',
    '{}',
    '{ }',
    '{"team_id":1,"team_id":2}',
    '{"a":}',
    '{"a" 1}',
    '{"a":1 "b":2}',
    '{"a":"unterminated}',
    '{"a":[1,2}',
    '{a:1}',
    '{"a":1}{"b":2}',
    '{"a":{"b":1}}}',
    '{"team_id":1},',
    '{}{}',
    '{"a":"\\"}',
    '{"a":"\\\\"}',
    '{"a":"x\\',
    '{"a":1,}',
    '{,}',
    '{"a"}',
  ];
  for (const text of cases) agree(Buffer.from(text));
});

/** Backslash runs of every length, crossing the module's 16- and 64-byte steps at every offset. */
test('backslash runs of every length at every offset of its 16- and 64-byte steps', () => {
  for (let pad = 0; pad < 70; pad++) {
    for (let run = 0; run < 70; run++) {
      const body = `${'x'.repeat(pad)}${'\\'.repeat(run)}"`;
      agree(Buffer.from(`{"a":"${body},"team_id":${pad}}`));
      agree(Buffer.from(`{"a":"${body}","team_id":${run}}`));
      agree(Buffer.from(`{"${body}":1,"team_id":3}`));
    }
  }
});

const structural = fc.constantFrom('"', '\\', '{', '}', '[', ']', ',', ':', ' ', '\n', 'a', '1', 'team_id', '"team_id":', '\\\\', '\\"');

test('property: the same verdicts on generated JSON and on JSON with structural bytes changed', () => {
  const jsonValue = fc.json({ depthSize: 'small', maxDepth: 3 });
  const object = fc.tuple(fc.dictionary(fc.oneof(fc.string({ maxLength: 80 }), fc.constant('team_id')), jsonValue, { maxKeys: 12 }), fc.integer()).map(([fields, team]) => {
    const text = JSON.stringify({ ...fields, ...(team % 3 === 0 ? { team_id: team } : {}) });
    return text;
  });
  fc.assert(
    fc.property(object, fc.array(fc.tuple(fc.nat(), structural, fc.boolean()), { maxLength: 4 }), (text, edits) => {
      agree(Buffer.from(text));
      let mutated = text;
      for (const [at, piece, insert] of edits) {
        const i = 1 + (at % Math.max(1, mutated.length - 2));
        mutated = mutated.slice(0, i) + piece + mutated.slice(insert ? i : i + 1);
      }
      if (mutated.startsWith('{')) agree(Buffer.from(mutated));
    }),
    { numRuns: 3_000, seed: 20261207 },
  );
});

test("the reason for a refusal is the JavaScript scan's, and JSON larger than the module takes goes to it whole", () => {
  const out: ValueRange = { start: 0, end: 0 };
  assert.throws(() => scanTopLevelFast(Buffer.from('{"a":1}{"b":2}'), KEY, out), /1 bytes after the object's end|bytes after the object's end/);
  assert.throws(() => scanTopLevelFast(Buffer.from('{"a" 1}'), KEY, out), /expected ':' at byte 5/);
  const big = Buffer.from(`{"s":"${'\\"x'.repeat(MAX_WASM_INPUT_BYTES / 3)}","team_id":5}`);
  assert.equal(wasmScanVerdict(big, KEY, out), undefined);
  assert.equal(scanTopLevelFast(big, KEY, out), true);
  assert.equal(big.toString('latin1', out.start, out.end), '5');
  // After a large input grew its memory, small ones and another key still scan right.
  const nearMax = Buffer.from(`{"s":"${'y'.repeat(MAX_WASM_INPUT_BYTES - 40)}","team_id":6}`);
  assert.equal(scanTopLevelFast(nearMax, KEY, out), true);
  assert.equal(nearMax.toString('latin1', out.start, out.end), '6');
  const other = Buffer.from('distinct_id');
  assert.equal(scanTopLevelFast(Buffer.from('{"team_id":1,"distinct_id":"d"}'), other, out), true);
  assert.deepEqual([out.start, out.end], [27, 30]);
  assert.equal(scanTopLevelFast(Buffer.from('{"team_id":12}'), KEY, out), true);
  assert.deepEqual([out.start, out.end], [11, 13]);
});

/** readStringInto's result for the string at `start`: the bytes and the index after it, or its error. */
function jsString(row: Buffer, start: number, end: number): string {
  const out = new RowBuffer();
  out.u8(0x2a); // output appended after what the scratch holds
  try {
    const next = readStringInto(row, start, end, out);
    return `${next}:${out.buf.subarray(0, out.pos).toString('hex')}`;
  } catch (error) {
    assert.ok(error instanceof ValueError, String(error));
    return 'error';
  }
}

/** The module's: the same terms, or 'left' where it leaves the string to readStringInto. */
function wasmString(row: Buffer, start: number, end: number): string {
  const out = new RowBuffer();
  out.u8(0x2a);
  const next = readStringFast(row, start, end, out);
  return next < 0 ? 'left' : `${next}:${out.buf.subarray(0, out.pos).toString('hex')}`;
}

/**
 * Every string start in `row` (every quote, inside strings too): the module agrees or leaves it to
 * readStringInto; returns how many it left that readStringInto reads (its \\u path).
 */
function agreeOnStrings(row: Buffer, end = row.length - 1): number {
  assert.equal(loadRow(row), true);
  let left = 0;
  for (let start = row.indexOf(0x22); start >= 0 && start < end; start = row.indexOf(0x22, start + 1)) {
    const expected = jsString(row, start, end);
    const got = wasmString(row, start, end);
    if (got === 'left') {
      if (expected !== 'error') left++;
      // It leaves only what readStringInto refuses or reads through its \u path.
      assert.ok(expected === 'error' || row.subarray(start, end).includes('\\u'), `${start}: ${row.toString('latin1', start, start + 60)}`);
    } else assert.equal(got, expected, `${start}: ${row.toString('latin1', start, start + 60)}`);
  }
  return left;
}

test('strings: the same bytes and end as readStringInto at every quote of generated PostHog events', () => {
  let strings = 0;
  for (const m of generate('clickhouse_events_json', { seed: 11, count: 200, teams: 50 })) {
    strings += m.value.length;
    assert.equal(agreeOnStrings(m.value), 0, 'no string of a generated event (none has a \\u escape) is left to JavaScript');
    // Cut short: strings without their closing quote are left to readStringInto's error.
    agreeOnStrings(m.value, Math.floor(m.value.length / 2));
  }
  assert.ok(strings > 0);
});

test('strings: escapes of every kind and backslash runs at every offset of the 16-byte step', () => {
  const escapes = ['\\"', '\\\\', '\\/', '\\b', '\\f', '\\n', '\\r', '\\t', '\\x', '\\u00e9', '\\ud83d\\ude00', '\\ud83d', '\\uZZZZ', '\\'];
  for (let pad = 0; pad < 40; pad++) {
    for (const escape of escapes) agreeOnStrings(Buffer.from(`{"a":"${'x'.repeat(pad)}${escape}${'y'.repeat(pad % 17)}","b":1}`));
    for (let run = 1; run < 20; run++) agreeOnStrings(Buffer.from(`{"a":"${'x'.repeat(pad)}${'\\'.repeat(run)}"z","b":2}`));
  }
});

test('property: strings of any content, as JSON.stringify writes them and with raw escapes', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), fc.array(fc.tuple(fc.nat(), fc.constantFrom('\\', '"', '\\u', '\\"', 'u12')), { maxLength: 3 }), (text, edits) => {
      const quoted = JSON.stringify(text);
      agreeOnStrings(Buffer.from(`{"s":${quoted}}`));
      let raw = quoted;
      for (const [at, piece] of edits) {
        const i = 1 + (at % Math.max(1, raw.length - 1));
        raw = raw.slice(0, i) + piece + raw.slice(i);
      }
      agreeOnStrings(Buffer.from(`{"s":${raw}}`));
    }),
    { numRuns: 2_000, seed: 20261207 },
  );
});

test('strings: only the row loaded last is read; a scan in between unloads it', () => {
  const row = Buffer.from('{"a":"x\\ty"}');
  const other = Buffer.from('{"a":"x\\ty"}');
  assert.equal(loadRow(row), true);
  assert.notEqual(wasmString(row, 5, row.length - 1), 'left');
  assert.equal(wasmString(other, 5, other.length - 1), 'left', 'not the loaded row');
  scanTopLevelFast(Buffer.from('{"team_id":1}'), KEY, { start: 0, end: 0 });
  assert.equal(wasmString(row, 5, row.length - 1), 'left', 'the scan replaced the copy');
  assert.equal(loadRow(Buffer.alloc(MAX_WASM_INPUT_BYTES + 1, 0x20)), false);
  assert.equal(wasmString(row, 5, row.length - 1), 'left');
});
