// Review 2026-12-07d of src/decode/json-wasm.ts and src/decode/wasm/json.as.ts (commits 5a39913, 4c9a702): the
// WebAssembly scan and string reader held against scanTopLevel and readStringInto on the inputs most likely to
// break them (views into larger buffers, stale bytes left in the module's memory by earlier inputs, block
// boundaries, bytes >= 0x80, sizes at the limits), and the loader's caches (the key and the loaded row are
// tracked by identity). Tests marked todo demonstrate a finding: they fail while it stands.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { ValueRange } from '../../../src/decode/json-scan.ts';
import { loadRow, MAX_WASM_INPUT_BYTES, readStringFast, scanTopLevelFast, wasmJsonLoaded, wasmScanVerdict } from '../../../src/decode/json-wasm.ts';
import { RowBuffer } from '../../../src/encode/rowbinary/row-buffer.ts';
import { assertScanAgrees, assertStringAgrees, fastScan, fastString, jsScan, jsString, moduleScan, prng } from './reference.ts';

const KEY = Buffer.from('team_id');

test('the module runs here (the comparisons below are against WebAssembly, not the JavaScript fallback)', () => {
  assert.equal(wasmJsonLoaded(), true);
  assert.equal(moduleScan(Buffer.from('{"team_id":1}'), KEY), '11-12');
});

test('scan: inputs that are views into larger buffers (pool slices, quotes and backslashes right after the view)', () => {
  const texts = ['{"team_id":3}', '{"a":"x","team_id":4}', '{"team_id":"12', '{"s":"\\', '{"s":"abc', '{"team_id":[1,{"b":"', '{}', '{ '];
  for (const text of texts) {
    for (const filler of [0x22, 0x5c, 0x7d, 0x20, 0x2c]) {
      for (const offset of [0, 1, 7, 15, 16, 63, 64, 100]) {
        const host = Buffer.alloc(offset + text.length + 80, filler);
        host.write(text, offset, 'latin1');
        const view = host.subarray(offset, offset + text.length);
        assertScanAgrees(view, KEY, `offset ${offset} filler ${filler}`);
        assertScanAgrees(view, undefined);
      }
    }
    // A Buffer.from pool slice: its neighbours in the pool are other strings' bytes.
    const pooled = Buffer.from(text, 'latin1');
    assert.ok(pooled.buffer.byteLength > pooled.length, 'a slice of the pool');
    assertScanAgrees(pooled, KEY, 'pooled');
  }
});

test('scan: stale bytes past the input (left by a longer input) never complete a string or a value', () => {
  // Each pair: a long input that fills the memory after a short one's end with quotes, braces or
  // backslashes, then the short one whose string or value runs to its end.
  const shorts = ['{"a":"xyz', '{"a":"x\\', '{"a":"x\\\\', '{"a":[1,"', '{"a":1', '{"team_id":"', '{"', '{"a":{"b":"c"'];
  for (const filler of ['"', '"}', '\\"', '}', '"}}"}', ' }']) {
    for (const short of shorts) {
      const long = Buffer.from(`${short}${filler.repeat(200)}`, 'latin1');
      wasmScanVerdict(long, KEY, { start: 0, end: 0 });
      const s = Buffer.from(short, 'latin1');
      assertScanAgrees(s, KEY, `after ${JSON.stringify(filler)}`);
      // The same short input closed by one more byte: stale bytes must not shift where it ends.
      assertScanAgrees(Buffer.from(`${short}}`, 'latin1'), KEY);
      assertScanAgrees(Buffer.from(`${short}"}`, 'latin1'), KEY);
    }
  }
});

test('scan: closing quotes at every offset of the 16- and 64-byte steps, after backslash runs crossing 1, 2 and 3 blocks', () => {
  const runs = [0, 1, 2, 15, 16, 17, 63, 64, 65, 128, 129];
  for (let pad = 0; pad < 140; pad += 1) {
    for (const run of runs) {
      if ((pad + run) % 3 !== 0 && run > 2) continue; // a third of the long runs: the suite stays fast
      const body = `${'y'.repeat(pad)}${'\\'.repeat(run)}`;
      assertScanAgrees(Buffer.from(`{"a":"${body}","team_id":1}`), KEY);
      assertScanAgrees(Buffer.from(`{"a":"${body}\\"","team_id":2}`), KEY);
      assertScanAgrees(Buffer.from(`{"${body}":1,"team_id":[{"k":"${body}"}]}`), KEY);
      assertScanAgrees(Buffer.from(`{"team_id":"${body}"}`), KEY);
    }
  }
});

test('scan: bytes >= 0x80, 0xFF and NUL in keys, values and the key looked for', () => {
  const high = Buffer.from([0x80, 0xff, 0x00, 0xa2, 0xdc, 0xfe]);
  const keys = [high, Buffer.from([0xff]), Buffer.from([0x00]), Buffer.from([0xa2, 0x22]), KEY];
  for (const key of keys) {
    for (let pad = 0; pad < 70; pad += 3) {
      const filler = Buffer.alloc(pad, 0xa2);
      const json = Buffer.concat([Buffer.from('{"'), filler, Buffer.from('":"'), high, filler, Buffer.from('","'), key, Buffer.from('":'), Buffer.from('"\xff\x00"', 'latin1'), Buffer.from('}')]);
      assertScanAgrees(json, key, `key ${key.toString('hex')}`);
      assertScanAgrees(json, high);
    }
  }
});

test('scan: keys of 0, 1, 255, 256 and 257 bytes (the key area holds 256), found, absent and as a prefix', () => {
  for (const length of [0, 1, 255, 256, 257]) {
    const key = Buffer.alloc(length, 0x6b);
    const found = Buffer.from(`{"x":1,"${key.toString('latin1')}":[${length}],"y":2}`);
    const prefix = Buffer.from(`{"${key.toString('latin1')}k":1}`);
    const shorter = Buffer.from(`{"${key.toString('latin1').slice(1)}":1}`);
    for (const json of [found, prefix, shorter, Buffer.from('{}')]) {
      assertScanAgrees(json, key, `key of ${length}`);
      // Another key object with the same bytes, and the first again: the cache must not matter.
      assertScanAgrees(json, Buffer.from(key), `copy of key of ${length}`);
      assertScanAgrees(json, KEY);
      assertScanAgrees(json, key);
    }
    assert.equal(moduleScan(found, key), length > 256 ? 'not run' : jsScan(found, key));
  }
});

test('scan: empty objects, whitespace everywhere, trailing bytes, and very deep nesting', () => {
  const cases = ['{}', '{ }', '{\n\t\r }', '{} ', '{}}', '{ } }', '{}\n', '{"team_id" \n:\t 7 \r}', '{ "a" : [ ] , "team_id" : { } }', '{"team_id":1 ,}', '{ , }', '{"":""}', '{"team_id":1}\u0000'];
  for (const text of cases) {
    assertScanAgrees(Buffer.from(text), KEY, text);
    assertScanAgrees(Buffer.from(text), undefined, text);
  }
  for (const depth of [1, 1000, 200_000]) {
    const deep = `{"a":${'['.repeat(depth)}"x"${']'.repeat(depth)},"team_id":9}`;
    assertScanAgrees(Buffer.from(deep), KEY, `depth ${depth}`);
    assertScanAgrees(Buffer.from(deep.slice(0, -3) + '}'), KEY, `depth ${depth}, unbalanced`);
    // Mismatched brackets are counted, not checked: both forms take the same liberty.
    assertScanAgrees(Buffer.from(`{"a":${'['.repeat(depth)}${'}'.repeat(depth)},"team_id":9}`), KEY, `depth ${depth}, mismatched`);
  }
});

test('scan: inputs of MAX_WASM_INPUT_BYTES - 1, exactly, and + 1 (the key at the start, the end, and absent)', () => {
  for (const size of [MAX_WASM_INPUT_BYTES - 1, MAX_WASM_INPUT_BYTES, MAX_WASM_INPUT_BYTES + 1]) {
    const head = '{"team_id":5,"s":"';
    const tail = '\\\\","z":"\\""}';
    const json = Buffer.alloc(size, 0x61);
    json.write(head, 0, 'latin1');
    json.write(tail, size - tail.length, 'latin1');
    assertScanAgrees(json, KEY, `size ${size}`);
    assert.equal(moduleScan(json, KEY), size > MAX_WASM_INPUT_BYTES ? 'not run' : '11-12');
    const last = Buffer.alloc(size, 0x20);
    last.write('{"s":"', 0, 'latin1');
    last.write('x","team_id":77}', size - 16, 'latin1');
    assertScanAgrees(last, KEY, `size ${size}, key last`);
    last[size - 1] = 0x20; // no closing brace
    assertScanAgrees(last, KEY, `size ${size}, unclosed`);
  }
  // After the memory grew, small inputs still scan right (a view must not be stale).
  assertScanAgrees(Buffer.from('{"team_id":12}'), KEY);
});

test('property: scan agrees on generated objects, with structural bytes and high bytes spliced in, as views', () => {
  const value = fc.json({ depthSize: 'small', maxDepth: 3 });
  const object = fc.dictionary(fc.oneof(fc.string({ unit: 'binary', maxLength: 70 }), fc.constant('team_id')), value, { maxKeys: 8 }).map((o) => JSON.stringify(o));
  const piece = fc.constantFrom('"', '\\', '\\\\', '\\"', '{', '}', '[', ']', ',', ':', ' ', '\x80', '\xff', '\x00', '"team_id":1,');
  let own = 0;
  fc.assert(
    fc.property(object, fc.array(fc.tuple(fc.nat(), piece), { maxLength: 3 }), fc.nat(80), fc.constantFrom(0x22, 0x5c, 0x7d), (text, edits, offset, filler) => {
      let mutated = text;
      for (const [at, p] of edits) {
        const i = 1 + (at % Math.max(1, mutated.length - 1));
        mutated = mutated.slice(0, i) + p + mutated.slice(i);
      }
      for (const t of [text, mutated]) {
        const bytes = Buffer.from(t, 'utf8');
        const host = Buffer.alloc(offset + bytes.length + 64, filler);
        bytes.copy(host, offset);
        if (assertScanAgrees(host.subarray(offset, offset + bytes.length), KEY)) own++;
      }
    }),
    { numRuns: 1_500, seed: 2026120704 },
  );
  assert.ok(own > 1_500, `the module answered ${own} itself`);
});

test('key cache: a different key object with the same bytes, after the memory grew, and keys alternating', () => {
  const json = Buffer.from('{"distinct_id":"d","team_id":3}');
  const a = Buffer.from('team_id');
  const b = Buffer.from('distinct_id');
  assertScanAgrees(json, a);
  loadRow(Buffer.alloc(3 * 65_536, 0x20)); // grows the memory
  assertScanAgrees(json, Buffer.from('team_id'));
  assertScanAgrees(json, a);
  for (let k = 0; k < 5; k++) {
    assertScanAgrees(json, k % 2 === 0 ? a : b);
    assertScanAgrees(json, undefined);
    wasmScanVerdict(Buffer.alloc(MAX_WASM_INPUT_BYTES + 1, 0x20), b, { start: 0, end: 0 }); // not run: must not disturb the cache
    assertScanAgrees(json, a);
  }
});

test('key cache: the same key Buffer changed in place is looked for with its new bytes', () => {
  /* fixed this session (the key area is compared with the key's bytes); was todo: finding 1: the key is cached by object identity; a key Buffer mutated in place is still looked for with its old bytes */
  const json = Buffer.from('{"team_id":1,"team_ix":2}');
  const key = Buffer.from('team_id');
  assert.equal(fastScan(json, key), '11-12');
  key[6] = 0x78; // now "team_ix"
  assert.equal(jsScan(json, key), '23-24');
  assert.equal(fastScan(json, key), '23-24', 'scanTopLevelFast compared the stale copy of the key ("team_id")');
});

test('strings: views into larger buffers, end at the closing quote, before it, and far before it', () => {
  let read = 0;
  const bodies = ['', 'x', 'a\\"b', '\\\\', 'y'.repeat(15), 'y'.repeat(16), 'y'.repeat(63) + '\\n', '\\t'.repeat(20), '\xff\x80\x00', '\\\xff', 'é'];
  for (const body of bodies) {
    const text = `{"s":"${body}","t":1}`;
    for (const filler of [0x22, 0x5c]) {
      for (const offset of [0, 3, 16, 64]) {
        const host = Buffer.alloc(offset + text.length + 80, filler);
        host.write(text, offset, 'latin1');
        const row = host.subarray(offset, offset + text.length);
        assert.equal(loadRow(row), true);
        const close = row.indexOf('","t"', 5, 'latin1');
        for (const end of [row.length - 1, row.length, close + 2, close + 1, close, close - 1, 6, 5]) if (assertStringAgrees(row, 5, end, `offset ${offset}`)) read++;
      }
    }
  }
  assert.ok(read >= 3 * bodies.length * 8, `the module read ${read} of them itself`);
});

test('strings: every start and end of rows full of escapes and high bytes, after a longer row left quotes behind it', () => {
  const rnd = prng(20261207);
  const alphabet = ['"', '\\', '\\"', '\\\\', '\\n', '\\u0041', 'a', '\x80', '\xff', '\x00', '}', ' '];
  for (let r = 0; r < 120; r++) {
    const long = Buffer.alloc(400 + rnd(200), rnd(2) === 0 ? 0x22 : 0x5c);
    long.write('{"s":"', 0, 'latin1');
    assert.equal(loadRow(long), true);
    let body = '';
    const parts = rnd(12);
    for (let k = 0; k < parts; k++) body += rnd(3) === 0 ? 'y'.repeat(rnd(70)) : (alphabet[rnd(alphabet.length)] as string);
    const row = Buffer.from(`{"s":"${body}"}`, 'latin1');
    assert.equal(loadRow(row), true);
    for (let start = row.indexOf(0x22); start >= 0; start = row.indexOf(0x22, start + 1)) {
      for (const end of [row.length - 1, row.length, start + 1 + rnd(Math.max(1, row.length - start))]) assertStringAgrees(row, start, Math.min(end, row.length), `row ${r}`);
    }
  }
});

test('strings: rows of MAX_WASM_INPUT_BYTES - 1, exactly, and + 1 (their last string read at the end)', () => {
  for (const size of [MAX_WASM_INPUT_BYTES - 1, MAX_WASM_INPUT_BYTES, MAX_WASM_INPUT_BYTES + 1]) {
    const row = Buffer.alloc(size, 0x7a);
    row.write('{"s":"', 0, 'latin1');
    for (let k = 100; k < size - 100; k += 997) row.write('\\"\\\\', k, 'latin1');
    row.write('\\t"}', size - 4, 'latin1');
    assert.equal(loadRow(row), size <= MAX_WASM_INPUT_BYTES);
    const expected = jsString(row, 5, size - 1);
    assert.notEqual(expected, 'error');
    const got = fastString(row, 5, size - 1);
    assert.equal(got, size <= MAX_WASM_INPUT_BYTES ? expected : 'left', `size ${size}`);
  }
  // After the memory grew to its largest, small rows still read right.
  const small = Buffer.from('{"s":"a\\tb"}');
  assert.equal(loadRow(small), true);
  assert.equal(fastString(small, 5, small.length - 1), jsString(small, 5, small.length - 1));
});

test('strings: a decode scan, a refused scan and a larger row in between decide which row readStringFast reads', () => {
  const row = Buffer.from('{"s":"a\\nb"}');
  const out = new RowBuffer();
  assert.equal(loadRow(row), true);
  wasmScanVerdict(Buffer.alloc(MAX_WASM_INPUT_BYTES + 1), KEY, { start: 0, end: 0 }); // not run: the copy stays
  assert.notEqual(fastString(row, 5, row.length - 1), 'left');
  scanTopLevelFast(Buffer.from('{"s":"zzzzzzzzz"}'), KEY, { start: 0, end: 0 } satisfies ValueRange);
  assert.equal(readStringFast(row, 5, row.length - 1, out), -1, 'a scan replaced the copy');
  assert.equal(out.pos, 0, 'nothing written when left');
  assert.equal(loadRow(row), true);
  assert.equal(loadRow(Buffer.from('{"s":"zzzzzzzzz"}')), true);
  assert.equal(readStringFast(row, 5, row.length - 1, out), -1, 'another row replaced the copy');
});

test(
  'strings: a row changed in place after loadRow is read with its new bytes, or left to readStringInto',
  {
    todo: 'finding 2, accepted: the loaded row is tracked by object identity; a row Buffer mutated after loadRow is read from the stale copy. loadRow now says the row must not change until its strings are read (the encoder loads and reads in one synchronous pass); checking the bytes per string would cost a native compare each',
  },
  () => {
    const row = Buffer.from('{"s":"hello"}');
    assert.equal(loadRow(row), true);
    row.write('HELLO', 6, 'latin1');
    const got = fastString(row, 5, row.length - 1);
    assert.ok(got === 'left' || got === jsString(row, 5, row.length - 1), `readStringFast gave ${got} (the bytes loaded before the change)`);
  },
);

test('strings: an end past the row never takes bytes from outside it', () => {
  /* fixed this session (an end past the row is left to readStringInto); was todo: finding 3: readStringFast reads the module's memory up to `end` without bounding it by the row's length, so bytes left by an earlier row complete the string */
  assert.equal(loadRow(Buffer.from('{"s":"xy-earlier-row"}')), true);
  const row = Buffer.from('{"s":"x');
  assert.equal(loadRow(row), true);
  assert.equal(jsString(row, 5, row.length + 20), 'error', 'readStringInto: no closing quote inside the row');
  const got = fastString(row, 5, row.length + 20);
  assert.ok(got === 'left', `readStringFast gave ${got}: bytes of the earlier row`);
});

test('property: strings of any bytes, as JSON.stringify writes them and with raw escapes, in views, with any end', () => {
  let read = 0;
  fc.assert(
    fc.property(
      fc.string({ unit: 'binary', maxLength: 150 }),
      fc.array(fc.tuple(fc.nat(), fc.constantFrom('\\', '"', '\\u', '\\"', '\x80', '\xff')), { maxLength: 3 }),
      fc.nat(40),
      fc.nat(),
      (text, edits, offset, cut) => {
        let raw = JSON.stringify(text);
        for (const [at, p] of edits) {
          const i = 1 + (at % Math.max(1, raw.length - 1));
          raw = raw.slice(0, i) + p + raw.slice(i);
        }
        const bytes = Buffer.from(`{"s":${raw}}`, 'latin1');
        const host = Buffer.alloc(offset + bytes.length + 64, 0x22);
        bytes.copy(host, offset);
        const row = host.subarray(offset, offset + bytes.length);
        assert.equal(loadRow(row), true);
        if (assertStringAgrees(row, 5, row.length - 1)) read++;
        assertStringAgrees(row, 5, 6 + (cut % (row.length - 5)));
      },
    ),
    { numRuns: 1_500, seed: 2026120705 },
  );
  assert.ok(read > 500, `the module read ${read} strings itself`);
});
