// Owns the JSONEachRow line for one row of one destination table: the producer's JSON object,
// passed through byte for byte, with the Kafka metadata columns the live table has spliced in front
// (`{"_offset":1,"_timestamp":2,` + original without its `{`). Which metadata columns exist is read
// from the table's live schema, never from code.
import { isUtf8 } from 'node:buffer';
import type { ColumnInfo } from '../sink/types.ts';
import type { Row } from '../decode/row.ts';
import type { SourceRecord } from '../source/types.ts';
import type { ByteSink } from './byte-chunks.ts';
import type { RowEncoder } from './types.ts';

/** Metadata columns the Kafka table engine exposes; filled when the destination table has them. */
export const metadataColumnNames = ['_topic', '_partition', '_offset', '_key', '_timestamp', '_timestamp_ms', '_headers.name', '_headers.value'] as const;

export interface RowShape {
  readonly topic: boolean;
  readonly partition: boolean;
  readonly offset: boolean;
  readonly key: boolean;
  readonly timestamp: boolean;
  readonly timestampMs: boolean;
  readonly headers: boolean;
  /** When set, the whole message goes into this column (a JSON column) instead of top-level fields. */
  readonly wrapColumn: string | undefined;
  /** With wrapColumn: the team id column to fill alongside, if the table has one. */
  readonly teamColumn: string | undefined;
}

/** Derives what to write from the live columns. `_message` (JSON or String) receives the whole message. */
export function rowShapeFor(columns: readonly ColumnInfo[]): RowShape {
  const insertable = new Map<string, string>();
  for (const c of columns) if (c.defaultKind !== 'MATERIALIZED' && c.defaultKind !== 'ALIAS') insertable.set(c.name, c.type);
  const wrap = insertable.has('_message') ? '_message' : undefined;
  return {
    topic: insertable.has('_topic'),
    partition: insertable.has('_partition'),
    offset: insertable.has('_offset'),
    key: insertable.has('_key'),
    timestamp: insertable.has('_timestamp'),
    timestampMs: insertable.has('_timestamp_ms'),
    headers: insertable.has('_headers.name') && insertable.has('_headers.value'),
    wrapColumn: wrap,
    teamColumn: wrap !== undefined && insertable.has('team_id') ? 'team_id' : undefined,
  };
}

/** The fixed bytes of a metadata field, written with no string made per row. */
const OPEN = Buffer.from('{');
const COMMA = Buffer.from(',');
const CLOSE_LINE = Buffer.from('}\n');
const NEWLINE = Buffer.from('\n');
const QUOTE = Buffer.from('"');
const DOT = Buffer.from('.');
const PARTITION_KEY = Buffer.from('"_partition":');
const OFFSET_KEY = Buffer.from('"_offset":');
const KEY_KEY = Buffer.from('"_key":');
const TIMESTAMP_KEY = Buffer.from('"_timestamp":');
const TIMESTAMP_MS_KEY = Buffer.from('"_timestamp_ms":');
const NULL = Buffer.from('null');
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** `"_topic":"…"` per topic name: a process reads a handful of topics, each row writes its bytes. */
const topicFields = new Map<string, Buffer>();

/**
 * Writes one JSONEachRow line (with trailing newline) into `out`. `json` starts with `{`.
 * Metadata strings are ASCII except `_key`/headers/topic: `_key` and headers keep their bytes
 * (jsonStringOf), as ClickHouse's Kafka engine stores them. The common fields (topic, partition,
 * offset, timestamps) are written as bytes and digits: building them as a string cost ~390 B of
 * heap per row (docs/benchmarks.md, session 15).
 */
export function writeRow(out: ByteSink, shape: RowShape, record: SourceRecord, json: Buffer, teamId: number | undefined): void {
  // Fields are joined by a comma written before each one but the first.
  let fields = 0;
  if (shape.topic) {
    out.writeBytes(OPEN);
    out.writeBytes(topicField(record.topic));
    fields++;
  }
  if (shape.partition) {
    out.writeBytes(fields++ === 0 ? OPEN : COMMA);
    out.writeBytes(PARTITION_KEY);
    out.writeDecimal(record.partition);
  }
  if (shape.offset) {
    out.writeBytes(fields++ === 0 ? OPEN : COMMA);
    out.writeBytes(OFFSET_KEY);
    if (record.offset >= 0n && record.offset <= MAX_SAFE) out.writeDecimal(Number(record.offset));
    else out.writeUtf8(`${record.offset}`);
  }
  if (shape.key) {
    out.writeBytes(fields++ === 0 ? OPEN : COMMA);
    out.writeBytes(KEY_KEY);
    const key = record.key === undefined ? '""' : jsonStringOf(record.key);
    if (typeof key === 'string') out.writeUtf8(key);
    else out.writeBytes(key);
  }
  // A record without a time (Kafka's -1) gets null, as the Kafka engine gives NULL (a column's default
  // unless it is Nullable); times past 2^53 ms are written from the bigint.
  const ms = (shape.timestamp || shape.timestampMs) && record.timestamp <= MAX_SAFE ? Number(record.timestamp) : Number.NaN;
  if (shape.timestamp) {
    out.writeBytes(fields++ === 0 ? OPEN : COMMA);
    out.writeBytes(TIMESTAMP_KEY);
    if (ms >= 0) out.writeDecimal(Math.floor(ms / 1000));
    else if (ms < 0) out.writeBytes(NULL);
    else out.writeUtf8(`${record.timestamp / 1000n}`);
  }
  if (shape.timestampMs) {
    out.writeBytes(fields++ === 0 ? OPEN : COMMA);
    out.writeBytes(TIMESTAMP_MS_KEY);
    if (ms >= 0) {
      out.writeBytes(QUOTE);
      out.writeDecimal(Math.floor(ms / 1000));
      out.writeBytes(DOT);
      out.writeDecimal(ms % 1000, 3);
      out.writeBytes(QUOTE);
    } else if (ms < 0) out.writeBytes(NULL);
    else out.writeUtf8(`"${record.timestamp / 1000n}.${`${record.timestamp % 1000n}`.padStart(3, '0')}"`);
  }
  if (shape.headers) {
    out.writeBytes(fields++ === 0 ? OPEN : COMMA);
    const headers = headersJson(record.headers);
    if (typeof headers === 'string') out.writeUtf8(headers);
    else out.writeBytes(headers);
  }
  if (shape.wrapColumn !== undefined) {
    if (shape.teamColumn !== undefined && teamId !== undefined) {
      out.writeBytes(fields++ === 0 ? OPEN : COMMA);
      out.writeUtf8(`"${shape.teamColumn}":`);
      out.writeUtf8(`${teamId}`);
    }
    out.writeBytes(fields++ === 0 ? OPEN : COMMA);
    out.writeUtf8(`"${shape.wrapColumn}":`);
    out.writeBytes(json);
    out.writeBytes(CLOSE_LINE);
    return;
  }
  if (fields === 0) {
    out.writeBytes(json);
    out.writeBytes(NEWLINE);
    return;
  }
  // `{"a":1}` → the fields + `,"a":1}`; `{}` → the fields + `}`.
  if (isEmptyObjectTail(json)) {
    out.writeBytes(CLOSE_LINE);
    return;
  }
  out.writeBytes(COMMA);
  out.writeBytes(json, 1);
  out.writeBytes(NEWLINE);
}

function topicField(topic: string): Buffer {
  let field = topicFields.get(topic);
  if (field === undefined) {
    field = Buffer.from(`"_topic":${JSON.stringify(topic)}`, 'utf8');
    topicFields.set(topic, field);
  }
  return field;
}

/**
 * `bytes` as a JSON string that ClickHouse reads back as exactly these bytes: JSON.stringify of
 * their text when they are UTF-8; otherwise the raw bytes with `"`, `\` and control bytes escaped
 * (ClickHouse's JSONEachRow keeps invalid UTF-8 inside a string as is; checked on 26.7).
 */
export function jsonStringOf(bytes: Buffer): string | Buffer {
  if (isUtf8(bytes)) return JSON.stringify(bytes.toString('utf8'));
  let extra = 2;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b === 0x22 || b === 0x5c) extra += 1;
    else if (b < 0x20) extra += 5;
  }
  const out = Buffer.allocUnsafe(bytes.length + extra);
  let w = 0;
  out[w++] = 0x22;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b === 0x22 || b === 0x5c) {
      out[w++] = 0x5c;
      out[w++] = b;
    } else if (b < 0x20) {
      w += out.write(`\\u00${b < 0x10 ? '0' : ''}${b.toString(16)}`, w, 'latin1');
    } else out[w++] = b;
  }
  out[w++] = 0x22;
  return out;
}

/** `"_headers.name":[…],"_headers.value":[…]` — text when every name and value is UTF-8, else bytes. */
function headersJson(headers: SourceRecord['headers']): string | Buffer {
  if (headers.length === 0) return '"_headers.name":[],"_headers.value":[]';
  let utf8 = true;
  for (const [name, value] of headers) if (!isUtf8(name) || !isUtf8(value)) utf8 = false;
  if (utf8) {
    const names: string[] = [];
    const values: string[] = [];
    for (const [name, value] of headers) {
      names.push(name.toString('utf8'));
      values.push(value.toString('utf8'));
    }
    return `"_headers.name":${JSON.stringify(names)},"_headers.value":${JSON.stringify(values)}`;
  }
  return Buffer.concat([Buffer.from('"_headers.name":'), jsonArrayOf(headers, 0), Buffer.from(',"_headers.value":'), jsonArrayOf(headers, 1)]);
}

/** A JSON array of the headers' names (0) or values (1), each keeping its bytes (jsonStringOf). */
export function jsonArrayOf(headers: SourceRecord['headers'], index: 0 | 1): Buffer {
  const parts: Buffer[] = [Buffer.from('[')];
  headers.forEach((header, i) => {
    if (i > 0) parts.push(Buffer.from(','));
    const s = jsonStringOf(header[index]);
    parts.push(typeof s === 'string' ? Buffer.from(s, 'utf8') : s);
  });
  parts.push(Buffer.from(']'));
  return Buffer.concat(parts);
}

/** Whether `json` (starting with `{`) is an empty object. */
function isEmptyObjectTail(json: Buffer): boolean {
  for (let i = 1; i < json.length; i++) {
    const b = json[i];
    if (b === 0x7d) return true;
    if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) return false;
  }
  return false;
}

/** Pass-through JSONEachRow for a table's live columns: the producer's bytes, metadata spliced in. */
export class JsonEachRowEncoder implements RowEncoder {
  readonly format = 'JSONEachRow';
  readonly columns = undefined;
  readonly #shape: RowShape;

  constructor(columns: readonly ColumnInfo[]) {
    this.#shape = rowShapeFor(columns);
  }

  write(out: ByteSink, record: SourceRecord, row: Row, teamId: number | undefined): void {
    writeRow(out, this.#shape, record, Buffer.isBuffer(row) ? row : row.type.toJson(row.values), teamId);
  }
}
