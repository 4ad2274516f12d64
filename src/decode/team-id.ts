// Owns what every decoder does alike with a record's team id: reading it from outside the value (the
// record's key or a header), and turning a raw team id into an integer — or into none where the team
// is not required (a fixed destination, like ClickHouse's Kafka engine), or a DecodeError where it is.
import { DecodeError } from '../errors/inserter-error.ts';
import type { SourceRecord } from '../source/types.ts';

/** The team id's text from the record's key or from a header (the first of that name), if any. */
export function teamIdOutsideValue(record: SourceRecord, source: { readonly from: 'key' } | { readonly from: 'header'; readonly header: string }): string | undefined {
  if (source.from === 'key') return record.key?.toString('utf8');
  for (const [name, value] of record.headers) if (name.toString('utf8') === source.header) return value.toString('utf8');
  return undefined;
}

/** A raw team id (a number, a 64-bit integer, a string of digits) as an integer; none for null/undefined. */
export function integerTeamId(raw: unknown, required: boolean): number | undefined {
  if (raw === undefined || raw === null) return undefined;
  const team = typeof raw === 'number' ? raw : typeof raw === 'bigint' ? Number(raw) : typeof raw === 'string' && isIntegerText(raw) ? Number(raw) : Number.NaN;
  if (Number.isSafeInteger(team)) return team;
  if (!required) return undefined;
  throw new DecodeError('INSERTER_DECODE_BAD_TEAM', `team id ${typeof raw === 'bigint' ? raw.toString() : (JSON.stringify(raw) ?? '?').slice(0, 40)} is not an integer`);
}

function isIntegerText(text: string): boolean {
  if (text.length === 0 || text.length > 20) return false;
  for (let i = text.charCodeAt(0) === 45 ? 1 : 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return text !== '-';
}
