// Owns the typed encoder: RowBinaryWithDefaults for a table's live columns, one column writer per
// type built once per schema version. A JSON row is scanned once: each top-level key is matched to
// its column by a prebuilt lookup (by byte length, then bytes), unknown keys are checked the way
// ClickHouse skips them, and the columns are then written in table order — a missing field as
// "use the default" (ClickHouse computes the DEFAULT expression), null as ClickHouse's
// input_format_null_as_default would. The result is the row ClickHouse's own JSONEachRow input
// would give (docs/design/typed-encoding.md); a value it would refuse throws an EncodeError.
import type { ColumnInfo } from '../../sink/types.ts';
import type { FieldReader, FieldValue, ObjectRow, ObjectRowType, Row, TextReader, TextSpan } from '../../decode/row.ts';
import type { SourceRecord } from '../../source/types.ts';
import { EncodeError } from '../../errors/inserter-error.ts';
import type { ByteSink } from '../byte-chunks.ts';
import type { RowEncoder } from '../types.ts';
import type { ColumnWriter } from './column-writer.ts';
import { isNull } from './column-writer.ts';
import { endOfValue, JsonScanError } from '../../decode/json-scan.ts';
import { loadRow, readStringFast } from '../../decode/json-wasm.ts';
import { QUOTE, checkSkipped, hasNoEscape, readStringInto, skipSpace, stringEnd, unescape, unescaped, ValueError } from './json-text.ts';
import { writeMetadata, type MetadataName } from './metadata.ts';
import { fieldWriterFor, type FieldWriter } from './field-writers.ts';
import { writeFieldWith } from './object-row.ts';
import { RowBuffer } from './row-buffer.ts';
import { StringWriter } from './strings.ts';
import { writerFor, type WriterOptions } from './writers.ts';

/** Why a table's live schema cannot be encoded typed: names the column and its type. */
export interface Uncovered {
  readonly uncovered: string;
}

export interface TypedEncoderOptions {
  /** The server's time zone (`SELECT timezone()`), for DateTime columns without their own; default UTC. */
  readonly serverTimezone?: string;
}

/** Key positions whose column is remembered from the last row. */
const PREDICTED = 64;

const METADATA = new Set<string>(['_topic', '_partition', '_offset', '_key', '_timestamp', '_timestamp_ms', '_headers.name', '_headers.value']);

interface Column {
  readonly name: string;
  readonly writer: ColumnWriter;
  /** The writer of object-row field values (fieldWriterFor(writer)): declined ones take the JSON path. */
  readonly field: FieldWriter;
  /** DEFAULT expression: a missing field or a null is sent as "use the default". */
  readonly hasDefaultExpression: boolean;
  /** Filled from the source record, not from the row. */
  readonly metadata: MetadataName | undefined;
  /** A String (or LowCardinality(String)) column: a string value is unescaped while the row is scanned. */
  readonly direct: boolean;
}

/** The typed encoder for `columns`, or why it cannot be exact for them. */
export function typedEncoderFor(columns: readonly ColumnInfo[], options: TypedEncoderOptions = {}): RowEncoder | Uncovered {
  const writerOptions: WriterOptions = { serverTimezone: options.serverTimezone ?? 'UTC' };
  const built: Column[] = [];
  const names = new Set(columns.map((c) => c.name));
  const headers = names.has('_headers.name') && names.has('_headers.value');
  for (const c of columns) {
    // MATERIALIZED and ALIAS columns take no value; EPHEMERAL ones are not read by JSONEachRow
    // without a column list either (their fields are skipped as unknown), so none is sent.
    if (c.defaultKind === 'MATERIALIZED' || c.defaultKind === 'ALIAS' || c.defaultKind === 'EPHEMERAL') continue;
    const writer = writerFor(c.type, writerOptions);
    if (typeof writer === 'string') return { uncovered: `column ${c.name} ${c.type}: ${writer}` };
    const isMeta = METADATA.has(c.name) && (!c.name.startsWith('_headers.') || headers);
    built.push({
      name: c.name,
      writer,
      field: fieldWriterFor(writer),
      hasDefaultExpression: c.defaultKind === 'DEFAULT',
      metadata: isMeta ? (c.name as MetadataName) : undefined,
      direct: writer instanceof StringWriter,
    });
  }
  if (built.length === 0) return { uncovered: 'the table has no insertable column' };
  return new TypedEncoder(built);
}

class TypedEncoder implements RowEncoder {
  readonly format = 'RowBinaryWithDefaults';
  readonly columns: readonly string[];
  readonly #columns: readonly Column[];
  /** Columns by the byte length of their name, then name bytes. */
  readonly #byLength: (readonly [Buffer, number][] | undefined)[] = [];
  /** The same with ASCII letters lower-cased: ClickHouse's fallback when no name matches exactly. */
  readonly #byLengthLower: (readonly [Buffer, number][] | undefined)[] = [];
  readonly #wrap: number;
  readonly #team: number;
  readonly #metadataCount: number;
  readonly #starts: Int32Array;
  readonly #ends: Int32Array;
  /** String columns' values unescaped during the scan: offset into #strings (-1: none) and length. */
  readonly #strOffsets: Int32Array;
  readonly #strLengths: Int32Array;
  readonly #strings = new RowBuffer();
  /** Column names' bytes, by column index. */
  readonly #names: readonly Buffer[];
  /** By a key's position in the row, the column it named in the last row (-1: none). */
  readonly #predicted = new Int32Array(PREDICTED).fill(-1);
  readonly #row = new RowBuffer();
  /** By row type, by column index: the field readers, and the text readers of String columns (their bytes copied as they are). */
  readonly #readers = new Map<ObjectRowType, { readonly fields: readonly (FieldReader | undefined)[]; readonly texts: readonly (TextReader | undefined)[] }>();
  readonly #span: TextSpan = { buf: Buffer.alloc(0), start: 0, end: 0 };

  constructor(columns: readonly Column[]) {
    this.#columns = columns;
    this.columns = columns.map((c) => c.name);
    this.#starts = new Int32Array(columns.length);
    this.#ends = new Int32Array(columns.length);
    this.#names = columns.map((c) => Buffer.from(c.name, 'utf8'));
    this.#strOffsets = new Int32Array(columns.length);
    this.#strLengths = new Int32Array(columns.length);
    columns.forEach((c, index) => {
      const bytes = Buffer.from(c.name, 'utf8');
      const list = (this.#byLength[bytes.length] ??= []) as [Buffer, number][];
      list.push([bytes, index]);
      const lower = Buffer.from(bytes);
      for (let k = 0; k < lower.length; k++) lower[k] = asciiLower(lower[k] as number);
      const lowerList = (this.#byLengthLower[bytes.length] ??= []) as [Buffer, number][];
      lowerList.push([lower, index]);
    });
    this.#wrap = columns.findIndex((c) => c.name === '_message');
    this.#team = this.#wrap >= 0 ? columns.findIndex((c) => c.name === 'team_id') : -1;
    this.#metadataCount = columns.filter((c) => c.metadata !== undefined).length;
  }

  write(out: ByteSink, record: SourceRecord, row: Row, teamId: number | undefined): void {
    const buf = this.#row;
    buf.reset();
    if (Buffer.isBuffer(row)) this.#writeJson(buf, record, row, teamId);
    else this.#writeObject(buf, record, row, teamId);
    if (out.writeRange !== undefined) out.writeRange(buf.buf, 0, buf.pos);
    else out.writeBytes(Buffer.from(buf.buf.subarray(0, buf.pos)));
  }

  /**
   * The column a key names: its exact name, else (ClickHouse's fallback) the one name equal to it
   * ignoring ASCII case — two such names are an error ("Ambiguous field"; finding D1). -1: none.
   */
  /** Whether column `index` is named exactly [start, end) of `src`. */
  #isName(index: number, src: Buffer, start: number, end: number): boolean {
    const name = this.#names[index] as Buffer;
    const n = end - start;
    if (name.length !== n) return false;
    let k = 0;
    while (k < n && name[k] === src[start + k]) k++;
    return k === n;
  }

  #lookup(src: Buffer, start: number, end: number): number {
    const n = end - start;
    const list = this.#byLength[n];
    if (list === undefined) return -1;
    // A byte loop: names are short, and Buffer.compare with ranges costs more than it saves.
    for (const [name, index] of list) {
      let k = 0;
      while (k < n && name[k] === src[start + k]) k++;
      if (k === n) return index;
    }
    let found = -1;
    for (const [name, index] of this.#byLengthLower[n] as readonly [Buffer, number][]) {
      let k = 0;
      while (k < n && name[k] === asciiLower(src[start + k] as number)) k++;
      if (k !== n) continue;
      if (found >= 0) {
        throw new EncodeError('INSERTER_ENCODE_REJECTED', `ClickHouse would reject the row: Ambiguous field (\`${src.toString('utf8', start, end)}\`) when processing data`);
      }
      found = index;
    }
    return found;
  }

  #writeJson(buf: RowBuffer, record: SourceRecord, json: Buffer, teamId: number | undefined): void {
    const starts = this.#starts;
    const ends = this.#ends;
    const strOffsets = this.#strOffsets;
    starts.fill(-1);
    strOffsets.fill(-1);
    this.#strings.reset();
    if (this.#wrap >= 0) {
      starts[this.#wrap] = 0;
      ends[this.#wrap] = json.length;
    } else {
      try {
        this.#scan(json);
      } catch (error) {
        // A key ClickHouse cannot read (a bad escape, finding D11) refuses the row like a value.
        if (!(error instanceof ValueError) && !(error instanceof JsonScanError)) throw error;
        throw new EncodeError('INSERTER_ENCODE_REJECTED', `ClickHouse would reject the row: ${error.message}`);
      }
    }
    const columns = this.#columns;
    for (let k = 0; k < columns.length; k++) {
      const column = columns[k] as Column;
      if (column.metadata !== undefined) {
        this.#metadata(buf, column, column.metadata, record);
        continue;
      }
      if (k === this.#team && teamId !== undefined) {
        this.#fieldValue(buf, column, teamId);
        continue;
      }
      const offset = strOffsets[k] as number;
      if (offset >= 0) {
        buf.u8(0);
        buf.string(this.#strings.buf, offset, offset + (this.#strLengths[k] as number));
        continue;
      }
      const start = starts[k] as number;
      if (start < 0) {
        this.#absent(buf, column);
        continue;
      }
      const end = ends[k] as number;
      if (!column.writer.nullable && isNull(json, start, end)) {
        this.#null(buf, column);
        continue;
      }
      buf.u8(0);
      try {
        column.writer.json(buf, json, start, end);
      } catch (error) {
        throw this.#rejected(column, json, start, end, error);
      }
    }
  }

  /** A missing field: the DEFAULT expression, else the type's default value. */
  #absent(buf: RowBuffer, column: Column): void {
    if (column.hasDefaultExpression) buf.u8(1);
    else {
      buf.u8(0);
      column.writer.typeDefault(buf);
    }
  }

  /** JSON null for a column that cannot hold it (input_format_null_as_default=1). */
  #null(buf: RowBuffer, column: Column): void {
    if (column.hasDefaultExpression) buf.u8(1);
    else {
      buf.u8(0);
      column.writer.zero(buf);
    }
  }

  /**
   * A Kafka metadata column's value, from the record. A record without a time (Kafka's -1) has JSON
   * null in its timestamp columns, as pass-through writes it: NULL, or what null gives a column that
   * cannot hold it.
   */
  #metadata(buf: RowBuffer, column: Column, metadata: NonNullable<Column['metadata']>, record: SourceRecord): void {
    if (record.timestamp < 0n && (metadata === '_timestamp' || metadata === '_timestamp_ms')) {
      if (!column.writer.nullable) return this.#null(buf, column);
      buf.u8(0);
      column.writer.zero(buf);
      return;
    }
    buf.u8(0);
    try {
      writeMetadata(buf, metadata, column.writer, record);
    } catch (error) {
      throw this.#rejected(column, undefined, -1, -1, error);
    }
  }

  /** A value read from an object row (or the team id), not JSON text. */
  #fieldValue(buf: RowBuffer, column: Column, value: FieldValue): void {
    buf.u8(0);
    try {
      writeFieldWith(buf, column.field, column.writer, value);
    } catch (error) {
      throw this.#rejected(column, undefined, -1, -1, error);
    }
  }

  #rejected(column: Column, src: Buffer | undefined, start: number, end: number, error: unknown): Error {
    if (!(error instanceof ValueError)) return error instanceof Error ? error : new Error(String(error));
    const excerpt = src === undefined || start < 0 ? '(metadata)' : src.toString('utf8', start, Math.min(end, start + 80)) + (end - start > 80 ? '…' : '');
    return new EncodeError('INSERTER_ENCODE_REJECTED', `ClickHouse would reject the row: column ${column.name} (${column.writer.type}), value ${excerpt}: ${error.message}`, {
      details: { column: column.name, type: column.writer.type },
    });
  }

  /** Finds each known key's value range; checks unknown keys' values as ClickHouse's skip would. */
  #scan(json: Buffer): void {
    const end = json.length - 1; // the closing brace
    let i = skipSpace(json, 1, end);
    const starts = this.#starts;
    const ends = this.#ends;
    // Metadata columns are spliced in by pass-through too: the same key in the message repeats them.
    const columns = this.#columns;
    // Once every column has its value, ClickHouse (input_format_json_ignore_unnecessary_fields=1)
    // skips the remaining fields like unknown ones: a repeated key there is no longer an error.
    let seen = this.#metadataCount;
    const fast = loadRow(json); // String values are unescaped by WebAssembly from a copy (decode/json-wasm.ts)
    for (let ordinal = 0; i < end; ordinal++) {
      const keyEnd = stringEnd(json, i, end);
      let index = -1;
      // Once every column has its value the key is read but not looked up (skipped as unknown).
      if (hasNoEscape(json, i, keyEnd + 1)) {
        if (seen < columns.length) {
          // Producers write their fields in the same order row after row: the column the key in
          // this position named last time is tried first (as ClickHouse does).
          const guess = ordinal < PREDICTED ? (this.#predicted[ordinal] as number) : -1;
          if (guess >= 0 && this.#isName(guess, json, i + 1, keyEnd)) index = guess;
          else {
            index = this.#lookup(json, i + 1, keyEnd);
            if (ordinal < PREDICTED) this.#predicted[ordinal] = index;
          }
        }
      } else {
        const length = unescape(json, i, keyEnd + 1);
        if (seen < columns.length) index = this.#lookup(unescaped(), 0, length);
      }
      i = skipSpace(json, keyEnd + 1, end);
      i = skipSpace(json, i + 1, end); // the colon (the decoder checked it)
      const valueStart = i;
      let valueEnd: number;
      if (index >= 0 && json[valueStart] === QUOTE && (columns[index] as Column).direct) {
        // A String column's string: unescaped now, in the same pass that finds its end.
        const strings = this.#strings;
        const offset = strings.pos;
        try {
          valueEnd = fast ? readStringFast(json, valueStart, end, strings) : -1;
          if (valueEnd < 0) valueEnd = readStringInto(json, valueStart, end, strings); // the JavaScript form decides
        } catch (error) {
          throw this.#rejected(columns[index] as Column, json, valueStart, Math.min(end, valueStart + 81), error);
        }
        this.#strOffsets[index] = offset;
        this.#strLengths[index] = strings.pos - offset;
      } else {
        valueEnd = endOfValue(json, valueStart);
        if (valueEnd > end) throw new ValueError('Cannot parse input: the object ends inside a value'); // it took the row's closing brace
      }
      if (index >= 0) {
        const column = columns[index] as Column;
        if ((starts[index] as number) >= 0 || column.metadata !== undefined || index === this.#team) {
          throw new EncodeError('INSERTER_ENCODE_REJECTED', `ClickHouse would reject the row: Duplicate field found while parsing JSONEachRow format: ${column.name}`, {
            details: { column: column.name },
          });
        }
        starts[index] = valueStart;
        ends[index] = valueEnd;
        seen++;
      } else {
        try {
          checkSkipped(json, valueStart, valueEnd);
        } catch (error) {
          if (!(error instanceof ValueError)) throw error;
          const key = json.toString('utf8', valueStart, Math.min(valueEnd, valueStart + 80));
          throw new EncodeError('INSERTER_ENCODE_REJECTED', `ClickHouse would reject the row: a field no column takes has a value it cannot skip (${key}): ${error.message}`);
        }
      }
      i = skipSpace(json, valueEnd, end);
      if (json[i] === 0x2c) i = skipSpace(json, i + 1, end);
    }
  }

  #writeObject(buf: RowBuffer, record: SourceRecord, row: ObjectRow, teamId: number | undefined): void {
    let cached = this.#readers.get(row.type);
    if (cached === undefined) {
      const type = row.type;
      cached = {
        fields: this.#columns.map((c) => type.reader(c.name)),
        texts: this.#columns.map((c) => (c.direct && c.metadata === undefined ? type.textReader?.(c.name) : undefined)),
      };
      this.#readers.set(type, cached);
    }
    const { fields: readers, texts } = cached;
    const span = this.#span;
    const columns = this.#columns;
    if (this.#wrap >= 0) {
      this.#writeJson(buf, record, row.type.toJson(row.values), teamId);
      return;
    }
    for (let k = 0; k < columns.length; k++) {
      const column = columns[k] as Column;
      if (column.metadata !== undefined) {
        this.#metadata(buf, column, column.metadata, record);
        continue;
      }
      const text = texts[k];
      if (text !== undefined && text(row.values, span)) {
        buf.u8(0);
        buf.string(span.buf, span.start, span.end);
        continue;
      }
      const value = readers[k]?.(row.values);
      if (value === undefined) this.#absent(buf, column);
      else if (value === null && !column.writer.nullable) this.#null(buf, column);
      else this.#fieldValue(buf, column, value);
    }
  }
}

function asciiLower(b: number): number {
  return b >= 0x41 && b <= 0x5a ? b + 0x20 : b;
}
