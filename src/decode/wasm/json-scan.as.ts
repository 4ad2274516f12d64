// AssemblyScript source of json-scan.wasm (built by scripts/build-wasm.sh, checked byte for byte by
// test/unit/decode/json-scan-wasm.test.ts). The same walk as src/decode/json-scan.ts's scanTopLevel,
// with strings skipped by WebAssembly SIMD: PostHog events hold JSON inside JSON strings, where the
// JavaScript byte loop costs ~1.7 ns a byte. It returns a verdict only: for anything it does not
// accept, the caller runs the JavaScript scan, which gives the reason.
//
// Memory (laid out by src/decode/json-scan-wasm.ts): the key, then the JSON, then at least 64 bytes
// of readable memory (vector loads read past the JSON's end; those bytes are never taken for JSON).

const QUOTE: u32 = 0x22;
const COLON: u32 = 0x3a;
const COMMA: u32 = 0x2c;
const OPEN_OBJECT: u32 = 0x7b;
const CLOSE_OBJECT: u32 = 0x7d;
const OPEN_ARRAY: u32 = 0x5b;
const CLOSE_ARRAY: u32 = 0x5d;
const EVEN_BITS: u64 = 0x5555555555555555;

/** Where scan() puts the key's value, relative to the JSON's first byte, when it returns 1. */
export let valueStart: i32 = 0;
export let valueEnd: i32 = 0;

@inline function byteAt(base: usize, i: i32): u32 {
  return <u32>load<u8>(base + <usize>i);
}

@inline function isSpace(b: u32): bool {
  return b == 0x20 || b == 0x0a || b == 0x0d || b == 0x09;
}

@inline function skipSpace(base: usize, len: i32, from: i32): i32 {
  let i = from;
  while (i < len && isSpace(byteAt(base, i))) i++;
  return i;
}

/** 64 bits, one per byte of [at, at + 64), set where the byte equals the splatted `needle`. */
@inline function mask64(at: usize, needle: v128): u64 {
  const m0 = <u64>i8x16.bitmask(i8x16.eq(v128.load(at), needle));
  const m1 = <u64>i8x16.bitmask(i8x16.eq(v128.load(at, 16), needle));
  const m2 = <u64>i8x16.bitmask(i8x16.eq(v128.load(at, 32), needle));
  const m3 = <u64>i8x16.bitmask(i8x16.eq(v128.load(at, 48), needle));
  return m0 | (m1 << 16) | (m2 << 32) | (m3 << 48);
}

/**
 * Index of the closing quote of the string opening at `start`, or -1. A byte is escaped when an odd
 * run of backslashes precedes it (simdjson's carry-add trick, 64 bytes a step), which is what the
 * JavaScript loop's "a backslash skips the next byte" amounts to.
 */
function endOfString(base: usize, len: i32, start: i32): i32 {
  const quote = i8x16.splat(0x22);
  const backslash = i8x16.splat(0x5c);
  let p = start + 1;
  // Most strings (keys, short values) end within 16 bytes, with no backslash before their end.
  const head = v128.load(base + <usize>p);
  const headQuotes = i8x16.bitmask(i8x16.eq(head, quote));
  if (headQuotes != 0 && ctz(headQuotes) < ctz(i8x16.bitmask(i8x16.eq(head, backslash)))) {
    const t = p + <i32>ctz(headQuotes);
    return t < len ? t : -1;
  }
  let prevEscaped: u64 = 0;
  while (p < len) {
    const at = base + <usize>p;
    const quotes = mask64(at, quote);
    const slashes = mask64(at, backslash) & ~prevEscaped;
    const followsEscape = (slashes << 1) | prevEscaped;
    const oddStarts = slashes & ~EVEN_BITS & ~followsEscape;
    const sequences = oddStarts + slashes;
    prevEscaped = sequences < oddStarts ? 1 : 0; // the add carried out: the next block's first byte is escaped
    const escaped = (EVEN_BITS ^ (sequences << 1)) & followsEscape;
    const unescaped = quotes & ~escaped;
    if (unescaped != 0) {
      const t = p + <i32>ctz(unescaped);
      return t < len ? t : -1;
    }
    p += 64;
  }
  return -1;
}

/** Index just past the value starting at `start`, or -1. */
function endOfValue(base: usize, len: i32, start: i32): i32 {
  if (start >= len) return -1;
  const first = byteAt(base, start);
  if (first == QUOTE) {
    const end = endOfString(base, len, start);
    return end < 0 ? -1 : end + 1;
  }
  if (first == OPEN_OBJECT || first == OPEN_ARRAY) {
    let depth = 0;
    for (let i = start; i < len; i++) {
      const b = byteAt(base, i);
      if (b == QUOTE) {
        i = endOfString(base, len, i);
        if (i < 0) return -1;
      } else if (b == OPEN_OBJECT || b == OPEN_ARRAY) depth++;
      else if (b == CLOSE_OBJECT || b == CLOSE_ARRAY) {
        depth--;
        if (depth == 0) return i + 1;
      }
    }
    return -1;
  }
  let i = start;
  for (;;) {
    if (i >= len) return -1;
    const b = byteAt(base, i);
    if (b == COMMA || b == CLOSE_OBJECT || b == CLOSE_ARRAY || isSpace(b)) break;
    i++;
  }
  return i == start ? -1 : i;
}

/**
 * The JSON object of `len` bytes at `json` (its first byte `{`): 1 when it is accepted and holds
 * `key` (of `keyLen` bytes at `key`; the first one, if repeated) at its top level, its value's range
 * then in valueStart/valueEnd; 0 when accepted without it (or keyLen < 0: no key); -1 when not
 * accepted.
 */
export function scan(json: usize, len: i32, key: usize, keyLen: i32): i32 {
  let found = false;
  let i = skipSpace(json, len, 1);
  if (i >= len) return -1;
  if (byteAt(json, i) != CLOSE_OBJECT) {
    for (;;) {
      if (i >= len || byteAt(json, i) != QUOTE) return -1;
      const keyEnd = endOfString(json, len, i);
      if (keyEnd < 0) return -1;
      const matches = !found && keyLen >= 0 && keyEnd - i - 1 == keyLen && memory.compare(json + <usize>(i + 1), key, <usize>keyLen) == 0;
      i = skipSpace(json, len, keyEnd + 1);
      if (i >= len || byteAt(json, i) != COLON) return -1;
      const start = skipSpace(json, len, i + 1);
      const end = endOfValue(json, len, start);
      if (end < 0) return -1;
      if (matches) {
        found = true;
        valueStart = start;
        valueEnd = end;
      }
      i = skipSpace(json, len, end);
      if (i >= len) return -1;
      const next = byteAt(json, i);
      if (next == CLOSE_OBJECT) break;
      if (next != COMMA) return -1;
      i = skipSpace(json, len, i + 1);
    }
  }
  if (i != len - 1) return -1;
  return found ? 1 : 0;
}
