// Review 2026-12-07d helpers: the JavaScript reference forms and the WebAssembly forms of
// src/decode/json-wasm.ts, each put in the same terms so a test can compare them as strings.
import assert from 'node:assert/strict';
import { JsonScanError, scanTopLevel, type ValueRange } from '../../../src/decode/json-scan.ts';
import { readStringFast, scanTopLevelFast, wasmScanVerdict } from '../../../src/decode/json-wasm.ts';
import { readStringInto, ValueError } from '../../../src/encode/rowbinary/json-text.ts';
import { RowBuffer } from '../../../src/encode/rowbinary/row-buffer.ts';

/** A scan's answer: the key's range, 'absent', or 'error' (a JsonScanError). */
function scanAnswer(scan: typeof scanTopLevel, json: Buffer, key: Buffer | undefined): string {
  const out: ValueRange = { start: -7, end: -7 };
  try {
    return scan(json, key, out) ? `${out.start}-${out.end}` : 'absent';
  } catch (error) {
    assert.ok(error instanceof JsonScanError, String(error));
    return 'error';
  }
}

/** scanTopLevel's answer. */
export function jsScan(json: Buffer, key: Buffer | undefined): string {
  return scanAnswer(scanTopLevel, json, key);
}

/** scanTopLevelFast's answer, in the same terms (its errors are the JavaScript scan's). */
export function fastScan(json: Buffer, key: Buffer | undefined): string {
  return scanAnswer(scanTopLevelFast, json, key);
}

/** The module's own verdict, 'error' for "not accepted" (the JavaScript scan then decides), 'not run' when it does not run. */
export function moduleScan(json: Buffer, key: Buffer | undefined): string {
  const out: ValueRange = { start: -7, end: -7 };
  const verdict = wasmScanVerdict(json, key, out);
  if (verdict === undefined) return 'not run';
  return verdict === 1 ? `${out.start}-${out.end}` : verdict === 0 ? 'absent' : 'error';
}

/**
 * Asserts the module agrees with scanTopLevel: the same range or absence wherever it accepts, and
 * scanTopLevelFast the same answer. Returns whether the module gave its own answer.
 */
export function assertScanAgrees(json: Buffer, key: Buffer | undefined, label = ''): boolean {
  const expected = jsScan(json, key);
  const own = moduleScan(json, key);
  const text = `${label} ${JSON.stringify(json.toString('latin1').slice(0, 200))}`;
  if (own !== 'error' && own !== 'not run') assert.equal(own, expected, text);
  assert.equal(fastScan(json, key), expected, text);
  return own !== 'error' && own !== 'not run';
}

/** readStringInto's result after a 0x2a already in the scratch: `next:hex`, or 'error'. */
export function jsString(row: Buffer, start: number, end: number): string {
  const out = new RowBuffer();
  out.u8(0x2a);
  try {
    const next = readStringInto(row, start, end, out);
    return `${next}:${out.buf.subarray(0, out.pos).toString('hex')}`;
  } catch (error) {
    assert.ok(error instanceof ValueError, String(error));
    return 'error';
  }
}

/** readStringFast's, in the same terms, or 'left' (readStringInto decides). */
export function fastString(row: Buffer, start: number, end: number): string {
  const out = new RowBuffer();
  out.u8(0x2a);
  const next = readStringFast(row, start, end, out);
  return next < 0 ? 'left' : `${next}:${out.buf.subarray(0, out.pos).toString('hex')}`;
}

/** Asserts readStringFast gives readStringInto's bytes and end, or leaves the string to it; returns whether it read it. */
export function assertStringAgrees(row: Buffer, start: number, end: number, label = ''): boolean {
  const expected = jsString(row, start, end);
  const got = fastString(row, start, end);
  const text = `${label} start ${start} end ${end}: ${JSON.stringify(row.toString('latin1', start, Math.min(row.length, start + 120)))}`;
  if (got !== 'left') assert.equal(got, expected, text);
  return got !== 'left';
}

/** A small deterministic PRNG (mulberry32): an integer in [0, n); hand-made loops stay reproducible. */
export function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}
