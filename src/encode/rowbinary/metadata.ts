// Owns the Kafka metadata columns of a typed row (`_topic _partition _offset _key _timestamp
// _timestamp_ms _headers.name _headers.value`): the same values the pass-through encoder splices
// into the JSON line (encode/json-each-row.ts), read by the column's writer exactly as ClickHouse
// would read that JSON, with direct writes for the common types (no text in between).
import type { SourceRecord } from '../../source/types.ts';
import { jsonArrayOf, jsonStringOf } from '../json-each-row.ts';
import type { ColumnWriter } from './column-writer.ts';
import { DateTime64Writer, DateTimeWriter } from './dates.ts';
import { IntWriter } from './integers.ts';
import type { RowBuffer } from './row-buffer.ts';
import { StringWriter } from './strings.ts';

export type MetadataName = '_topic' | '_partition' | '_offset' | '_key' | '_timestamp' | '_timestamp_ms' | '_headers.name' | '_headers.value';

const text = { buf: Buffer.allocUnsafe(4096) };

/** Writes `json` (JSON text, or its bytes) through `writer`. */
function viaJson(out: RowBuffer, writer: ColumnWriter, json: string | Buffer): void {
  if (Buffer.isBuffer(json)) return writer.json(out, json, 0, json.length);
  const n = Buffer.byteLength(json);
  if (n > text.buf.length) text.buf = Buffer.allocUnsafe(n * 2);
  text.buf.write(json, 0, 'utf8');
  writer.json(out, text.buf, 0, n);
}

/** Milliseconds since the epoch as `seconds.mmm`, as the pass-through encoder writes them. */
function formatMillis(ms: bigint): string {
  const seconds = ms / 1000n;
  const rest = Number(ms % 1000n);
  return `${seconds}.${rest < 10 ? '00' : rest < 100 ? '0' : ''}${rest}`;
}

const MAX_DATETIME = 4294967295;

/** Writes metadata column `name` of `record` through its column's `writer`. */
export function writeMetadata(out: RowBuffer, name: MetadataName, writer: ColumnWriter, record: SourceRecord): void {
  switch (name) {
    case '_topic':
      if (writer instanceof StringWriter) out.text(record.topic);
      else viaJson(out, writer, JSON.stringify(record.topic));
      return;
    case '_partition':
      viaJson(out, writer, String(record.partition));
      return;
    case '_offset':
      if (writer instanceof IntWriter && writer.bytes === 8 && record.offset >= 0n && record.offset <= 9007199254740991n) out.i64(Number(record.offset));
      else viaJson(out, writer, String(record.offset));
      return;
    case '_key':
      if (writer instanceof StringWriter) {
        if (record.key === undefined) out.u8(0);
        else out.string(record.key, 0, record.key.length);
      } else viaJson(out, writer, record.key === undefined ? '""' : jsonStringOf(record.key));
      return;
    case '_timestamp': {
      const seconds = record.timestamp / 1000n;
      if (writer instanceof DateTimeWriter) out.u32(seconds < 0n ? 0 : seconds > BigInt(MAX_DATETIME) ? MAX_DATETIME : Number(seconds));
      else viaJson(out, writer, String(seconds));
      return;
    }
    case '_timestamp_ms':
      if (writer instanceof DateTime64Writer && writer.scale === 3 && record.timestamp >= 0n && record.timestamp <= 9007199254740991n) {
        out.i64(Number(record.timestamp));
      } else viaJson(out, writer, `"${formatMillis(record.timestamp)}"`);
      return;
    case '_headers.name':
      viaJson(out, writer, jsonArrayOf(record.headers, 0));
      return;
    case '_headers.value':
      viaJson(out, writer, jsonArrayOf(record.headers, 1));
      return;
  }
}
