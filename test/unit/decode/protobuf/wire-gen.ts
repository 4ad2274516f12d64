// Random Protobuf wire bytes of a message type, written at the wire level (not through toBinary), so
// they hold what canonical encoders never write but parsers must read: repeated occurrences of
// singular fields (last one wins, messages merge), packed and unpacked occurrences of one list,
// fields out of order, unknown fields (groups too), over-long varints, 10-byte negative int32s,
// known fields under another wire type, map entries without key or value or with repeated parts,
// non-ASCII, BOM-prefixed and (rarely) invalid UTF-8 strings. Then mutations (truncation, flipped,
// inserted and deleted bytes) for the malformed cases.
import { ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';

/** mulberry32: deterministic from a seed. */
export class Rand {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  int(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  chance(p: number): boolean {
    return this.next() / 4294967296 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
}

class Writer {
  readonly bytes: number[] = [];
  varint(value: bigint, pad = 0): void {
    let v = BigInt.asUintN(64, value);
    const out: number[] = [];
    do {
      out.push(Number(v & 0x7fn));
      v >>= 7n;
    } while (v > 0n);
    // Over-long encodings: continuation bytes carrying zeros, up to 10 bytes in all.
    const extra = Math.min(pad, 10 - out.length);
    for (let i = 0; i < extra; i++) out.push(0);
    for (let i = 0; i < out.length - 1; i++) out[i] = (out[i] as number) | 0x80;
    this.bytes.push(...out);
  }
  tag(no: number, wireType: number): void {
    this.varint(BigInt((no << 3) | wireType) & 0xffffffffn);
  }
  raw(bytes: ArrayLike<number>): void {
    for (let i = 0; i < bytes.length; i++) this.bytes.push(bytes[i] as number);
  }
  len(bytes: ArrayLike<number>): void {
    this.varint(BigInt(bytes.length));
    this.raw(bytes);
  }
}

const U64_SPECIAL = [0n, 1n, 2n, 127n, 128n, 300n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];
const STRINGS = ['', 'a', 'hello', 'héllo "q"\n\\', '日本語', '😀 emoji', '\uFEFFbom first', '\u0000nul', 'x'.repeat(200), '{"$browser":"Chrome","n":1}', '__proto__', '12', 'constructor'];
const FLOATS = [0, -0, 1.5, -2.25, NaN, Infinity, -Infinity, 3.4028234663852886e38, 5e-324, 1e300, 0.1];

function u64(r: Rand): bigint {
  switch (r.int(4)) {
    case 0:
      return r.pick(U64_SPECIAL);
    case 1:
      return BigInt(r.int(1000));
    case 2:
      return -BigInt(r.int(1000));
    default:
      return (BigInt(r.next()) << 32n) | BigInt(r.next());
  }
}

function text(r: Rand): number[] {
  if (r.chance(0.01)) return [0x61, r.pick([0xff, 0xc3, 0xed, 0x80]), 0xa0, 0x80]; // invalid UTF-8
  if (r.chance(0.5)) return [...Buffer.from(r.pick(STRINGS), 'utf8')];
  const n = r.int(r.chance(0.1) ? 600 : 30);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(r.chance(0.9) ? 0x20 + r.int(95) : r.pick([0xe9, 0x4e2d, 0x22, 0x5c, 0x0a]));
  return [...Buffer.from(s, 'utf8')];
}

function randomBytes(r: Rand, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(r.int(256));
  return out;
}

function fixed(r: Rand, n: 4 | 8, float: boolean): number[] {
  if (float && r.chance(0.6)) {
    const b = Buffer.alloc(n);
    if (n === 4) b.writeFloatLE(Math.fround(r.pick(FLOATS)));
    else b.writeDoubleLE(r.pick(FLOATS));
    return [...b];
  }
  if (r.chance(0.3)) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, r.pick(U64_SPECIAL)));
    return [...b.subarray(0, n)];
  }
  return randomBytes(r, n);
}

/** Writes one scalar value (no tag) of the type: returns its wire type. */
function scalar(w: Writer, r: Rand, type: ScalarType): number {
  switch (type) {
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.FLOAT:
      w.raw(fixed(r, 4, type === ScalarType.FLOAT));
      return 5;
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
    case ScalarType.DOUBLE:
      w.raw(fixed(r, 8, type === ScalarType.DOUBLE));
      return 1;
    case ScalarType.STRING:
      w.len(text(r));
      return 2;
    case ScalarType.BYTES:
      w.len(randomBytes(r, r.int(r.chance(0.1) ? 300 : 12)));
      return 2;
    case ScalarType.BOOL:
      w.varint(r.chance(0.8) ? BigInt(r.int(2)) : u64(r), r.chance(0.1) ? r.int(4) : 0);
      return 0;
    default:
      w.varint(u64(r), r.chance(0.1) ? r.int(4) : 0);
      return 0;
  }
}

function enumValue(w: Writer, r: Rand, field: DescField): number {
  const values = field.fieldKind === 'enum' || (field.fieldKind === 'list' && field.listKind === 'enum') ? field.enum.values : [];
  w.varint(r.chance(0.85) && values.length > 0 ? BigInt(r.pick(values).number) : u64(r));
  return 0;
}

function unknownField(w: Writer, r: Rand, depth: number): void {
  const no = r.pick([990, 991, 1234, 536870911, 19000]);
  const wt = r.pick([0, 1, 2, 5, 3]);
  w.tag(no, wt);
  if (wt === 0) w.varint(u64(r), r.chance(0.1) ? 3 : 0);
  else if (wt === 1) w.raw(randomBytes(r, 8));
  else if (wt === 5) w.raw(randomBytes(r, 4));
  else if (wt === 2) w.len(randomBytes(r, r.int(10)));
  else {
    if (depth < 3 && r.chance(0.5)) unknownField(w, r, depth + 1);
    w.tag(no, 4);
  }
}

export interface GenOptions {
  /** Top-level occurrences at most. */
  readonly fields: number;
  /** Chance of a known field written under another wire type (read by its declared type). */
  readonly wrongWireType: number;
}

/** Random wire bytes of a message of `desc`. */
export function genMessage(r: Rand, desc: DescMessage, options: GenOptions, depth = 0): Buffer {
  const w = new Writer();
  if ((desc.typeName === 'google.protobuf.Timestamp' || desc.typeName === 'google.protobuf.Duration') && r.chance(0.9)) {
    // Mostly in range (out of range, readers throw as their JSON conversion does: both ways alike).
    if (r.chance(0.8)) {
      w.tag(1, 0);
      w.varint(BigInt(r.int(4_000_000_000) - (desc.typeName === 'google.protobuf.Duration' ? 2_000_000_000 : 100_000_000)));
    }
    if (r.chance(0.7)) {
      w.tag(2, 0);
      w.varint(BigInt(r.chance(0.5) ? r.int(1000) * 1_000_000 : r.int(1_000_000_000)));
    }
    return Buffer.from(w.bytes);
  }
  const count = r.int(depth === 0 ? options.fields : 5);
  for (let i = 0; i < count; i++) {
    if (r.chance(0.05)) {
      unknownField(w, r, 0);
      continue;
    }
    const field = r.pick(desc.fields);
    if (field === undefined) break;
    occurrence(w, r, field, options, depth);
  }
  return Buffer.from(w.bytes);
}

function nested(r: Rand, desc: DescMessage, options: GenOptions, depth: number): number[] {
  return depth >= 4 ? [] : [...genMessage(r, desc, options, depth + 1)];
}

function occurrence(w: Writer, r: Rand, field: DescField, options: GenOptions, depth: number): void {
  const value = new Writer();
  let wt: number;
  switch (field.fieldKind) {
    case 'scalar':
      wt = scalar(value, r, field.scalar);
      break;
    case 'enum':
      wt = enumValue(value, r, field);
      break;
    case 'message':
      value.len(nested(r, field.message, options, depth));
      wt = 2;
      break;
    case 'list': {
      if (field.listKind === 'message') {
        value.len(nested(r, field.message, options, depth));
        wt = 2;
        break;
      }
      const packable = field.listKind === 'enum' || (field.scalar !== ScalarType.STRING && field.scalar !== ScalarType.BYTES);
      if (packable && r.chance(0.5)) {
        const packed = new Writer();
        const n = r.int(5);
        for (let i = 0; i < n; i++) {
          if (field.listKind === 'enum') enumValue(packed, r, field);
          else scalar(packed, r, field.scalar);
        }
        value.len(packed.bytes);
        w.tag(field.number, 2);
        w.raw(value.bytes);
        return;
      }
      wt = field.listKind === 'enum' ? enumValue(value, r, field) : scalar(value, r, field.scalar);
      // A packable list's wire type decides packing: never changed below.
      w.tag(field.number, wt);
      w.raw(value.bytes);
      return;
    }
    case 'map': {
      const entry = new Writer();
      const parts = r.int(4);
      for (let i = 0; i < parts; i++) {
        const part = r.int(10);
        if (part < 4) {
          const kw = new Writer();
          entry.tag(1, scalar(kw, r, field.mapKey));
          entry.raw(kw.bytes);
        } else if (part < 9) {
          const vw = new Writer();
          let vt: number;
          if (field.mapKind === 'message') {
            vw.len(nested(r, field.message, options, depth));
            vt = 2;
          } else if (field.mapKind === 'enum') vt = enumValue(vw, r, field);
          else vt = scalar(vw, r, field.scalar);
          entry.tag(2, vt);
          entry.raw(vw.bytes);
        } else unknownField(entry, r, 0);
      }
      value.len(entry.bytes);
      wt = 2;
      break;
    }
  }
  if (r.chance(options.wrongWireType)) wt = r.pick([0, 1, 2, 3, 4, 5].filter((t) => t !== wt));
  w.tag(field.number, wt);
  w.raw(value.bytes);
}

/** A mutation of valid bytes: truncated, a byte flipped, bytes inserted or deleted, or two messages joined. */
export function mutate(r: Rand, bytes: Buffer): Buffer {
  const b = [...bytes];
  switch (r.int(5)) {
    case 0:
      return Buffer.from(b.slice(0, r.int(b.length + 1)));
    case 1:
      if (b.length > 0) b[r.int(b.length)] = r.chance(0.5) ? r.int(256) : (b[r.int(b.length)] ?? 0) ^ (1 << r.int(8));
      return Buffer.from(b);
    case 2:
      b.splice(r.int(b.length + 1), 0, ...randomBytes(r, 1 + r.int(4)));
      return Buffer.from(b);
    case 3:
      b.splice(r.int(b.length + 1), 1 + r.int(3));
      return Buffer.from(b);
    default:
      return Buffer.concat([bytes, bytes.subarray(0, r.int(bytes.length + 1))]);
  }
}
