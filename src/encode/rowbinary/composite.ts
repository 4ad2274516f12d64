// Owns the Nullable, Array and Map column writers: RowBinary's null byte before a nullable value,
// varint element counts before arrays and maps. JSON arrays and objects are walked in place; an
// element's null becomes its type's zero unless the element type is nullable, as in ClickHouse.
import type { ColumnWriter } from './column-writer.ts';
import { isNull } from './column-writer.ts';
import { QUOTE, rawValueEnd, skipSpace, stringEnd, ValueError } from './json-text.ts';
import type { RowBuffer } from './row-buffer.ts';
import { writeJsonAsString } from './strings.ts';
import { putVarUInt, varUIntSize } from './row-buffer.ts';

export class NullableWriter implements ColumnWriter {
  readonly type: string;
  readonly nullable = true;
  readonly #inner: ColumnWriter;

  constructor(type: string, inner: ColumnWriter) {
    this.type = type;
    this.#inner = inner;
  }

  json(out: RowBuffer, src: Buffer, start: number, end: number): void {
    if (isNull(src, start, end)) {
      out.u8(1);
      return;
    }
    out.u8(0);
    this.#inner.json(out, src, start, end);
  }

  zero(out: RowBuffer): void {
    out.u8(1);
  }

  typeDefault(out: RowBuffer): void {
    out.u8(1);
  }
}

/** Writes one element or map value: null is the element type's zero unless it is nullable. */
function writeElement(out: RowBuffer, writer: ColumnWriter, src: Buffer, start: number, end: number): void {
  if (!writer.nullable && isNull(src, start, end)) writer.zero(out);
  else writer.json(out, src, start, end);
}

/**
 * The end of the value at `start` inside a container: its structure only — the element's writer
 * checks the content, and an object or array that is a String element is copied raw, its strings
 * not decoded (finding D3).
 */
function valueEnd(src: Buffer, start: number, end: number): number {
  return rawValueEnd(src, start, end);
}

/**
 * Writes a varint count at `at` for what was written after it: the count is known only after the
 * elements, so the elements are written after a 1-byte gap that is widened when needed.
 */
function patchCount(out: RowBuffer, at: number, count: number): void {
  const size = varUIntSize(count);
  if (size > 1) out.insertGap(at + 1, size - 1);
  putVarUInt(out.buf, at, count);
}

export class ArrayWriter implements ColumnWriter {
  readonly type: string;
  readonly nullable = false;
  readonly #element: ColumnWriter;

  constructor(type: string, element: ColumnWriter) {
    this.type = type;
    this.#element = element;
  }

  json(out: RowBuffer, src: Buffer, start: number, end: number): void {
    if (isNull(src, start, end)) return this.zero(out);
    if (src[start] !== 0x5b) throw new ValueError("Array does not start with '[' character");
    const at = out.pos;
    out.u8(0);
    let count = 0;
    let i = skipSpace(src, start + 1, end);
    if (src[i] !== 0x5d) {
      for (;;) {
        const valueStart = i;
        const valueStop = valueEnd(src, valueStart, end);
        writeElement(out, this.#element, src, valueStart, valueStop);
        count++;
        i = skipSpace(src, valueStop, end);
        if (src[i] === 0x2c) i = skipSpace(src, i + 1, end);
        else if (src[i] === 0x5d) break;
        else throw new ValueError(`Cannot read array from text, expected comma or end of array, found '${src.toString('utf8', i, i + 1)}'`);
      }
    }
    if (i + 1 !== end) throw new ValueError('Cannot read array from text');
    patchCount(out, at, count);
  }

  zero(out: RowBuffer): void {
    out.u8(0);
  }

  typeDefault(out: RowBuffer): void {
    out.u8(0);
  }
}

/** Map(String, V): a JSON object, keys unescaped, values as V; repeated keys are kept, in order. */
export class MapWriter implements ColumnWriter {
  readonly type: string;
  readonly nullable = false;
  readonly #value: ColumnWriter;

  constructor(type: string, value: ColumnWriter) {
    this.type = type;
    this.#value = value;
  }

  json(out: RowBuffer, src: Buffer, start: number, end: number): void {
    if (isNull(src, start, end)) return this.zero(out);
    if (src[start] !== 0x7b) throw new ValueError(`Cannot parse input: expected '{' before: '${src.toString('utf8', start, Math.min(end, start + 16))}'`);
    const at = out.pos;
    out.u8(0);
    let count = 0;
    let i = skipSpace(src, start + 1, end);
    if (src[i] !== 0x7d) {
      for (;;) {
        if (src[i] !== QUOTE) throw new ValueError('Cannot parse JSON string: expected opening quote');
        const keyEnd = stringEnd(src, i, end) + 1;
        writeJsonAsString(out, src, i, keyEnd);
        i = skipSpace(src, keyEnd, end);
        if (src[i] !== 0x3a) throw new ValueError(`Cannot parse input: expected ':' before: '${src.toString('utf8', i, i + 10)}'`);
        const valueStart = skipSpace(src, i + 1, end);
        const valueStop = valueEnd(src, valueStart, end);
        writeElement(out, this.#value, src, valueStart, valueStop);
        count++;
        i = skipSpace(src, valueStop, end);
        if (src[i] === 0x2c) i = skipSpace(src, i + 1, end);
        else if (src[i] === 0x7d) break;
        else throw new ValueError(`Cannot parse input: expected ',' or '}' before: '${src.toString('utf8', i, i + 10)}'`);
      }
    }
    if (i + 1 !== end) throw new ValueError('Cannot parse map');
    patchCount(out, at, count);
  }

  zero(out: RowBuffer): void {
    out.u8(0);
  }

  typeDefault(out: RowBuffer): void {
    out.u8(0);
  }
}
