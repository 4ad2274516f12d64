// Owns turning a raw bus record into a validated JSON object row: the value must be one JSON
// object within the size limit; the team id is read from where the route says. The original bytes
// are kept and passed through to the warehouse (ClickHouse parses them), so nothing is re-serialized.
import { DecodeError } from '../errors/inserter-error.ts';
import type { SourceRecord } from '../source/types.ts';

export type TeamIdSource =
  | { readonly from: 'field'; readonly field: string }
  | { readonly from: 'header'; readonly header: string }
  | { readonly from: 'key' };

export interface DecodedRecord {
  /** The value's bytes with surrounding whitespace trimmed; starts with `{` and ends with `}`. */
  readonly json: Buffer;
  readonly teamId: number | undefined;
}

export interface DecodeOptions {
  readonly maxMessageBytes: number;
  readonly teamId: TeamIdSource;
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

export function decodeJsonRecord(record: SourceRecord, options: DecodeOptions): DecodedRecord {
  const value = record.value;
  if (value === undefined || value.length === 0) {
    throw new DecodeError('INSERTER_DECODE_EMPTY', 'message has no value (tombstone or empty)');
  }
  if (value.length > options.maxMessageBytes) {
    throw new DecodeError('INSERTER_DECODE_OVERSIZED', `message of ${value.length} bytes exceeds maxMessageBytes ${options.maxMessageBytes}`);
  }
  const json = trimJson(value);
  if (json[0] !== OPEN_BRACE || json[json.length - 1] !== CLOSE_BRACE) {
    throw new DecodeError('INSERTER_DECODE_NOT_OBJECT', 'message is not a JSON object');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json.toString('utf8'));
  } catch (cause) {
    throw new DecodeError('INSERTER_DECODE_BAD_JSON', `message is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new DecodeError('INSERTER_DECODE_NOT_OBJECT', 'message is not a JSON object');
  }
  return { json, teamId: readTeamId(record, parsed as Record<string, unknown>, options.teamId) };
}

function readTeamId(record: SourceRecord, object: Record<string, unknown>, source: TeamIdSource): number | undefined {
  let raw: unknown;
  if (source.from === 'field') raw = object[source.field];
  else if (source.from === 'key') raw = record.key?.toString('utf8');
  else {
    for (const [name, value] of record.headers) {
      if (name.toString('utf8') === source.header) {
        raw = value.toString('utf8');
        break;
      }
    }
  }
  if (raw === undefined || raw === null) return undefined;
  const team = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(team)) {
    throw new DecodeError('INSERTER_DECODE_BAD_TEAM', `team id ${JSON.stringify(raw).slice(0, 40)} is not an integer`);
  }
  return team;
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
