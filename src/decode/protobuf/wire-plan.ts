// Owns the plan of a message type for the wire walk (wire.ts): each field's number, position in the
// message, and what its values occupy on the wire by its declared type (K_*: varint, fixed width,
// UTF-8-checked text, bytes, nested message, map entry), whether a repeated field may be packed, the
// lookup by field number, and whether the walk can read a type at all (no group-encoded messages).
// Plans are built once per schema source (WirePlans), nested and recursive types included.
import { ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';

/** What a value occupies on the wire, by its declared type. */
export const K_VARINT = 0;
export const K_FIXED32 = 1;
export const K_FIXED64 = 2;
/** Length-delimited text checked to be UTF-8. */
export const K_STRING = 3;
/** Length-delimited bytes (and strings without UTF-8 validation). */
export const K_BYTES = 4;
export const K_MESSAGE = 5;
export const K_MAP = 6;

/** A field as the wire walk sees it. */
export interface WireField {
  readonly number: number;
  /** The field's position in its message's `fields`. */
  readonly index: number;
  readonly desc: DescField;
  /** The extent of a singular value or a list element (K_*). */
  readonly kind: number;
  /** A repeated scalar or enum: wire type 2 means packed. */
  readonly packable: boolean;
  readonly list: boolean;
  /** Message kinds: the nested plan (filled lazily: recursive types). */
  message: WirePlan | undefined;
  /** Maps: the key's and the value's kinds. */
  readonly mapKey: number;
  readonly mapValue: number;
}

/** A message type as the wire walk sees it: its fields and the lookup by field number. */
export class WirePlan {
  readonly desc: DescMessage;
  readonly fields: WireField[] = [];
  #dense: Int32Array = new Int32Array(0);
  readonly #sparse = new Map<number, number>();

  constructor(desc: DescMessage) {
    this.desc = desc;
  }

  /** Builds the field list (after the plan is registered: recursive types find it). */
  fill(plans: WirePlans): void {
    let max = 0;
    for (const f of this.desc.fields) max = Math.max(max, f.number);
    if (max <= 4096) this.#dense = new Int32Array(max + 1).fill(-1);
    this.desc.fields.forEach((f, index) => {
      const field = wireField(f, index, plans);
      this.fields.push(field);
      if (f.number < this.#dense.length) this.#dense[f.number] = index;
      else this.#sparse.set(f.number, index);
    });
  }

  /** The index of the field of that number, or -1. */
  indexOf(number: number): number {
    return number < this.#dense.length ? (this.#dense[number] ?? -1) : (this.#sparse.get(number) ?? -1);
  }
}

/** The plans of one schema source, one per message type. */
export class WirePlans {
  readonly #plans = new Map<DescMessage, WirePlan>();

  of(desc: DescMessage): WirePlan {
    let plan = this.#plans.get(desc);
    if (plan === undefined) {
      plan = new WirePlan(desc);
      this.#plans.set(desc, plan);
      plan.fill(this);
    }
    return plan;
  }
}

function wireField(f: DescField, index: number, plans: WirePlans): WireField {
  const base = { number: f.number, index, desc: f, message: undefined as WirePlan | undefined, mapKey: K_VARINT, mapValue: K_VARINT };
  switch (f.fieldKind) {
    case 'scalar':
      return { ...base, kind: scalarKind(f.scalar, f.utf8Validation), packable: false, list: false };
    case 'enum':
      return { ...base, kind: K_VARINT, packable: false, list: false };
    case 'message':
      return { ...base, kind: K_MESSAGE, packable: false, list: false, message: plans.of(f.message) };
    case 'list':
      if (f.listKind === 'message') return { ...base, kind: K_MESSAGE, packable: false, list: true, message: plans.of(f.message) };
      if (f.listKind === 'enum') return { ...base, kind: K_VARINT, packable: true, list: true };
      return { ...base, kind: scalarKind(f.scalar, f.utf8Validation), packable: f.scalar !== ScalarType.STRING && f.scalar !== ScalarType.BYTES, list: true };
    case 'map': {
      const mapValue = f.mapKind === 'message' ? K_MESSAGE : f.mapKind === 'enum' ? K_VARINT : scalarKind(f.scalar, f.utf8Validation);
      return {
        ...base,
        kind: K_MAP,
        packable: false,
        list: false,
        message: f.mapKind === 'message' ? plans.of(f.message) : undefined,
        mapKey: scalarKind(f.mapKey, f.utf8Validation),
        mapValue,
      };
    }
  }
}

export function scalarKind(scalar: ScalarType, utf8: boolean): number {
  switch (scalar) {
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.FLOAT:
      return K_FIXED32;
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
    case ScalarType.DOUBLE:
      return K_FIXED64;
    case ScalarType.STRING:
      return utf8 ? K_STRING : K_BYTES;
    case ScalarType.BYTES:
      return K_BYTES;
    default:
      return K_VARINT;
  }
}

/** Whether the walk can read every message reachable from this type (no groups: delimited encoding). */
export function wireReadable(desc: DescMessage, seen = new Set<DescMessage>()): boolean {
  if (seen.has(desc)) return true;
  seen.add(desc);
  for (const f of desc.fields) {
    let nested: DescMessage | undefined;
    if (f.fieldKind === 'message') {
      if (f.delimitedEncoding) return false;
      nested = f.message;
    } else if (f.fieldKind === 'list' && f.listKind === 'message') {
      if (f.delimitedEncoding) return false;
      nested = f.message;
    } else if (f.fieldKind === 'map' && f.mapKind === 'message') nested = f.message;
    if (nested !== undefined && !wireReadable(nested, seen)) return false;
  }
  return true;
}
