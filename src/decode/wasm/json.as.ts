// AssemblyScript source of json.wasm (built by scripts/build-wasm.sh; test/unit/decode/json-wasm.test.ts
// checks the committed file is what this builds). Two routines of JSON text that are byte loops in
// JavaScript, with strings passed over 16 or 64 bytes a step by WebAssembly SIMD: PostHog events hold
// JSON inside JSON strings, where the byte loop costs ~1.7 ns a byte.
// - scan(): the same walk as src/decode/json-scan.ts's scanTopLevel (the team id, one object only).
// - readString(): src/encode/rowbinary/json-text.ts's readStringInto (a String column's value).
// Both give only what their JavaScript forms accept; for anything else they return -1 and the
// caller runs the JavaScript form, which gives the reason. src/decode/json-wasm.ts lays out memory:
// at least 64 readable bytes follow every input (vector loads read past its end; those bytes are
// never taken for JSON).

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

/** How many bytes readString() wrote. */
export let written: i32 = 0;

/** The byte a one-character escape `\c` stands for (b f n r t; any other stands for itself). */
@inline function escapedByte(c: u32): u32 {
  if (c == 0x62) return 0x08;
  if (c == 0x66) return 0x0c;
  if (c == 0x6e) return 0x0a;
  if (c == 0x72) return 0x0d;
  if (c == 0x74) return 0x09;
  return c;
}

/**
 * The JSON string whose opening quote is at `start` of the row at `row` (bytes from `end` on are
 * not the string's), unescaped into `out` as src/encode/rowbinary/json-text.ts's readStringInto
 * does: the index after its closing quote, the bytes written in `written`; -1 for a string it leaves
 * to that function (a \u escape, or no closing quote: its error). 16 bytes a step between escapes;
 * `out` must have room for the string's length plus 16.
 */
export function readString(row: usize, end: i32, start: i32, out: usize): i32 {
  const quote = i8x16.splat(0x22);
  const backslash = i8x16.splat(0x5c);
  let i = start + 1;
  let w: usize = out;
  while (i < end) {
    const v = v128.load(row + <usize>i);
    v128.store(w, v); // the bytes up to the first quote or backslash are kept, the rest rewritten
    const m = i8x16.bitmask(v128.or(i8x16.eq(v, quote), i8x16.eq(v, backslash)));
    if (m == 0) {
      i += 16;
      w += 16;
      continue;
    }
    const t = <i32>ctz(m);
    i += t;
    w += <usize>t;
    if (i >= end) return -1;
    if (byteAt(row, i) == QUOTE) {
      written = <i32>(w - out);
      return i + 1;
    }
    if (i + 1 >= end) return -1;
    const c = byteAt(row, i + 1);
    if (c == 0x75) return -1;
    store<u8>(w, <u8>escapedByte(c));
    w++;
    i += 2;
  }
  return -1;
}
