// Owns the WebAssembly form of the top-level JSON scan (wasm/json-scan.as.ts, built into
// wasm/json-scan.wasm): the same verdicts as json-scan.ts's scanTopLevel, ~3.5× faster on PostHog
// events (docs/benchmarks.md, session 12), because it skips strings 64 bytes a step with SIMD. It only
// says "accepted" (with the key's range) or "not accepted"; for the latter, and wherever the module
// cannot run (no WebAssembly SIMD) or the JSON is larger than it takes, the JavaScript scan decides
// and gives the reason. One module per process; a scan is synchronous, so one memory serves all.
import { readFileSync } from 'node:fs';
import { scanTopLevel, type ValueRange } from './json-scan.ts';

// Node's WebAssembly global, the part used here (@types/node leaves it to TypeScript's DOM library).
declare const WebAssembly: {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: unknown };
};

interface ScanExports {
  readonly memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  readonly scan: (json: number, length: number, key: number, keyLength: number) => number;
  readonly valueStart: { readonly value: number };
  readonly valueEnd: { readonly value: number };
}

/** Keys longer than this are scanned in JavaScript (a team-id field name is a few bytes). */
const KEY_AREA = 256;
/** JSON larger than this is scanned in JavaScript: the module's memory never grows past ~1 MiB. */
export const MAX_WASM_SCAN_BYTES = 1024 * 1024;
/** Readable bytes past the JSON's end (the module's 64-byte vector loads). */
const TAIL = 64;
const PAGE = 65_536;

let memory: Uint8Array | undefined;
let loadedKey: Buffer | undefined;

function load(): ScanExports | undefined {
  try {
    const bytes = readFileSync(new URL('./wasm/json-scan.wasm', import.meta.url));
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
    return instance.exports as ScanExports;
  } catch {
    return undefined; // no WebAssembly SIMD here: the JavaScript scan does it all
  }
}

const scanModule = load();

/** Whether scans run in WebAssembly (false: the JavaScript scan alone). */
export function wasmScanLoaded(): boolean {
  return scanModule !== undefined;
}

/** The module's memory, grown to hold `bytes` past the key area and the tail. */
function memoryFor(scan: ScanExports, bytes: number): Uint8Array {
  const need = KEY_AREA + bytes + TAIL;
  if (memory === undefined || memory.buffer !== scan.memory.buffer || memory.length < need) {
    const have = scan.memory.buffer.byteLength;
    if (have < need) scan.memory.grow(Math.ceil((need - have) / PAGE));
    memory = new Uint8Array(scan.memory.buffer);
    loadedKey = undefined;
  }
  return memory;
}

/**
 * The module's own verdict (1: accepted, key found, `out` set; 0: accepted without the key; -1: not
 * accepted), or undefined where it does not run. For tests that hold it against the JavaScript scan.
 */
export function wasmScanVerdict(json: Buffer, key: Buffer | undefined, out: ValueRange): number | undefined {
  const scan = scanModule;
  if (scan === undefined || json.length > MAX_WASM_SCAN_BYTES || (key !== undefined && key.length > KEY_AREA)) return undefined;
  const mem = memoryFor(scan, json.length);
  if (key !== undefined && key !== loadedKey) {
    mem.set(key, 0);
    loadedKey = key;
  }
  mem.set(json, KEY_AREA);
  const verdict = scan.scan(KEY_AREA, json.length, 0, key === undefined ? -1 : key.length);
  if (verdict === 1) {
    out.start = scan.valueStart.value;
    out.end = scan.valueEnd.value;
  }
  return verdict;
}

/**
 * scanTopLevel's contract (json starts with `{`): true and `out` set when `key` is at the top level,
 * false when it is not, a JsonScanError when the JSON is not one object. The module decides what it
 * accepts; anything else goes to the JavaScript scan, whose verdict stands.
 */
export function scanTopLevelFast(json: Buffer, key: Buffer | undefined, out: ValueRange): boolean {
  const verdict = wasmScanVerdict(json, key, out);
  if (verdict === 1) return true;
  if (verdict === 0) return false;
  return scanTopLevel(json, key, out); // not accepted, or not run: the JavaScript scan's verdict stands
}
