// Owns reading Protobuf's binary wire format straight from a record's bytes, without building a
// message object: varints, 64-bit integers (as lo/hi words, then bigint), fixed-width numbers, and
// the validation walk of a message (every field, nested messages recursively, by its plan in
// wire-plan.ts) that decides at decode time whether the bytes are a message of the type, as
// @bufbuild/protobuf's `fromBinary` would:
//
// - a field of the type is read by its declared type whatever its wire type (as protobuf-es does),
//   except that a repeated scalar with wire type 2 is packed; unknown fields are skipped by their
//   wire type (groups too, matching end tags); tags of more than 32 bits, field number 0 and wire
//   types 6/7 are rejected; varints longer than 10 bytes are rejected (not when skipped, as there);
// - strings of fields with UTF-8 validation (proto3, editions) must be valid UTF-8;
// - nesting deeper than 100 messages is rejected (protobuf-es's recursion limit);
// - stricter than protobuf-es (which reads on past the end of a nested length-delimited value into
//   its parent's bytes): a value that overruns the message, map entry or packed list holding it is
//   rejected, as the reference implementations (C++, Go, Java) reject it. Only malformed payloads
//   differ.
//
// The reads share one cursor (`cur`): decoding is synchronous, reads never interleave.
import { isUtf8 } from 'node:buffer';
import { DecodeError } from '../../errors/inserter-error.ts';
import { K_BYTES, K_FIXED32, K_FIXED64, K_MAP, K_MESSAGE, K_STRING, K_VARINT, type WireField, type WirePlan } from './wire-plan.ts';

export const WT_VARINT = 0;
export const WT_I64 = 1;
export const WT_LEN = 2;
export const WT_START_GROUP = 3;
export const WT_END_GROUP = 4;
export const WT_I32 = 5;

/** protobuf-es's recursion limit (messages nested, the top level counting as 1). */
const RECURSION_LIMIT = 100;
/** Strings shorter than this are checked for ASCII byte by byte before asking for a UTF-8 check. */
const SHORT_STRING = 24;

/** The shared cursor: the position of the next read, the last 64-bit varint as two words, the payload's end. */
export const cur = { pos: 0, lo: 0, hi: 0, limit: 0 };

export function malformed(what: string): never {
  throw new DecodeError('INSERTER_DECODE_BAD_PROTOBUF', what);
}

/** A read past `end`: past the payload, or past the nested value holding it (an overrun). */
function premature(end: number): never {
  malformed(end < cur.limit ? 'a value overruns the message, map entry or packed list holding it' : 'premature end of message');
}

/** A varint of at most 32 significant bits (more bytes allowed up to 10, as protobuf-es reads them). */
export function varint32(buf: Buffer, end: number): number {
  let pos = cur.pos;
  if (pos >= end) premature(end);
  let b = buf[pos++] ?? 0;
  if (b < 0x80) {
    cur.pos = pos;
    return b;
  }
  let result = b & 0x7f;
  for (let shift = 7; shift < 28; shift += 7) {
    if (pos >= end) premature(end);
    b = buf[pos++] ?? 0;
    result |= (b & 0x7f) << shift;
    if (b < 0x80) {
      cur.pos = pos;
      return result;
    }
  }
  if (pos >= end) premature(end);
  b = buf[pos++] ?? 0;
  result |= (b & 0x0f) << 28;
  for (let n = 5; b >= 0x80; n++) {
    if (n === 10) malformed('invalid varint (more than 10 bytes)');
    if (pos >= end) premature(end);
    b = buf[pos++] ?? 0;
  }
  cur.pos = pos;
  return result >>> 0;
}

/** A 64-bit varint into cur.lo / cur.hi (as protobuf-es's varint64read). */
export function varint64(buf: Buffer, end: number): void {
  let pos = cur.pos;
  let lo = 0;
  let hi = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (pos >= end) premature(end);
    const b = buf[pos++] ?? 0;
    lo |= (b & 0x7f) << shift;
    if (b < 0x80) {
      cur.pos = pos;
      cur.lo = lo;
      cur.hi = 0;
      return;
    }
  }
  if (pos >= end) premature(end);
  const middle = buf[pos++] ?? 0;
  lo |= (middle & 0x0f) << 28;
  hi = (middle & 0x70) >> 4;
  if (middle < 0x80) {
    cur.pos = pos;
    cur.lo = lo;
    cur.hi = hi;
    return;
  }
  for (let shift = 3; shift <= 31; shift += 7) {
    if (pos >= end) premature(end);
    const b = buf[pos++] ?? 0;
    hi |= (b & 0x7f) << shift;
    if (b < 0x80) {
      cur.pos = pos;
      cur.lo = lo;
      cur.hi = hi;
      return;
    }
  }
  malformed('invalid varint (more than 10 bytes)');
}

/** A tag (field number << 3 | wire type), checked as protobuf-es checks it. */
export function tag(buf: Buffer, end: number): number {
  const start = cur.pos;
  const t = varint32(buf, end);
  const n = cur.pos - start;
  if (n > 5 || (n === 5 && (buf[cur.pos - 1] ?? 0) > 0x0f)) malformed('illegal tag: varint overflows uint32');
  if (t >>> 3 === 0 || (t & 7) > 5) malformed(`illegal tag: field no ${t >>> 3} wire type ${t & 7}`);
  return t;
}

/** Skips an unknown field's value by its wire type (groups: up to the matching end tag). */
export function skipUnknown(buf: Buffer, end: number, wireType: number, fieldNo: number, groupLimit: number): void {
  switch (wireType) {
    case WT_VARINT: {
      let pos = cur.pos;
      let b;
      do {
        if (pos >= end) premature(end);
        b = buf[pos++] ?? 0;
      } while (b >= 0x80);
      cur.pos = pos;
      return;
    }
    case WT_I64:
      return advance(8, end);
    case WT_I32:
      return advance(4, end);
    case WT_LEN:
      return advance(varint32(buf, end), end);
    case WT_START_GROUP:
      if (groupLimit <= 0) malformed('maximum recursion depth reached');
      for (;;) {
        const t = tag(buf, end);
        if ((t & 7) === WT_END_GROUP) {
          if (t >>> 3 !== fieldNo) malformed('invalid end group tag');
          return;
        }
        skipUnknown(buf, end, t & 7, t >>> 3, groupLimit - 1);
      }
    default:
      malformed(`cannot skip wire type ${wireType}`);
  }
}

function advance(n: number, end: number): void {
  const pos = cur.pos + n;
  if (pos > end) premature(end);
  cur.pos = pos;
}

/** Checks one value of a field of the type (by its declared kind) and moves past it. */
export function checkValue(field: WireField, kind: number, buf: Buffer, end: number, depth: number): void {
  switch (kind) {
    case K_VARINT: {
      // protobuf-es reads 32-bit kinds with its 32-bit reader: same bytes accepted (≤ 10).
      varint64(buf, end);
      return;
    }
    case K_FIXED32:
      return advance(4, end);
    case K_FIXED64:
      return advance(8, end);
    case K_STRING: {
      const n = varint32(buf, end);
      const start = cur.pos;
      advance(n, end);
      if (!utf8(buf, start, start + n)) malformed(`invalid UTF-8 in string field ${field.desc.name}`);
      return;
    }
    case K_BYTES:
      return advance(varint32(buf, end), end);
    case K_MESSAGE: {
      const n = varint32(buf, end);
      const start = cur.pos;
      if (start + n > end) malformed(`field ${field.desc.name}: nested message overruns its parent`);
      checkMessage(field.message as WirePlan, buf, start + n, depth + 1);
      return;
    }
    case K_MAP:
      return checkMapEntry(field, buf, end, depth);
  }
}

/** Checks the fields of a message from cur.pos to `end`, nested messages included. */
export function checkMessage(plan: WirePlan, buf: Buffer, end: number, depth: number): void {
  if (depth > RECURSION_LIMIT) malformed(`maximum recursion depth of ${RECURSION_LIMIT} reached`);
  while (cur.pos < end) {
    const t = tag(buf, end);
    const index = plan.indexOf(t >>> 3);
    if (index < 0) {
      skipUnknown(buf, end, t & 7, t >>> 3, RECURSION_LIMIT - depth);
      continue;
    }
    const field = plan.fields[index] as WireField;
    if (field.packable && (t & 7) === WT_LEN) checkPacked(field, buf, end);
    else checkValue(field, field.kind, buf, end, depth);
  }
}

export function checkPacked(field: WireField, buf: Buffer, end: number): void {
  const n = varint32(buf, end);
  const stop = cur.pos + n;
  if (stop > end) malformed(`field ${field.desc.name}: packed list overruns its message`);
  while (cur.pos < stop) checkValue(field, field.kind, buf, stop, 0);
}

function checkMapEntry(field: WireField, buf: Buffer, end: number, depth: number): void {
  const n = varint32(buf, end);
  const stop = cur.pos + n;
  if (stop > end) malformed(`field ${field.desc.name}: map entry overruns its message`);
  while (cur.pos < stop) {
    const t = tag(buf, stop);
    const no = t >>> 3;
    if (no === 1) checkValue(field, field.mapKey, buf, stop, depth);
    else if (no === 2) checkValue(field, field.mapValue, buf, stop, depth);
    else skipUnknown(buf, stop, t & 7, no, RECURSION_LIMIT - depth);
  }
}

/** Moves past one value of a field already checked (by its declared kind; no content checks). */
export function skipKnown(field: WireField, wireType: number, buf: Buffer, end: number): void {
  const kind = field.packable && wireType === WT_LEN ? K_BYTES : field.kind;
  switch (kind) {
    case K_VARINT:
      while ((buf[cur.pos++] ?? 0) >= 0x80);
      return;
    case K_FIXED32:
      cur.pos += 4;
      return;
    case K_FIXED64:
      cur.pos += 8;
      return;
    default: {
      const n = varint32(buf, end);
      cur.pos += n;
    }
  }
}

/** Whether bytes [start, end) are UTF-8 (ASCII checked here first, the rest natively). */
function utf8(buf: Buffer, start: number, end: number): boolean {
  if (end - start < SHORT_STRING) {
    let i = start;
    while (i < end && (buf[i] ?? 0) < 0x80) i++;
    if (i === end) return true;
    start = i;
  }
  return isUtf8(new Uint8Array(buf.buffer, buf.byteOffset + start, end - start));
}
