// Owns writing a wire row (wire-row-type.ts) as one JSON object for pass-through, without a message
// object: the same bytes row-type.ts's toJson writes from a `fromBinary` message (fields in
// declaration order, proto names, absent fields with presence left out, the same value texts).
// String and bytes fields are escaped straight from the record's bytes (no JS string in between);
// the other fields are read by their wire readers and written as row-type.ts writes their values.
// Built once per type, only when every field is of a kind read from the wire (scalars, enums,
// oneof scalars, Timestamp, wrappers, repeated scalars and enums); a type with nested messages,
// maps, repeated messages or other well-known types keeps `fromBinary` + row-type.ts for its JSON.
import { ScalarType, type DescField } from '@bufbuild/protobuf';
import { FeatureSet_FieldPresence } from '@bufbuild/protobuf/wkt';
import type { FieldReader, TimestampValue } from '../row.ts';
import type { JsonWriter } from './json-writer.ts';
import { listWrite, scalarWrite, TIMESTAMP, WRAPPERS, type Write } from './row-type.ts';
import { cur, varint32 } from './wire.ts';
import type { WireField } from './wire-plan.ts';
import type { WireMessage } from './wire-readers.ts';

/** Writes one field (`,"name":value`, no comma when first); returns whether it wrote it. */
type FieldJson = (w: JsonWriter, m: WireMessage, first: boolean) => boolean;

/** The JSON writer of a type's wire rows, or undefined when a field needs `fromBinary`. */
export function wireJsonWriter(fields: readonly WireField[], readers: ReadonlyMap<string, FieldReader>): ((w: JsonWriter, m: WireMessage) => void) | undefined {
  const writers: FieldJson[] = [];
  for (const field of fields) {
    const reader = readers.get(field.desc.name);
    const key = Buffer.from(`,${JSON.stringify(field.desc.name)}:`, 'utf8');
    const write = valueWrite(field.desc);
    if (reader === undefined || write === undefined) return undefined;
    writers.push(isPlainText(field.desc) ? textJson(field, key) : readJson(reader, key, write));
  }
  return (w, m) => {
    w.byte(0x7b);
    let first = true;
    for (let i = 0; i < writers.length; i++) if ((writers[i] as FieldJson)(w, m, first)) first = false;
    w.byte(0x7d);
  };
}

/** A singular string or bytes field outside a oneof: escaped from the bytes in place. */
function isPlainText(f: DescField): boolean {
  return f.fieldKind === 'scalar' && f.oneof === undefined && (f.scalar === ScalarType.STRING || f.scalar === ScalarType.BYTES);
}

function textJson(field: WireField, key: Buffer): FieldJson {
  const index = field.index;
  const implicit = field.desc.presence === FeatureSet_FieldPresence.IMPLICIT;
  const keyTail = key.subarray(1);
  return (w, m, first) => {
    const v = m.slab[m.base + index] ?? 0;
    if (v === 0 && !implicit) return false;
    w.raw(first ? keyTail : key);
    if (v === 0) {
      w.byte(0x22);
      w.byte(0x22);
      return true;
    }
    const buf = m.buf;
    cur.pos = m.start + (v > 0 ? v : -v) - 1;
    varint32(buf, m.end);
    const n = varint32(buf, m.end);
    w.bytesStringAt(buf, cur.pos, cur.pos + n);
    return true;
  };
}

function readJson(reader: FieldReader, key: Buffer, write: Write): FieldJson {
  const keyTail = key.subarray(1);
  return (w, m, first) => {
    const value = reader(m);
    if (value === undefined) return false;
    w.raw(first ? keyTail : key);
    write(w, value);
    return true;
  };
}

/** How row-type.ts writes the field's value, for the value its wire reader returns; undefined when not read from the wire. */
function valueWrite(f: DescField): Write | undefined {
  switch (f.fieldKind) {
    case 'scalar':
      return scalarWrite(f.scalar);
    case 'enum':
      return enumValueWrite();
    case 'message': {
      if (f.oneof !== undefined) return undefined;
      if (f.message.typeName === TIMESTAMP) return (w, v) => w.timestamp((v as TimestampValue).seconds, (v as TimestampValue).nanos);
      const inner = f.message.fields[0];
      if (WRAPPERS.has(f.message.typeName) && inner?.fieldKind === 'scalar') return scalarWrite(inner.scalar);
      return undefined;
    }
    case 'list':
      if (f.listKind === 'message') return undefined;
      return listWrite(f.listKind === 'enum' ? enumValueWrite() : scalarWrite(f.scalar));
    case 'map':
      return undefined;
  }
}

/** An enum value as its reader returns it: the name (quoted), or an unknown number. */
function enumValueWrite(): Write {
  const quoted = new Map<string, string>();
  return (w, v) => {
    if (typeof v !== 'string') return w.text(String(v));
    let text = quoted.get(v);
    if (text === undefined) {
      text = JSON.stringify(v);
      quoted.set(v, text);
    }
    w.text(text);
  };
}
