// Owns the WebAssembly forms of two JSON-text byte loops (wasm/json.as.ts, built into wasm/json.wasm):
// the top-level scan for the team id (json-scan.ts's scanTopLevel) and the unescaping of a String
// column's value (the typed encoder's readStringInto). Both skip strings 16–64 bytes a step with SIMD
// (docs/benchmarks.md, session 12). They say only what the JavaScript forms accept; for anything else,
// and wherever the module cannot run (no WebAssembly SIMD) or the input is larger than it takes, the
// JavaScript form decides and gives the reason. One module per process: every call is synchronous,
// so one memory serves all; its layout is [key area | input | 64 readable bytes | output].
import { readFileSync } from 'node:fs';
import { scanTopLevel, type ValueRange } from './json-scan.ts';

// Node's WebAssembly global, the part used here (@types/node leaves it to TypeScript's DOM library).
declare const WebAssembly: {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: unknown };
};

interface JsonExports {
  readonly memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  readonly scan: (json: number, length: number, key: number, keyLength: number) => number;
  readonly valueStart: { readonly value: number };
  readonly valueEnd: { readonly value: number };
  readonly readString: (row: number, end: number, start: number, out: number) => number;
  readonly written: { readonly value: number };
}

/** The growable output a string is unescaped into (the typed encoder's RowBuffer). */
export interface ByteScratch {
  buf: Buffer;
  pos: number;
  ensure(n: number): void;
}

/** Keys longer than this are scanned in JavaScript (a team-id field name is a few bytes). */
const KEY_AREA = 256;
/** Inputs larger than this go to JavaScript: the module's memory stays under ~2 MiB. */
export const MAX_WASM_INPUT_BYTES = 1024 * 1024;
/** Readable bytes past an input's end (the module's vector loads), and slack after an output. */
const TAIL = 64;
const PAGE = 65_536;

function load(): JsonExports | undefined {
  try {
    const bytes = readFileSync(new URL('./wasm/json.wasm', import.meta.url));
    return new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as JsonExports;
  } catch {
    return undefined; // no WebAssembly SIMD here: the JavaScript forms do it all
  }
}

const json = load();
/** A Buffer over the module's memory (Buffer.copy takes offsets: no view per copy), renewed when it grows. */
let memory: Buffer | undefined;
let loadedKey: Buffer | undefined;
/** The row readStringFast reads (copied in by loadRow), until the next input replaces it. */
let loadedRow: Buffer | undefined;

/** Whether these routines run in WebAssembly (false: the JavaScript forms alone). */
export function wasmJsonLoaded(): boolean {
  return json !== undefined;
}

/** The module's memory, grown to hold `bytes` past the key area and the tail. */
function memoryFor(module: JsonExports, bytes: number): Buffer {
  const need = KEY_AREA + bytes + TAIL;
  if (memory === undefined || memory.buffer !== module.memory.buffer || memory.length < need) {
    const have = module.memory.buffer.byteLength;
    if (have < need) module.memory.grow(Math.ceil((need - have) / PAGE));
    memory = Buffer.from(module.memory.buffer);
    loadedKey = undefined;
  }
  return memory;
}

/**
 * The module's own verdict (1: accepted, key found, `out` set; 0: accepted without the key; -1: not
 * accepted), or undefined where it does not run. For tests that hold it against the JavaScript scan.
 */
export function wasmScanVerdict(input: Buffer, key: Buffer | undefined, out: ValueRange): number | undefined {
  if (json === undefined || input.length > MAX_WASM_INPUT_BYTES || (key !== undefined && key.length > KEY_AREA)) return undefined;
  const mem = memoryFor(json, input.length);
  if (key !== undefined && (key !== loadedKey || !holdsKey(mem, key))) {
    mem.set(key, 0);
    loadedKey = key;
  }
  mem.set(input, KEY_AREA);
  loadedRow = undefined;
  const verdict = json.scan(KEY_AREA, input.length, 0, key === undefined ? -1 : key.length);
  if (verdict === 1) {
    out.start = json.valueStart.value;
    out.end = json.valueEnd.value;
  }
  return verdict;
}

/** Whether the key area still holds `key`'s bytes (a key Buffer changed in place is copied again). */
function holdsKey(mem: Buffer, key: Buffer): boolean {
  for (let k = 0; k < key.length; k++) if (mem[k] !== key[k]) return false;
  return true;
}

/**
 * scanTopLevel's contract (the JSON starts with `{`): true and `out` set when `key` is at the top
 * level, false when it is not, a JsonScanError when the JSON is not one object.
 */
export function scanTopLevelFast(input: Buffer, key: Buffer | undefined, out: ValueRange): boolean {
  const verdict = wasmScanVerdict(input, key, out);
  if (verdict === 1) return true;
  if (verdict === 0) return false;
  return scanTopLevel(input, key, out); // not accepted, or not run: the JavaScript scan's verdict stands
}

/**
 * Copies a typed row's JSON in for readStringFast (once per row: its strings are then read from the
 * copy, so the row must not change until they are read: the encoder loads a row and reads its strings
 * in one synchronous pass). False where the module does not run or the row is larger than it takes.
 */
export function loadRow(row: Buffer): boolean {
  if (json === undefined || row.length > MAX_WASM_INPUT_BYTES) {
    loadedRow = undefined;
    return false;
  }
  // Room for the row, its tail, and an output as long as the row plus the 16-byte step's slack.
  memoryFor(json, 2 * (row.length + TAIL)).set(row, KEY_AREA);
  loadedRow = row;
  return true;
}

/**
 * The loaded row's string at `start` (its opening quote; bytes from `end` on are not the string's),
 * unescaped and appended to `out`: the index after its closing quote, or -1 when the module leaves
 * it to the JavaScript form (a \u escape, a missing closing quote, or `row` is not the loaded row).
 */
export function readStringFast(row: Buffer, start: number, end: number, out: ByteScratch): number {
  if (json === undefined || row !== loadedRow || memory === undefined || end > row.length) return -1;
  const output = KEY_AREA + row.length + TAIL;
  const next = json.readString(KEY_AREA, end, start, output);
  if (next < 0) return -1;
  const length = json.written.value;
  out.ensure(length);
  memory.copy(out.buf, out.pos, output, output + length);
  out.pos += length;
  return next;
}
