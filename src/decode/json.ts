// Owns turning a raw bus record into a JSON object row: the value must be one JSON object within
// the size limit, and nothing else (a second value or trailing bytes would become extra rows); the team id is read from where the route says, by scanning (not parsing) the
// object. The original bytes pass through to the warehouse, which parses them once; a value it
// cannot take is isolated there and dead-lettered.
import { DecodeError } from '../errors/inserter-error.ts';
import { integerValue, type ValueRange } from './json-scan.ts';
import { scanTopLevelFast } from './json-wasm.ts';
import { integerTeamId, teamIdOutsideValue } from './team-id.ts';
import type { SourceRecord } from '../source/types.ts';
import type { Row } from './row.ts';

export type TeamIdSource = { readonly from: 'field'; readonly field: string } | { readonly from: 'header'; readonly header: string } | { readonly from: 'key' };

export interface DecodedRecord {
  /** The row: for JSON, the value's bytes with surrounding whitespace trimmed (`{` … `}`). */
  readonly row: Row;
  readonly teamId: number | undefined;
}

/** The JSON decoder's result: its row is always the JSON text. */
export interface DecodedJson extends DecodedRecord {
  readonly row: Buffer;
}

export interface DecodeOptions {
  readonly maxMessageBytes: number;
  readonly teamId: TeamIdSource;
  /**
   * Whether the row needs its team (the route routes by team; default true). A route with a fixed
   * destination does not, like ClickHouse's Kafka engine: a team id that is not an integer is then
   * read as none, and the warehouse decides whether it takes the row.
   */
  readonly teamRequired?: boolean;
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

export function decodeJsonRecord(record: SourceRecord, options: DecodeOptions): DecodedJson {
  const value = record.value;
  if (value === undefined || value.length === 0) {
    throw new DecodeError('INSERTER_DECODE_EMPTY', 'message has no value (tombstone or empty)');
  }
  if (value.length > options.maxMessageBytes) {
    throw new DecodeError('INSERTER_DECODE_OVERSIZED', `message of ${value.length} bytes exceeds maxMessageBytes ${options.maxMessageBytes}`);
  }
  const json = trimJson(value);
  if (json.length === 0) throw new DecodeError('INSERTER_DECODE_EMPTY', 'message value is only whitespace');
  if (json[0] !== OPEN_BRACE || json[json.length - 1] !== CLOSE_BRACE) {
    throw new DecodeError('INSERTER_DECODE_NOT_OBJECT', 'message is not a JSON object');
  }
  const teamId = readTeamId(record, json, options.teamId, options.teamRequired !== false);
  // The field scan above also checked that the object ends the value; other sources check it here.
  if (options.teamId.from !== 'field') scan(json, undefined);
  return { row: json, teamId };
}

/** Where `scan` puts the key's value: one decode runs at a time, so no range is made per record. */
const range: ValueRange = { start: 0, end: 0 };

/** Whether `key` is at the top level (its value then in `range`); a scan error is a DecodeError. */
function scan(json: Buffer, key: Buffer | undefined): boolean {
  try {
    return scanTopLevelFast(json, key, range);
  } catch (cause) {
    throw new DecodeError('INSERTER_DECODE_BAD_JSON', `message is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

const fieldKeys = new Map<string, Buffer>();

function readTeamId(record: SourceRecord, json: Buffer, source: TeamIdSource, required: boolean): number | undefined {
  if (source.from === 'field') {
    let key = fieldKeys.get(source.field);
    if (key === undefined) {
      key = Buffer.from(source.field, 'utf8');
      fieldKeys.set(source.field, key);
    }
    if (!scan(json, key)) return undefined;
    const team = integerValue(json, range.start, range.end);
    if (team !== undefined && !Number.isSafeInteger(team)) {
      if (!required) return undefined;
      throw new DecodeError('INSERTER_DECODE_BAD_TEAM', `team id ${json.toString('utf8', range.start, Math.min(range.end, range.start + 40))} is not an integer`);
    }
    return team;
  }
  return integerTeamId(teamIdOutsideValue(record, source), required);
}

function trimJson(value: Buffer): Buffer {
  let start = 0;
  let end = value.length;
  while (start < end && isSpace(value[start] ?? 0)) start++;
  while (end > start && isSpace(value[end - 1] ?? 0)) end--;
  return start === 0 && end === value.length ? value : value.subarray(start, end);
}

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}
