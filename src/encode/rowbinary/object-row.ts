// Owns writing a field of an object row (decode/row.ts FieldValue: Protobuf's decoded values) into
// a column: the value is read as ClickHouse's JSON input would read the same field in the row's JSON
// form (ObjectRowType.toJson), so a typed row and its JSON twin land the same. The column's direct
// writer (field-writers.ts, chosen once per column writer) writes the common values; anything it
// declines is rendered as JSON text into a scratch and read by the column's JSON reader, which also
// refuses what ClickHouse would.
import { TimestampValue, type FieldValue } from '../../decode/row.ts';
import type { ColumnWriter } from './column-writer.ts';
import { fieldWriterFor, type FieldWriter } from './field-writers.ts';
import { RowBuffer } from './row-buffer.ts';

const scratch = new RowBuffer();
/** Direct writers by column writer, for callers that do not keep their own (fieldWriterFor). */
const fieldWriters = new WeakMap<ColumnWriter, FieldWriter>();

/** Writes a present field value (not undefined; null only to a nullable writer). */
export function writeFieldValue(out: RowBuffer, writer: ColumnWriter, value: FieldValue): void {
  let field = fieldWriters.get(writer);
  if (field === undefined) {
    field = fieldWriterFor(writer);
    fieldWriters.set(writer, field);
  }
  writeFieldWith(out, field, writer, value);
}

/** The same with the column's direct writer given (`field` = fieldWriterFor(writer), built once). */
export function writeFieldWith(out: RowBuffer, field: FieldWriter, writer: ColumnWriter, value: FieldValue): void {
  if (!field.write(out, value)) writeFieldAsJson(out, writer, value);
}

/** The JSON path: the value's JSON text read by the column's JSON reader (the reference for the direct writers). */
export function writeFieldAsJson(out: RowBuffer, writer: ColumnWriter, value: FieldValue): void {
  scratch.reset();
  render(scratch, value);
  writer.json(out, scratch.buf, 0, scratch.pos);
}

function put(out: RowBuffer, text: string): void {
  out.ensure(text.length * 3);
  out.pos += out.buf.write(text, out.pos, 'utf8');
}

/** Renders a field value as JSON text (64-bit integers exact, bytes as UTF-8 text, timestamps as UTC text). */
function render(out: RowBuffer, value: FieldValue): void {
  if (value === null || value === undefined) return put(out, 'null');
  switch (typeof value) {
    case 'string':
      return put(out, JSON.stringify(value));
    case 'number':
      if (Number.isFinite(value)) return put(out, String(value));
      return put(out, Number.isNaN(value) ? '"nan"' : value > 0 ? '"inf"' : '"-inf"');
    case 'bigint':
      return put(out, value.toString());
    case 'boolean':
      return put(out, value ? 'true' : 'false');
  }
  if (value instanceof Uint8Array) return put(out, JSON.stringify(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8')));
  if (value instanceof TimestampValue) return put(out, `"${timestampText(value)}"`);
  if (Array.isArray(value)) {
    put(out, '[');
    (value as readonly FieldValue[]).forEach((v, i) => {
      if (i > 0) put(out, ',');
      render(out, v);
    });
    return put(out, ']');
  }
  put(out, '{');
  let first = true;
  for (const [k, v] of Object.entries(value as { readonly [key: string]: FieldValue })) {
    if (v === undefined) continue;
    if (!first) put(out, ',');
    first = false;
    put(out, `${JSON.stringify(k)}:`);
    render(out, v);
  }
  put(out, '}');
}

/** `YYYY-MM-DD hh:mm:ss.nnnnnnnnn` in UTC. */
function timestampText(t: TimestampValue): string {
  const date = new Date(Number(t.seconds) * 1000);
  const iso = date.toISOString(); // 2023-10-04T07:53:29.000Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(t.nanos).padStart(9, '0')}`;
}
