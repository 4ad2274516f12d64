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

/**
 * Writes one JSONEachRow line (with trailing newline) into `out`. `json` starts with `{`.
 * Metadata strings are ASCII except `_key`/headers/topic: `_key` and headers keep their bytes
 * (jsonStringOf), as ClickHouse's Kafka engine stores them.
 */
export function writeRow(out: ByteSink, shape: RowShape, record: SourceRecord, json: Buffer, teamId: number | undefined): void {
  // After a part written as bytes (a key or header that is not UTF-8), `prefix` restarts with the
  // comma that follows it, so it always ends with a comma once anything is in it.
  let prefix = '{';
  if (shape.topic) prefix += `"_topic":${JSON.stringify(record.topic)},`;
  if (shape.partition) prefix += `"_partition":${record.partition},`;
  if (shape.offset) prefix += `"_offset":${record.offset},`;
  if (shape.key) {
    const key = record.key === undefined ? '""' : jsonStringOf(record.key);
    if (typeof key === 'string') prefix += `"_key":${key},`;
    else {
      out.writeUtf8(`${prefix}"_key":`);
      out.writeBytes(key);
      prefix = ',';
    }
  }
  if (shape.timestamp) prefix += `"_timestamp":${record.timestamp / 1000n},`;
  if (shape.timestampMs) prefix += `"_timestamp_ms":"${formatMillis(record.timestamp)}",`;
  if (shape.headers) {
    const headers = headersJson(record.headers);
    if (typeof headers === 'string') prefix += `${headers},`;
    else {
      out.writeUtf8(prefix);
      out.writeBytes(headers);
      prefix = ',';
    }
  }
  if (shape.wrapColumn !== undefined) {
    if (shape.teamColumn !== undefined && teamId !== undefined) prefix += `"${shape.teamColumn}":${teamId},`;
    out.writeUtf8(`${prefix}"${shape.wrapColumn}":`);
    out.writeBytes(json);
    out.writeUtf8('}\n');
    return;
  }
  if (prefix === '{') {
    out.writeBytes(json);
    out.writeUtf8('\n');
    return;
  }
  // `{"a":1}` → prefix + `"a":1}`; `{}` → prefix without its trailing comma + `}`.
  const body = json.subarray(1);
  if (isEmptyObjectTail(body)) {
    out.writeUtf8(`${prefix.slice(0, -1)}}\n`);
    return;
  }
  out.writeUtf8(prefix);
  out.writeBytes(body);
  out.writeUtf8('\n');
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

/** Milliseconds since the epoch as `seconds.mmm`, which DateTime64(3) parses exactly. */
function formatMillis(ms: bigint): string {
  const seconds = ms / 1000n;
  const rest = Number(ms % 1000n);
  return `${seconds}.${rest < 10 ? '00' : rest < 100 ? '0' : ''}${rest}`;
}

function isEmptyObjectTail(body: Buffer): boolean {
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
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
