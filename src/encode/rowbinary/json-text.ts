// Owns reading JSON text the way ClickHouse's JSONEachRow input does (ReadHelpers: readJSONString,
// skipJSONField): string unescaping with its escape rules, the skipping of values no column takes
// (which ClickHouse still checks), and the scan of one top-level object into per-key value ranges.
// Everything works on byte ranges of the row's Buffer; nothing allocates per value in the common case.
import { RowBuffer } from './row-buffer.ts';

export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;

/** Why a value is refused, as ClickHouse would say it; the encoder adds the column and the value. */
export class ValueError extends Error {}

export function isSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

export function isDigit(b: number | undefined): boolean {
  return b !== undefined && b >= 0x30 && b <= 0x39;
}

export function skipSpace(src: Buffer, from: number, end: number): number {
  let i = from;
  while (i < end && isSpace(src[i])) i++;
  return i;
}

/**
 * Index of the closing quote of the JSON string whose opening quote is at `start`. A byte loop: rows
 * hold JSON inside JSON strings (`\"` every few bytes), where a native search per escape costs more.
 */
export function stringEnd(src: Buffer, start: number, end: number): number {
  for (let i = start + 1; i < end; i++) {
    const b = src[i];
    if (b === QUOTE) return i;
    if (b === BACKSLASH) i++;
  }
  throw new ValueError('Cannot parse JSON string: expected closing quote');
}

/**
 * Four characters after \u as ClickHouse reads them: a hex table that gives 0xFF for a non-hex
 * character, accumulated as ((h0·16 + h1)·16 + h2)·16 + h3 and kept to 16 bits — so `\uZZZZ` is
 * U+FFEF and `\u004Z` U+013F, not errors (typed-differential finding D2). Fewer than four
 * characters before the string's end is an error.
 */
function hex4(src: Buffer, at: number, end: number): number {
  if (at + 4 > end) throw new ValueError('Cannot parse escape sequence: expected 4 hexadecimal digits after \\u');
  return (((hexDigit(src[at]) * 16 + hexDigit(src[at + 1])) * 16 + hexDigit(src[at + 2])) * 16 + hexDigit(src[at + 3])) & 0xffff;
}

function hexDigit(b: number | undefined): number {
  if (b === undefined) return 0xff;
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x57;
  if (b >= 0x41 && b <= 0x46) return b - 0x37;
  return 0xff;
}

const scratch = new RowBuffer();

/**
 * The content of the JSON string [start, end) (quotes included) unescaped as ClickHouse does:
 * \b \f \n \r \t \\ \" \/ and \uXXXX (a surrogate pair becomes one 4-byte character; a high
 * surrogate without its pair is refused; a lone low surrogate is written as its 3 bytes); any other
 * escaped character stands for itself. Returns the bytes in a scratch Buffer valid until the next
 * call: `unescaped()` [0, the returned length). Strings without a backslash need no copy (hasNoEscape).
 */
export function unescape(src: Buffer, start: number, end: number): number {
  const out = scratch;
  out.reset();
  // Unescaped text is never longer than its escaped form.
  out.ensure(end - start);
  const buf = out.buf;
  let w = 0;
  let i = start + 1;
  const stop = end - 1;
  while (i < stop) {
    const b = src[i] as number;
    if (b !== BACKSLASH) {
      buf[w++] = b;
      i++;
      continue;
    }
    if (i + 1 >= stop) throw new ValueError('Cannot parse JSON string: expected closing quote');
    const c = src[i + 1] as number;
    i += 2;
    if (c !== 0x75) {
      buf[w++] = escapedByte(c);
      continue;
    }
    let cp = hex4(src, i, stop);
    i += 4;
    if (cp >= 0xd800 && cp <= 0xdbff) {
      if (src[i] !== BACKSLASH || src[i + 1] !== 0x75) {
        throw new ValueError('Cannot parse escape sequence: missing second part of surrogate pair');
      }
      const low = hex4(src, i + 2, stop);
      if (low < 0xdc00 || low > 0xdfff) throw new ValueError('Incorrect surrogate pair of unicode escape sequences in JSON');
      i += 6;
      cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
    }
    w = putCodePoint(buf, w, cp);
  }
  out.pos = w;
  return w;
}

/**
 * Reads the JSON string at `start` (its opening quote) in one pass, appending its unescaped content
 * to `out`; returns the index after its closing quote. The same result as stringEnd + unescape, for
 * the hot path (a String column's value: PostHog rows hold JSON inside JSON strings, an escape every
 * few bytes). A `\u` escape hands the string to unescape (rare, and its end rules are subtle). The
 * encoder runs its WebAssembly form first (decode/json-wasm.ts); this one decides what that leaves.
 */
export function readStringInto(src: Buffer, start: number, end: number, out: RowBuffer): number {
  // Unescaped content is never longer than the rest of the row.
  out.ensure(end - start);
  const buf = out.buf;
  const from = out.pos;
  let w = from;
  let i = start + 1;
  for (;;) {
    if (i >= end) throw new ValueError('Cannot parse JSON string: expected closing quote');
    const b = src[i] as number;
    if (b === QUOTE) {
      out.pos = w;
      return i + 1;
    }
    if (b !== BACKSLASH) {
      buf[w++] = b;
      i++;
      continue;
    }
    if (i + 1 >= end) throw new ValueError('Cannot parse JSON string: expected closing quote');
    const c = src[i + 1] as number;
    i += 2;
    if (c !== 0x75) {
      buf[w++] = escapedByte(c);
      continue;
    }
    // A `\u` escape: the whole string goes through unescape (rare, and its end rules are subtle).
    const close = stringEnd(src, start, end);
    const length = unescape(src, start, close + 1);
    scratch.buf.copy(buf, from, 0, length);
    out.pos = from + length;
    return close + 1;
  }
}

/** The byte a one-character escape `\c` stands for (b f n r t; any other character stands for itself). */
function escapedByte(c: number): number {
  switch (c) {
    case 0x62:
      return 0x08;
    case 0x66:
      return 0x0c;
    case 0x6e:
      return 0x0a;
    case 0x72:
      return 0x0d;
    case 0x74:
      return 0x09;
    default:
      return c;
  }
}

/** The scratch `unescape` wrote into: its content is bytes [0, the length it returned). */
export function unescaped(): Buffer {
  return scratch.buf;
}

function putCodePoint(buf: Buffer, at: number, cp: number): number {
  let w = at;
  if (cp < 0x80) buf[w++] = cp;
  else if (cp < 0x800) {
    buf[w++] = 0xc0 | (cp >> 6);
    buf[w++] = 0x80 | (cp & 0x3f);
  } else if (cp < 0x10000) {
    buf[w++] = 0xe0 | (cp >> 12);
    buf[w++] = 0x80 | ((cp >> 6) & 0x3f);
    buf[w++] = 0x80 | (cp & 0x3f);
  } else {
    buf[w++] = 0xf0 | (cp >> 18);
    buf[w++] = 0x80 | ((cp >> 12) & 0x3f);
    buf[w++] = 0x80 | ((cp >> 6) & 0x3f);
    buf[w++] = 0x80 | (cp & 0x3f);
  }
  return w;
}

/** Whether the JSON string [start, end) has no escape (its content can be copied as is). */
export function hasNoEscape(src: Buffer, start: number, end: number): boolean {
  const stop = end - 1;
  if (stop - start > 256) {
    const slash = src.indexOf(BACKSLASH, start + 1);
    return slash < 0 || slash >= stop;
  }
  for (let i = start + 1; i < stop; i++) if (src[i] === BACKSLASH) return false;
  return true;
}

/** The end of a JSON number token that JSON's grammar accepts at `start`, or -1. */
export function jsonNumberEnd(src: Buffer, start: number, end: number): number {
  let i = start;
  if (src[i] === 0x2d) i++;
  if (src[i] === 0x30) i++;
  else if (src[i] !== undefined && (src[i] ?? 0) >= 0x31 && (src[i] ?? 0) <= 0x39) while (i < end && isDigit(src[i])) i++;
  else return -1;
  if (src[i] === 0x2e) {
    i++;
    if (!isDigit(src[i])) return -1;
    while (i < end && isDigit(src[i])) i++;
  }
  if (src[i] === 0x65 || src[i] === 0x45) {
    i++;
    if (src[i] === 0x2b || src[i] === 0x2d) i++;
    if (!isDigit(src[i])) return -1;
    while (i < end && isDigit(src[i])) i++;
  }
  return i > end ? -1 : i;
}

/**
 * How far ClickHouse's float reader (readFloatTextFastImpl) consumes a number at `start`: sign,
 * up to any digits, '.', digits, e/E with a sign and digits, or inf/infinity/nan after a sign.
 */
export function floatTokenEnd(src: Buffer, start: number, end: number): number {
  let i = start;
  if (src[i] === 0x2d || src[i] === 0x2b) i++;
  const afterSign = i;
  while (i < end && isDigit(src[i])) i++;
  const intDigits = i - afterSign;
  // An integer followed by a byte below '.' (a comma, a quote, space) ends there.
  if (intDigits > 0 && (i >= end || (src[i] ?? 0) < 0x2e)) return i;
  if (src[i] === 0x2e) {
    i++;
    while (i < end && isDigit(src[i])) i++;
  }
  if (src[i] === 0x65 || src[i] === 0x45) {
    i++;
    if (src[i] === 0x2d || src[i] === 0x2b) i++;
    while (i < end && isDigit(src[i])) i++;
  }
  if (i === afterSign) {
    // No digits: '+' then inf/nan, or inf/nan.
    let k = i;
    if (src[k] === 0x2b && src[start] !== 0x2b) {
      if (src[start] === 0x2d) throw new ValueError('Cannot read floating point value: plus after minus sign');
      k++;
    }
    const word = lowerWord(src, k, end);
    if (word.startsWith('infinity')) return k + 8;
    if (word.startsWith('inf')) return k + 3;
    if (word.startsWith('nan')) return k + 3;
    if (src[k] === 0x69 || src[k] === 0x49 || src[k] === 0x6e || src[k] === 0x4e) throw new ValueError('Cannot parse infinity or NaN');
  }
  return i;
}

function lowerWord(src: Buffer, at: number, end: number): string {
  return src.toString('latin1', at, Math.min(end, at + 8)).toLowerCase();
}

/**
 * ClickHouse's skipJSONField: the end of the value at `start`, checked as ClickHouse checks what it
 * skips (strings with valid escapes, numbers its float reader takes, null/true/false, arrays,
 * objects — where a comma between fields is optional). Throws ValueError for what it refuses.
 */
export function skipValue(src: Buffer, start: number, end: number, depth = 0, raw = false): number {
  if (depth > 1000) throw new ValueError('JSON is too deep');
  const c = src[start];
  if (start >= end || c === undefined) throw new ValueError('Unexpected EOF');
  if (c === QUOTE) {
    const close = stringEnd(src, start, end);
    if (!raw && !hasNoEscape(src, start, close + 1)) unescape(src, start, close + 1);
    return close + 1;
  }
  if (isDigit(c) || c === 0x2d || c === 0x2b || c === 0x2e) {
    return floatTokenEnd(src, c === 0x2b ? start + 1 : start, end);
  }
  if (c === 0x6e) return literal(src, start, end, 'null');
  if (c === 0x74) return literal(src, start, end, 'true');
  if (c === 0x66) return literal(src, start, end, 'false');
  if (c === 0x5b) {
    let i = skipSpace(src, start + 1, end);
    if (src[i] === 0x5d) return i + 1;
    for (;;) {
      i = skipSpace(src, skipValue(src, i, end, depth + 1, raw), end);
      if (src[i] === 0x2c) i = skipSpace(src, i + 1, end);
      else if (src[i] === 0x5d) return i + 1;
      else throw new ValueError('Unexpected symbol in an array');
    }
  }
  if (c === 0x7b) {
    let i = skipSpace(src, start + 1, end);
    while (i < end && src[i] !== 0x7d) {
      if (src[i] !== QUOTE) throw new ValueError('Unexpected symbol in an object');
      i = skipSpace(src, skipValue(src, i, end, depth + 1, raw), end);
      if (src[i] !== 0x3a) throw new ValueError('Unexpected symbol in an object');
      i = skipSpace(src, i + 1, end);
      i = skipSpace(src, skipValue(src, i, end, depth + 1, raw), end);
      if (src[i] === 0x2c) i = skipSpace(src, i + 1, end);
    }
    if (i >= end) throw new ValueError('Unexpected EOF in an object');
    return i + 1;
  }
  throw new ValueError(`Cannot read JSON field here: '${src.toString('utf8', start, Math.min(end, start + 10))}'`);
}

/** Open containers of rawValueEnd (reused): 1 an array, 2 an object. */
let open = new Uint8Array(64);

/**
 * The end of the value at `start` as ClickHouse copies it raw into a String (an object or array as
 * its text): the structure checked as skipValue checks it, strings not decoded, and no depth limit
 * (ClickHouse copies 100,000 levels; typed-differential finding D10). Iterative: no recursion.
 */
export function rawValueEnd(src: Buffer, start: number, end: number): number {
  let depth = 0;
  let i = start;
  for (;;) {
    // A value starts at i.
    i = skipSpace(src, i, end);
    const c = src[i];
    let opened = false;
    if (c === 0x5b || c === 0x7b) {
      if (depth === open.length) {
        const grown = new Uint8Array(open.length * 2);
        grown.set(open);
        open = grown;
      }
      open[depth++] = c === 0x5b ? 1 : 2;
      i = skipSpace(src, i + 1, end);
      opened = true;
      if (c === 0x5b && src[i] !== 0x5d) continue;
    } else i = skipValue(src, i, end, 0, true);
    // After a value, or just inside a container: close what ends here, find the next value.
    let next = false;
    while (!next) {
      if (depth === 0) return i;
      if (!opened) i = skipSpace(src, i, end);
      const kind = open[depth - 1];
      if (kind === 1) {
        if (src[i] === 0x5d) {
          depth--;
          i++;
          opened = false;
        } else if (src[i] === 0x2c && !opened) {
          i++;
          next = true;
        } else throw new ValueError('Unexpected symbol in an array');
        continue;
      }
      if (src[i] === 0x2c && !opened) i = skipSpace(src, i + 1, end);
      opened = false;
      if (i >= end) throw new ValueError('Unexpected EOF in an object');
      if (src[i] === 0x7d) {
        depth--;
        i++;
        continue;
      }
      if (src[i] !== QUOTE) throw new ValueError('Unexpected symbol in an object');
      i = skipSpace(src, stringEnd(src, i, end) + 1, end);
      if (src[i] !== 0x3a) throw new ValueError('Unexpected symbol in an object');
      i++;
      next = true;
    }
  }
}

function literal(src: Buffer, start: number, end: number, word: string): number {
  for (let k = 0; k < word.length; k++) {
    if (start + k >= end || src[start + k] !== word.charCodeAt(k)) throw new ValueError(`Cannot parse input: expected '${word}'`);
  }
  return start + word.length;
}

/** Checks that a value skipped by the scanner ends where ClickHouse's skip would, else throws. */
export function checkSkipped(src: Buffer, start: number, end: number): void {
  const stop = skipValue(src, start, end);
  if (skipSpace(src, stop, end) !== end) throw new ValueError(`Cannot parse input: unexpected '${src.toString('utf8', stop, Math.min(end, stop + 10))}'`);
}
