// Owns the neutral decoded row every stage after decode carries: either the producer's JSON object
// text (the JSON decoder passes bytes through, untouched), or an object row decoded from a typed
// format (Protobuf) whose field values are read through its type. Encoders take either: pass-through
// JSONEachRow writes JSON text (an object row's type renders it), the typed RowBinary encoder reads
// field values (from JSON text by scanning, from an object row through the type's readers).

/**
 * A timestamp of a typed field (google.protobuf.Timestamp, or an integer field the schema marks as
 * one): seconds since the epoch (UTC) and nanoseconds within the second.
 */
export class TimestampValue {
  readonly seconds: bigint;
  readonly nanos: number;

  constructor(seconds: bigint, nanos: number) {
    this.seconds = seconds;
    this.nanos = nanos;
  }
}

/**
 * What a field reader returns, by convention (the typed encoder converts it to the column's type as
 * ClickHouse's own JSON input would): `undefined` when the field is absent (the column's DEFAULT),
 * `null` for an explicit null, `string`, `number`, `bigint` (64-bit integers, exact), `boolean`,
 * `Uint8Array` (bytes, as String), `TimestampValue`, arrays of these, and plain objects with string
 * keys (maps). Enum fields are read as their names; nested messages as their JSON text (a string).
 */
export type FieldValue = undefined | null | string | number | bigint | boolean | Uint8Array | TimestampValue | readonly FieldValue[] | { readonly [key: string]: FieldValue };

/** Reads one top-level field of an object row's values. Built once per (type, field), never per row. */
export type FieldReader = (values: object) => FieldValue;

/** Where a TextReader puts a field's UTF-8 bytes: [start, end) of `buf`. Reused: read it at once. */
export interface TextSpan {
  buf: Buffer;
  start: number;
  end: number;
}

/**
 * Puts a singular string field's UTF-8 bytes in `out` and returns true — the same text its
 * FieldReader would return as a string, without making one — or returns false (the field is absent
 * or not readable so): its FieldReader then decides. Built once per (type, field), never per row.
 */
export type TextReader = (values: object, out: TextSpan) => boolean;

/** The type of object rows (one per message type): stable identity, so encoders cache per type. */
export interface ObjectRowType {
  /** The fully qualified type name (e.g. `posthog.Event`). */
  readonly name: string;
  /** The top-level field names as producers name them (Protobuf field names, snake_case). */
  readonly fieldNames: readonly string[];
  /** The reader of one top-level field, or undefined when the type has no such field. */
  reader(fieldName: string): FieldReader | undefined;
  /** A reader of the field's text as bytes, where the type has one (typed encoders copy them into String columns). */
  textReader?(fieldName: string): TextReader | undefined;
  /** The row as one JSON object (field names as above; 64-bit integers as numbers), for pass-through. */
  toJson(values: object): Buffer;
}

/** A row decoded from a typed format. */
export interface ObjectRow {
  readonly type: ObjectRowType;
  /** The decoded message; read only through `type`. */
  readonly values: object;
  /** Its size on the bus, in bytes: what it counts against the memory budget. */
  readonly size: number;
}

/** A decoded row: JSON object text (starts with `{`, ends with `}`), or an object row. */
export type Row = Buffer | ObjectRow;

/** The bytes a row counts against the memory budget. */
export function rowSize(row: Row): number {
  return Buffer.isBuffer(row) ? row.length : row.size;
}

/** The row as JSON object text (for pass-through JSON, dead-letter samples and error reports). */
export function rowJson(row: Row): Buffer {
  return Buffer.isBuffer(row) ? row : row.type.toJson(row.values);
}
