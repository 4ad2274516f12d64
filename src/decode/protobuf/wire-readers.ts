// Owns reading one field of a wire row (wire-row-type.ts) straight from the message's bytes: the
// readers of singular scalars and enums, oneof scalar members, Timestamp and wrapper fields (their
// occurrences merged), repeated scalars and enums (packed and unpacked), each returning what
// row-type.ts's reader returns from a `fromBinary` message. Built once per (type, field); a read
// allocates only its result (strings, bigints, arrays, TimestampValue).
import { ScalarType, type DescField } from '@bufbuild/protobuf';
import { TimestampValue, type FieldReader, type FieldValue, type TextReader } from '../row.ts';
import { cur, skipKnown, skipUnknown, tag, varint32, varint64, WT_LEN } from './wire.ts';
import type { WireField, WirePlan } from './wire-plan.ts';

/** A row's values: the message's bytes [start, end) of `buf` and its field index at `slab[base..]`. */
export class WireMessage {
  readonly buf: Buffer;
  readonly start: number;
  readonly end: number;
  readonly slab: Int32Array;
  readonly base: number;

  constructor(buf: Buffer, start: number, end: number, slab: Int32Array, base: number) {
    this.buf = buf;
    this.start = start;
    this.end = end;
    this.slab = slab;
    this.base = base;
  }
}

/** Moves past a value whose tag was just read (a field of the plan by its kind, else by its wire type). */
export function moveOver(plan: WirePlan, t: number, buf: Buffer, end: number): void {
  const index = plan.indexOf(t >>> 3);
  if (index < 0) skipUnknown(buf, end, t & 7, t >>> 3, 99);
  else skipKnown(plan.fields[index] as WireField, t & 7, buf, end);
}

/** Reads one value at cur.pos (the tag already read). */
export type ReadFn = (buf: Buffer, end: number) => FieldValue;

export function scalarReadFn(scalar: ScalarType): ReadFn {
  switch (scalar) {
    case ScalarType.STRING:
      return readString;
    case ScalarType.BYTES:
      return readBytes;
    case ScalarType.BOOL:
      return (buf, end) => {
        varint64(buf, end);
        return cur.lo !== 0 || cur.hi !== 0;
      };
    case ScalarType.DOUBLE:
      return (buf) => {
        cur.pos += 8;
        return buf.readDoubleLE(cur.pos - 8);
      };
    case ScalarType.FLOAT:
      return (buf) => {
        cur.pos += 4;
        return buf.readFloatLE(cur.pos - 4);
      };
    case ScalarType.FIXED32:
      return (buf) => {
        cur.pos += 4;
        return buf.readUInt32LE(cur.pos - 4);
      };
    case ScalarType.SFIXED32:
      return (buf) => {
        cur.pos += 4;
        return buf.readInt32LE(cur.pos - 4);
      };
    case ScalarType.INT32:
      return (buf, end) => varint32(buf, end) | 0;
    case ScalarType.UINT32:
      return (buf, end) => varint32(buf, end);
    case ScalarType.SINT32:
      return (buf, end) => {
        const z = varint32(buf, end);
        return (z >>> 1) ^ -(z & 1);
      };
    case ScalarType.INT64:
      return (buf, end) => {
        varint64(buf, end);
        return int64(cur.lo, cur.hi);
      };
    case ScalarType.UINT64:
      return (buf, end) => {
        varint64(buf, end);
        return uint64(cur.lo, cur.hi);
      };
    case ScalarType.SINT64:
      return (buf, end) => {
        varint64(buf, end);
        return sint64(cur.lo, cur.hi);
      };
    case ScalarType.FIXED64:
      return (buf) => {
        cur.pos += 8;
        return uint64(buf.readInt32LE(cur.pos - 8), buf.readInt32LE(cur.pos - 4));
      };
    case ScalarType.SFIXED64:
      return (buf) => {
        cur.pos += 8;
        return int64(buf.readInt32LE(cur.pos - 8), buf.readInt32LE(cur.pos - 4));
      };
  }
}

function readString(buf: Buffer, end: number): string {
  const n = varint32(buf, end);
  const start = cur.pos;
  cur.pos = start + n;
  return buf.toString('utf8', start, start + n);
}

/** A view of the bytes (a Buffer, as `fromBinary` of a Buffer returns them). */
function readBytes(buf: Buffer, end: number): Uint8Array {
  const n = varint32(buf, end);
  const start = cur.pos;
  cur.pos = start + n;
  return buf.subarray(start, start + n);
}

export function enumConvert(f: DescField): ReadFn {
  const e = f.fieldKind === 'enum' ? f.enum : f.fieldKind === 'list' && f.listKind === 'enum' ? f.enum : undefined;
  const names = new Map<number, string>();
  // With aliases (allow_alias), the first name of a number wins, as row-type.ts does.
  for (const v of e?.values ?? []) if (!names.has(v.number)) names.set(v.number, v.name);
  return (buf, end) => {
    const n = varint32(buf, end) | 0;
    return names.get(n) ?? n;
  };
}

/** The zero of a proto3 field without presence, as `fromBinary`'s message holds it when unset. */
export function zeroOf(f: DescField): FieldValue | (() => FieldValue) {
  if (f.fieldKind === 'enum') {
    const first = f.enum.values[0];
    return first === undefined ? 0 : first.name;
  }
  if (f.fieldKind !== 'scalar') return undefined;
  switch (f.scalar) {
    case ScalarType.STRING:
      return '';
    case ScalarType.BYTES:
      return () => new Uint8Array(0);
    case ScalarType.BOOL:
      return false;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return 0n;
    default:
      return 0;
  }
}

/** The offset of an indexed occurrence's tag (slot values are 1 + offset, negated when repeated). */
function slotOffset(v: number): number {
  return (v > 0 ? v : -v) - 1;
}

export function scalarReader(field: WireField, read: ReadFn, zero: FieldValue | (() => FieldValue)): FieldReader {
  const index = field.index;
  const zeroFn = typeof zero === 'function' ? zero : undefined;
  return (values) => {
    const m = values as WireMessage;
    const v = m.slab[m.base + index] ?? 0;
    if (v === 0) return zeroFn === undefined ? (zero as FieldValue) : zeroFn();
    cur.pos = m.start + slotOffset(v);
    varint32(m.buf, m.end);
    return read(m.buf, m.end);
  };
}

const NO_BYTES = Buffer.alloc(0);

/**
 * The bytes of a singular string field (not in a oneof): its last occurrence, or the empty string
 * for an unset proto3 field without presence; an unset `optional` field is left to its FieldReader
 * (absent). The walk at decode time checked them as UTF-8 (wire.ts checkValue).
 */
export function stringTextReader(field: WireField, implicit: boolean): TextReader {
  const index = field.index;
  return (values, out) => {
    const m = values as WireMessage;
    const v = m.slab[m.base + index] ?? 0;
    if (v === 0) {
      if (!implicit) return false;
      out.buf = NO_BYTES;
      out.start = 0;
      out.end = 0;
      return true;
    }
    cur.pos = m.start + slotOffset(v);
    varint32(m.buf, m.end);
    const n = varint32(m.buf, m.end);
    out.buf = m.buf;
    out.start = cur.pos;
    out.end = cur.pos + n;
    return true;
  };
}

export function oneofScalarReader(field: WireField, members: Int32Array, read: ReadFn): FieldReader {
  const index = field.index;
  return (values) => {
    const m = values as WireMessage;
    const v = m.slab[m.base + index] ?? 0;
    if (v === 0) return undefined;
    const at = slotOffset(v);
    for (let i = 0; i < members.length; i++) {
      const other = m.slab[m.base + (members[i] ?? 0)] ?? 0;
      if (other !== 0 && slotOffset(other) > at) return undefined;
    }
    cur.pos = m.start + at;
    varint32(m.buf, m.end);
    return read(m.buf, m.end);
  };
}

/** Calls `each` at every occurrence of the field (cur.pos after its tag), first to last. */
function forEachOccurrence(m: WireMessage, plan: WirePlan, field: WireField, from: number, each: (m: WireMessage, wireType: number) => void): void {
  const buf = m.buf;
  const end = m.end;
  cur.pos = m.start + from;
  while (cur.pos < end) {
    const t = tag(buf, end);
    if (t >>> 3 === field.number) {
      const after = skipAfter(field, t & 7, buf, end);
      each(m, t & 7);
      cur.pos = after;
    } else moveOver(plan, t, buf, end);
  }
}

/** Where the value at cur.pos ends (cur.pos unchanged). */
function skipAfter(field: WireField, wireType: number, buf: Buffer, end: number): number {
  const at = cur.pos;
  skipKnown(field, wireType, buf, end);
  const after = cur.pos;
  cur.pos = at;
  return after;
}

// Timestamp and wrapper fields accumulate across occurrences (a message field's occurrences merge).
let accLo = 0;
let accHi = 0;
let accNanos = 0;
let accValue: FieldValue = undefined;

function mergeTimestamp(m: WireMessage): void {
  const buf = m.buf;
  const n = varint32(buf, m.end);
  const stop = cur.pos + n;
  while (cur.pos < stop) {
    const t = tag(buf, stop);
    const no = t >>> 3;
    if (no === 1) {
      varint64(buf, stop);
      accLo = cur.lo;
      accHi = cur.hi;
    } else if (no === 2) accNanos = varint32(buf, stop) | 0;
    else skipUnknown(buf, stop, t & 7, no, 98);
  }
}

export function timestampReader(field: WireField, plan: WirePlan): FieldReader {
  const index = field.index;
  return (values) => {
    const m = values as WireMessage;
    const v = m.slab[m.base + index] ?? 0;
    if (v === 0) return undefined;
    accLo = 0;
    accHi = 0;
    accNanos = 0;
    if (v > 0) {
      cur.pos = m.start + v - 1;
      varint32(m.buf, m.end);
      mergeTimestamp(m);
    } else forEachOccurrence(m, plan, field, 0, mergeTimestamp);
    return new TimestampValue(int64(accLo, accHi), accNanos);
  };
}

export function wrapperReader(field: WireField, plan: WirePlan): FieldReader {
  const index = field.index;
  const f = field.desc;
  const inner = f.fieldKind === 'message' ? f.message.fields[0] : undefined;
  if (inner === undefined || inner.fieldKind !== 'scalar') throw new Error(`${f.name}: not a wrapper`);
  const read = scalarReadFn(inner.scalar);
  const zero = zeroOf(inner);
  const merge = (m: WireMessage): void => {
    const buf = m.buf;
    const n = varint32(buf, m.end);
    const stop = cur.pos + n;
    while (cur.pos < stop) {
      const t = tag(buf, stop);
      if (t >>> 3 === 1) accValue = read(buf, stop);
      else skipUnknown(buf, stop, t & 7, t >>> 3, 98);
    }
  };
  return (values) => {
    const m = values as WireMessage;
    const v = m.slab[m.base + index] ?? 0;
    if (v === 0) return undefined;
    accValue = typeof zero === 'function' ? zero() : zero;
    if (v > 0) {
      cur.pos = m.start + v - 1;
      varint32(m.buf, m.end);
      merge(m);
    } else forEachOccurrence(m, plan, field, 0, merge);
    return accValue;
  };
}

export function listReader(field: WireField, plan: WirePlan, read: ReadFn): FieldReader {
  const index = field.index;
  const packable = field.packable;
  let out: FieldValue[] = [];
  const each = (m: WireMessage, wireType: number): void => {
    const buf = m.buf;
    if (packable && wireType === WT_LEN) {
      const n = varint32(buf, m.end);
      const stop = cur.pos + n;
      while (cur.pos < stop) out.push(read(buf, stop));
    } else out.push(read(buf, m.end));
  };
  return (values) => {
    const m = values as WireMessage;
    const v = m.slab[m.base + index] ?? 0;
    const list: FieldValue[] = [];
    if (v === 0) return list;
    out = list;
    forEachOccurrence(m, plan, field, v - 1, each);
    return list;
  };
}

const TWO_32 = 4294967296;

/** cur.lo / cur.hi as a signed 64-bit bigint. */
export function int64(lo: number, hi: number): bigint {
  const h = hi | 0;
  if (h >= -0x200000 && h < 0x200000) return BigInt(h * TWO_32 + (lo >>> 0));
  return BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
}

/** cur.lo / cur.hi as an unsigned 64-bit bigint. */
export function uint64(lo: number, hi: number): bigint {
  const h = hi >>> 0;
  if (h < 0x200000) return BigInt(h * TWO_32 + (lo >>> 0));
  return (BigInt(h) << 32n) | BigInt(lo >>> 0);
}

/** cur.lo / cur.hi zigzag-decoded, as a signed 64-bit bigint. */
export function sint64(lo: number, hi: number): bigint {
  const s = -(lo & 1);
  return int64(((lo >>> 1) | ((hi & 1) << 31)) ^ s, (hi >>> 1) ^ s);
}
