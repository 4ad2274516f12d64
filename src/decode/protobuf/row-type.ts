// Owns what a decoded Protobuf message looks like to the stages after decode: one ObjectRowType per
// message type, with a reader per top-level field and a JSON writer per field, both built once from
// the descriptor (never per row). The values are @bufbuild/protobuf's plain message objects.
//
// Conventions (decode/row.ts), by field kind:
// - 64-bit integers: bigint (a `jstype = JS_STRING` field too); in JSON, bare numbers (ClickHouse
//   reads them exactly). Other numbers: number; a non-finite float is the JSON string "nan"/"inf".
// - enums: the value's name (an unknown number stays a number); ClickHouse Enum columns read names.
// - google.protobuf.Timestamp: a TimestampValue; in JSON `"YYYY-MM-DD HH:MM:SS.ffffff"` UTC (9
//   digits when below a microsecond), what DateTime64 columns parse under date_time_input_format=basic.
// - google.protobuf.*Value wrappers: the wrapped scalar; unset is absent (the column's DEFAULT).
// - presence: a field with explicit presence (`optional`, a message, a oneof member) that is unset
//   is absent: undefined, left out of the JSON, so the column takes its DEFAULT. A proto3 field
//   without presence always has a value (its zero when unset) and is always written.
// - nested messages: JSON text (these same conventions, proto field names); in the row's JSON they
//   are embedded objects, which a String column takes as text (input_format_json_read_objects_as_strings).
//   google.protobuf.Struct, Duration, Any and the other well-known types: their canonical JSON.
// - repeated: arrays (an empty one is `[]`); maps: plain objects keyed by the key's text.
// - bytes: Uint8Array; in JSON a string holding the bytes unchanged (only `"`, `\` and control bytes
//   escaped), so a String column receives them byte for byte.
import { ScalarType, toJson, type DescEnum, type DescField, type DescMessage, type Registry } from '@bufbuild/protobuf';
import { TimestampValue, type FieldReader, type FieldValue, type ObjectRowType } from '../row.ts';
import { JsonWriter } from './json-writer.ts';

/** Converts one local value (a field's, a list element's, a map value's) to a FieldValue. */
type Convert = (value: unknown) => FieldValue;
/** Writes one present local value as JSON. */
export type Write = (w: JsonWriter, value: unknown) => void;

interface FieldPlan {
  readonly name: string;
  /** `,"name":` as bytes; the first field written skips the comma. */
  readonly key: Buffer;
  readonly localName: string;
  /** The oneof's local name when the field is a member of one. */
  readonly oneof: string | undefined;
  readonly convert: Convert;
  readonly write: Write;
}

export const WRAPPERS: ReadonlySet<string> = new Set([
  'google.protobuf.DoubleValue',
  'google.protobuf.FloatValue',
  'google.protobuf.Int64Value',
  'google.protobuf.UInt64Value',
  'google.protobuf.Int32Value',
  'google.protobuf.UInt32Value',
  'google.protobuf.BoolValue',
  'google.protobuf.StringValue',
  'google.protobuf.BytesValue',
]);
export const TIMESTAMP = 'google.protobuf.Timestamp';

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** The row types of one schema source (a descriptor set, or one registry schema): one per message type. */
export class RowTypes {
  readonly #registry: Registry;
  readonly #types = new Map<DescMessage, ProtobufRowType>();
  /** Field plans per message type (shared by nested messages and recursion). */
  readonly #plans = new Map<DescMessage, readonly FieldPlan[]>();
  /** Scratch writer for nested messages read as JSON text. */
  readonly #nested = new JsonWriter();

  constructor(registry: Registry) {
    this.#registry = registry;
  }

  typeOf(desc: DescMessage): ProtobufRowType {
    let type = this.#types.get(desc);
    if (type === undefined) {
      type = new ProtobufRowType(desc, this.plansOf(desc));
      this.#types.set(desc, type);
    }
    return type;
  }

  plansOf(desc: DescMessage): readonly FieldPlan[] {
    let plans = this.#plans.get(desc);
    if (plans === undefined) {
      const list: FieldPlan[] = [];
      // Set before the fields are planned: a recursive message finds its (filling) list here.
      this.#plans.set(desc, list);
      for (const field of desc.fields) list.push(this.#plan(field));
      plans = list;
    }
    return plans;
  }

  #plan(field: DescField): FieldPlan {
    const key = Buffer.from(`,${JSON.stringify(field.name)}:`, 'utf8');
    const base = { name: field.name, key, localName: field.localName, oneof: field.oneof?.localName };
    switch (field.fieldKind) {
      case 'scalar':
        return { ...base, convert: scalarConvert(field.scalar), write: scalarWrite(field.scalar) };
      case 'enum':
        return { ...base, convert: enumConvert(field.enum), write: enumWrite(field.enum) };
      case 'message': {
        // Singular wrapper fields outside a oneof hold the wrapped scalar itself (protobuf-es).
        const unwrapped = field.oneof === undefined && WRAPPERS.has(field.message.typeName);
        // So does a singular Struct field: its JSON object.
        const jsonObject = field.oneof === undefined && field.message.typeName === 'google.protobuf.Struct';
        return { ...base, convert: this.#messageConvert(field.message, unwrapped, jsonObject), write: this.#messageWrite(field.message, unwrapped, jsonObject) };
      }
      case 'list': {
        const [convert, write] = this.#elements(field);
        return { ...base, convert: listConvert(convert), write: listWrite(write) };
      }
      case 'map': {
        const [convert, write] = this.#elements(field);
        return { ...base, convert: mapConvert(convert), write: mapWrite(write) };
      }
    }
  }

  /** The converter and writer of a list's elements or a map's values: a scalar, an enum or a message. */
  #elements(field: { readonly scalar: ScalarType | undefined; readonly enum: DescEnum | undefined; readonly message: DescMessage | undefined }): [Convert, Write] {
    if (field.scalar !== undefined) return [scalarConvert(field.scalar), scalarWrite(field.scalar)];
    if (field.enum !== undefined) return [enumConvert(field.enum), enumWrite(field.enum)];
    const message = field.message as DescMessage;
    return [this.#messageConvert(message, false, false), this.#messageWrite(message, false, false)];
  }

  #messageConvert(desc: DescMessage, unwrapped: boolean, jsonObject: boolean): Convert {
    if (desc.typeName === TIMESTAMP) return timestampConvert;
    if (WRAPPERS.has(desc.typeName)) {
      const inner = scalarConvert(wrappedScalar(desc));
      return unwrapped ? inner : (v) => (v === undefined ? undefined : inner((v as { value: unknown }).value));
    }
    if (jsonObject) return (v) => (v === undefined ? undefined : JSON.stringify(v));
    if (desc.typeName.startsWith('google.protobuf.')) {
      const registry = this.#registry;
      return (v) => (v === undefined ? undefined : JSON.stringify(toJson(desc, v as never, { registry })));
    }
    const writer = this.#nested;
    return (v) => {
      if (v === undefined) return undefined;
      // Empty first: a write that threw (a Timestamp out of range) leaves its part behind.
      writer.reset();
      this.writeMessage(writer, desc, v);
      return writer.takeString();
    };
  }

  #messageWrite(desc: DescMessage, unwrapped: boolean, jsonObject: boolean): Write {
    if (desc.typeName === TIMESTAMP) return (w, v) => w.timestamp((v as { seconds: bigint }).seconds, (v as { nanos: number }).nanos);
    if (WRAPPERS.has(desc.typeName)) {
      const inner = scalarWrite(wrappedScalar(desc));
      return unwrapped ? inner : (w, v) => inner(w, (v as { value: unknown }).value);
    }
    if (jsonObject) return (w, v) => w.text(JSON.stringify(v));
    if (desc.typeName.startsWith('google.protobuf.')) {
      const registry = this.#registry;
      return (w, v) => w.text(JSON.stringify(toJson(desc, v as never, { registry })));
    }
    return (w, v) => this.writeMessage(w, desc, v);
  }

  /** Writes a message as one JSON object (proto field names; absent fields left out). */
  writeMessage(w: JsonWriter, desc: DescMessage, message: unknown): void {
    writeFields(w, this.plansOf(desc), message as Record<string, unknown>);
  }
}

/** The ObjectRowType of one message type. */
export class ProtobufRowType implements ObjectRowType {
  readonly name: string;
  readonly fieldNames: readonly string[];
  readonly desc: DescMessage;
  readonly #plans: readonly FieldPlan[];
  readonly #readers = new Map<string, FieldReader>();
  readonly #writer = new JsonWriter();

  constructor(desc: DescMessage, plans: readonly FieldPlan[]) {
    this.desc = desc;
    this.name = desc.typeName;
    this.#plans = plans;
    this.fieldNames = plans.map((p) => p.name);
    for (const plan of plans) this.#readers.set(plan.name, readerOf(plan));
  }

  reader(fieldName: string): FieldReader | undefined {
    return this.#readers.get(fieldName);
  }

  toJson(values: object): Buffer {
    this.#writer.reset();
    writeFields(this.#writer, this.#plans, values as Record<string, unknown>);
    return this.#writer.take();
  }
}

function readerOf(plan: FieldPlan): FieldReader {
  const { localName, oneof, convert } = plan;
  if (oneof === undefined) return (values) => convert((values as Record<string, unknown>)[localName]);
  return (values) => {
    const choice = (values as Record<string, { case?: string; value?: unknown } | undefined>)[oneof];
    return choice?.case === localName ? convert(choice.value) : undefined;
  };
}

function writeFields(w: JsonWriter, plans: readonly FieldPlan[], values: Record<string, unknown>): void {
  w.byte(OPEN_BRACE);
  let first = true;
  for (const plan of plans) {
    let value: unknown;
    if (plan.oneof === undefined) value = values[plan.localName];
    else {
      const choice = values[plan.oneof] as { case?: string; value?: unknown } | undefined;
      value = choice?.case === plan.localName ? choice.value : undefined;
    }
    if (value === undefined) continue;
    if (first) {
      w.raw(plan.key.subarray(1));
      first = false;
    } else w.raw(plan.key);
    plan.write(w, value);
  }
  w.byte(CLOSE_BRACE);
}

function wrappedScalar(desc: DescMessage): ScalarType {
  const field = desc.fields[0];
  return field?.fieldKind === 'scalar' ? field.scalar : ScalarType.STRING;
}

function isInt64(scalar: ScalarType): boolean {
  return scalar === ScalarType.INT64 || scalar === ScalarType.UINT64 || scalar === ScalarType.SINT64 || scalar === ScalarType.FIXED64 || scalar === ScalarType.SFIXED64;
}

const identity: Convert = (v) => v as FieldValue;
const int64Convert: Convert = (v) => (typeof v === 'string' ? BigInt(v) : (v as bigint | undefined));
const timestampConvert: Convert = (v) => (v === undefined ? undefined : new TimestampValue((v as { seconds: bigint }).seconds, (v as { nanos: number }).nanos));

function scalarConvert(scalar: ScalarType): Convert {
  return isInt64(scalar) ? int64Convert : identity;
}

export function scalarWrite(scalar: ScalarType): Write {
  if (isInt64(scalar)) return (w, v) => w.text(String(v));
  switch (scalar) {
    case ScalarType.STRING:
      return (w, v) => w.string(v as string);
    case ScalarType.BYTES:
      return (w, v) => w.bytesString(v as Uint8Array);
    case ScalarType.BOOL:
      return (w, v) => w.text((v as boolean) ? 'true' : 'false');
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return writeFloat;
    default:
      return (w, v) => w.text(String(v));
  }
}

function writeFloat(w: JsonWriter, v: unknown): void {
  const n = v as number;
  if (Number.isFinite(n)) w.text(String(n));
  else w.text(Number.isNaN(n) ? '"nan"' : n > 0 ? '"inf"' : '"-inf"');
}

function enumConvert(desc: DescEnum): Convert {
  const names = enumNames(desc);
  return (v) => (v === undefined ? undefined : (names.get(v as number) ?? (v as number)));
}

function enumWrite(desc: DescEnum): Write {
  const names = new Map<number, string>();
  for (const [number, name] of enumNames(desc)) names.set(number, JSON.stringify(name));
  return (w, v) => w.text(names.get(v as number) ?? String(v));
}

function enumNames(desc: DescEnum): Map<number, string> {
  const names = new Map<number, string>();
  // With aliases (allow_alias), the first name of a number wins, as protoc's JSON does.
  for (const value of desc.values) if (!names.has(value.number)) names.set(value.number, value.name);
  return names;
}

function listConvert(element: Convert): Convert {
  return (v) => (v === undefined ? undefined : (v as readonly unknown[]).map(element));
}

export function listWrite(element: Write): Write {
  return (w, v) => {
    const list = v as readonly unknown[];
    w.byte(OPEN_BRACKET);
    for (let i = 0; i < list.length; i++) {
      if (i > 0) w.byte(COMMA);
      element(w, list[i]);
    }
    w.byte(CLOSE_BRACKET);
  };
}

function mapConvert(value: Convert): Convert {
  return (v) => {
    if (v === undefined) return undefined;
    const out: Record<string, FieldValue> = {};
    for (const [key, item] of Object.entries(v as Record<string, unknown>)) out[key] = value(item);
    return out;
  };
}

function mapWrite(value: Write): Write {
  return (w, v) => {
    w.byte(OPEN_BRACE);
    let first = true;
    for (const [key, item] of Object.entries(v as Record<string, unknown>)) {
      if (!first) w.byte(COMMA);
      first = false;
      w.string(key);
      w.byte(COLON);
      value(w, item);
    }
    w.byte(CLOSE_BRACE);
  };
}
