// Owns Protobuf rows read from the wire: a row's values are the message's bytes (the record's own
// Buffer, no copy) plus one int per top-level field in a shared slab — where the field's last
// occurrence is (its first, for repeated fields and maps), or that there were several — recorded by
// the one walk that also checks the whole message at decode time (wire.ts). The readers decode only
// the field asked for, straight from the bytes, and return exactly what row-type.ts's readers return
// from a `fromBinary` message (decode/row.ts conventions):
//
// - singular scalars and enums (last occurrence wins; an unset proto3 field reads as its zero, an
//   unset `optional` one as absent), oneof members (the member that came last), Timestamp and the
//   wrapper types (several occurrences merge, as protobuf specifies), repeated scalars and enums
//   (packed and unpacked, mixed), are read directly;
// - nested messages (JSON text), maps, repeated messages, other well-known types and oneof message
//   members are read by `fromBinary` over that field's occurrences alone (the same value by
//   construction, merges included): PostHog's schemas have none of these.
//
// `toJson` (pass-through) writes the JSON from the bytes where every field is of a kind above
// (wire-json.ts), else decodes the whole message with `fromBinary` and writes it as row-type.ts
// does. A type the walk cannot read (groups anywhere, proto2 and editions files, whose unset fields
// read as defaults) keeps the `fromBinary` row type (RowTypes.typeOf).
import { fromBinary, ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { Edition, FeatureSet_FieldPresence } from '@bufbuild/protobuf/wkt';
import type { FieldReader, ObjectRowType, TextReader } from '../row.ts';
import { JsonWriter } from './json-writer.ts';
import { TIMESTAMP, WRAPPERS, type ProtobufRowType, type RowTypes } from './row-type.ts';
import { wireJsonWriter } from './wire-json.ts';
import { checkPacked, checkValue, cur, skipUnknown, tag, WT_LEN } from './wire.ts';
import { K_MAP, wireReadable, WirePlans, type WireField, type WirePlan } from './wire-plan.ts';
import { enumConvert, listReader, moveOver, oneofScalarReader, scalarReader, scalarReadFn, stringTextReader, timestampReader, WireMessage, wrapperReader, zeroOf } from './wire-readers.ts';

export { WireMessage };

/**
 * Heap bytes of a row's values object (WireMessage) and its ObjectRow: 124 B measured (posthog.v1.Event
 * rows held, --expose-gc, heapUsed delta over 20,000 rows); its slab ints are counted apart (4 B each,
 * in ArrayBuffers). A posthog.v1.Event row: 128 + 96 B beyond its ~1,014 B on the wire (~1.22×), where
 * its `fromBinary` message took 2,214 B of heap (3× in all).
 */
const WIRE_ROW_BYTES = 128;
/** Ints per slab: slabs are shared by the rows decoded one after another, and freed with the last. */
const SLAB_INTS = 16 * 1024;

/** The row types of one schema source: wire rows where the type allows, else `fromBinary` rows. */
export class WireRowTypes {
  readonly objects: RowTypes;
  readonly #plans = new WirePlans();
  readonly #types = new Map<DescMessage, WireRowType | ProtobufRowType>();

  constructor(objects: RowTypes) {
    this.objects = objects;
  }

  typeOf(desc: DescMessage): WireRowType | ProtobufRowType {
    let type = this.#types.get(desc);
    if (type === undefined) {
      const objects = this.objects.typeOf(desc);
      type = wireSupported(desc) ? new WireRowType(desc, objects, this.#plans) : objects;
      this.#types.set(desc, type);
    }
    return type;
  }
}

/** Whether rows of this type can be read from the wire (else the `fromBinary` row type is used). */
export function wireSupported(desc: DescMessage): boolean {
  return desc.file.edition === Edition.EDITION_PROTO3 && wireReadable(desc);
}

/** The ObjectRowType of wire rows of one message type. */
export class WireRowType implements ObjectRowType {
  readonly name: string;
  readonly fieldNames: readonly string[];
  readonly desc: DescMessage;
  /** The row type over `fromBinary` messages: toJson and the readers of rare field kinds. */
  readonly objects: ProtobufRowType;
  readonly #plan: WirePlan;
  readonly #readers = new Map<string, FieldReader>();
  readonly #texts = new Map<string, TextReader>();
  #slab: Int32Array;
  #slabPos = 0;
  readonly #width: number;
  /** Writes a row's JSON from its bytes; undefined when a field needs `fromBinary` (wire-json.ts). */
  readonly #json: ((w: JsonWriter, m: WireMessage) => void) | undefined;
  readonly #writer = new JsonWriter();

  constructor(desc: DescMessage, objects: ProtobufRowType, plans: WirePlans) {
    this.desc = desc;
    this.name = desc.typeName;
    this.objects = objects;
    this.fieldNames = objects.fieldNames;
    this.#plan = plans.of(desc);
    this.#width = Math.max(1, desc.fields.length);
    this.#slab = new Int32Array(Math.max(SLAB_INTS, this.#width));
    for (const field of this.#plan.fields) {
      this.#readers.set(field.desc.name, this.#readerOf(field));
      const f = field.desc;
      // Singular strings outside a oneof: their bytes are the String column's value as they are.
      if (f.fieldKind === 'scalar' && f.scalar === ScalarType.STRING && f.oneof === undefined) {
        this.#texts.set(f.name, stringTextReader(field, f.presence === FeatureSet_FieldPresence.IMPLICIT));
      }
    }
    this.#json = wireJsonWriter(this.#plan.fields, this.#readers);
  }

  /** Heap bytes a row holds beyond its record's bytes: its values object and its index slots. */
  get rowOverhead(): number {
    return WIRE_ROW_BYTES + 4 * this.#width;
  }

  /** Whether toJson writes from the bytes (else through `fromBinary`). */
  get jsonFromWire(): boolean {
    return this.#json !== undefined;
  }

  reader(fieldName: string): FieldReader | undefined {
    return this.#readers.get(fieldName);
  }

  textReader(fieldName: string): TextReader | undefined {
    return this.#texts.get(fieldName);
  }

  toJson(values: object): Buffer {
    const m = values as WireMessage;
    if (this.#json !== undefined) {
      // Empty first: a write that threw (a Timestamp out of range) leaves its part behind.
      this.#writer.reset();
      this.#json(this.#writer, m);
      return this.#writer.take();
    }
    return this.objects.toJson(fromBinary(this.desc, m.buf.subarray(m.start, m.end), { readUnknownFields: false }));
  }

  /**
   * Checks the message in `buf` [start, end) and records its fields: the row's values. Throws a
   * DecodeError (INSERTER_DECODE_BAD_PROTOBUF) when the bytes are not a message of this type.
   */
  read(buf: Buffer, start: number, end: number): WireMessage {
    const width = this.#width;
    if (this.#slabPos + width > this.#slab.length) {
      this.#slab = new Int32Array(this.#slab.length);
      this.#slabPos = 0;
    }
    const slab = this.#slab;
    const base = this.#slabPos;
    slab.fill(0, base, base + width);
    const plan = this.#plan;
    cur.pos = start;
    cur.limit = end;
    while (cur.pos < end) {
      const at = cur.pos;
      const t = tag(buf, end);
      const index = plan.indexOf(t >>> 3);
      if (index < 0) {
        skipUnknown(buf, end, t & 7, t >>> 3, 99);
        continue;
      }
      const field = plan.fields[index] as WireField;
      if (field.packable && (t & 7) === WT_LEN) checkPacked(field, buf, end);
      else checkValue(field, field.kind, buf, end, 1);
      const slot = base + index;
      const previous = slab[slot] ?? 0;
      // 1 + the tag's offset: the last occurrence (negated when there were several); the first of a list or map.
      if (previous === 0) slab[slot] = at - start + 1;
      else if (!field.list && field.kind !== K_MAP) slab[slot] = -(at - start + 1);
    }
    this.#slabPos = base + width;
    return new WireMessage(buf, start, end, slab, base);
  }

  #readerOf(field: WireField): FieldReader {
    const f = field.desc;
    const objectReader = this.objects.reader(f.name);
    if (objectReader === undefined) throw new Error(`no reader for ${f.name}`);
    const fallback = (): FieldReader => this.#fallbackReader(field, objectReader);
    switch (f.fieldKind) {
      case 'scalar':
      case 'enum': {
        const convert = f.fieldKind === 'enum' ? enumConvert(f) : scalarReadFn(f.scalar);
        if (f.oneof !== undefined) return oneofScalarReader(field, this.#oneofMembers(f), convert);
        const zero = f.presence === FeatureSet_FieldPresence.IMPLICIT ? zeroOf(f) : undefined;
        return scalarReader(field, convert, zero);
      }
      case 'message':
        if (f.oneof !== undefined) return fallback();
        if (f.message.typeName === TIMESTAMP) return timestampReader(field, this.#plan);
        if (WRAPPERS.has(f.message.typeName)) return wrapperReader(field, this.#plan);
        return fallback();
      case 'list':
        if (f.listKind === 'message') return fallback();
        return listReader(field, this.#plan, f.listKind === 'enum' ? enumConvert(f) : scalarReadFn(f.scalar));
      case 'map':
        return fallback();
    }
  }

  #oneofMembers(f: DescField): Int32Array {
    return Int32Array.from((f.oneof?.fields ?? []).map((m) => this.#plan.fields.findIndex((w) => w.desc === m)));
  }

  /** fromBinary over this field's occurrences (and its oneof's), then the object reader. */
  #fallbackReader(field: WireField, objectReader: FieldReader): FieldReader {
    const plan = this.#plan;
    const desc = this.desc;
    const numbers = new Set((field.desc.oneof?.fields ?? [field.desc]).map((m) => m.number));
    return (values) => {
      const m = values as WireMessage;
      const parts: Buffer[] = [];
      const buf = m.buf;
      cur.pos = m.start;
      while (cur.pos < m.end) {
        const at = cur.pos;
        const t = tag(buf, m.end);
        moveOver(plan, t, buf, m.end);
        if (numbers.has(t >>> 3)) parts.push(buf.subarray(at, cur.pos));
      }
      return objectReader(fromBinary(desc, parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts), { readUnknownFields: false }));
    };
  }
}
