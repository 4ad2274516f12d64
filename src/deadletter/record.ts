// Owns reading a dead letter back: the record as the dead-letter topic holds it, split into the
// original record (key, value, the headers it had) and the reason headers the writer appended
// (src/source/kafka-dead-letter-writer.ts), plus how its bytes are shown (UTF-8 when printable, else base64).
import type { SourceRecord } from '../source/types.ts';
import { deadLetterHeader } from './types.ts';

/** One record of a dead-letter topic, as read. */
export interface RawDeadLetter {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  /** The dead-letter record's own timestamp (ms): when it was dead-lettered. */
  readonly timestamp: bigint;
  readonly key: Buffer | undefined;
  readonly value: Buffer | undefined;
  readonly headers: ReadonlyArray<readonly [Buffer, Buffer]>;
}

export interface DeadLetter {
  readonly raw: RawDeadLetter;
  /** `<dlq topic>/<partition>/<offset>`: the replay ledger's key. */
  readonly id: string;
  readonly errorClass: string | undefined;
  readonly code: string | undefined;
  readonly serverCode: string | undefined;
  readonly message: string | undefined;
  readonly route: string | undefined;
  readonly destination: string | undefined;
  /** `database.table` */
  readonly table: string | undefined;
  readonly team: number | undefined;
  /** When it was dead-lettered: the last-failure header, else the record's timestamp. */
  readonly at: Date;
  /** The record that could not be delivered, with only the headers it had (none of the writer's). */
  readonly original: SourceRecord | undefined;
  /** Written without parts of the record (the dead-letter topic refused it as too large): what is missing; they are in the source topic. */
  readonly omitted?: string;
  /** It may also be in the warehouse (`x-inserter-may-have-landed`): replayed only when asked. */
  readonly mayHaveLanded?: boolean;
}

const writerHeaders: ReadonlySet<string> = new Set(Object.values(deadLetterHeader));
export const replayedFromHeader = 'x-inserter-replayed-from';

export function deadLetterId(topic: string, partition: number, offset: bigint): string {
  return `${topic}/${partition}/${offset}`;
}

/** The record a dead letter stands for, per route: dead letters are at least once, this is their identity. */
export function originalKey(letter: DeadLetter): string | undefined {
  const o = letter.original;
  return o === undefined ? undefined : `${letter.route ?? ''}|${o.topic}/${o.partition}/${o.offset}`;
}

export function parseDeadLetter(raw: RawDeadLetter): DeadLetter {
  // The writer appends its headers after the original ones, its error class first: the block from
  // the last error-class header on, when it holds only the writer's names, is the writer's.
  const names = raw.headers.map(([name]) => name.toString('utf8'));
  const classAt = names.lastIndexOf(deadLetterHeader.class);
  const split = classAt >= 0 && names.slice(classAt).every((n) => writerHeaders.has(n)) ? classAt : raw.headers.length;
  const reason = new Map<string, string>();
  for (const [name, value] of raw.headers.slice(split)) reason.set(name.toString('utf8'), value.toString('utf8'));
  const get = (name: string): string | undefined => reason.get(name);
  const team = get(deadLetterHeader.team);
  const lastFailure = Date.parse(get(deadLetterHeader.lastFailure) ?? '');
  const topic = get(deadLetterHeader.topic);
  const partition = get(deadLetterHeader.partition);
  const offset = get(deadLetterHeader.offset);
  const timestamp = get(deadLetterHeader.timestamp);
  const original: SourceRecord | undefined =
    topic !== undefined && isInteger(partition) && isInteger(offset)
      ? {
          topic,
          partition: Number(partition),
          offset: BigInt(offset),
          timestamp: isInteger(timestamp) ? BigInt(timestamp) : raw.timestamp,
          key: raw.key,
          value: raw.value,
          headers: raw.headers.slice(0, split),
          epoch: 0,
        }
      : undefined;
  return {
    raw,
    id: deadLetterId(raw.topic, raw.partition, raw.offset),
    errorClass: get(deadLetterHeader.class),
    code: get(deadLetterHeader.code),
    serverCode: get(deadLetterHeader.serverCode),
    message: get(deadLetterHeader.message),
    route: get(deadLetterHeader.route),
    destination: get(deadLetterHeader.destination),
    table: get(deadLetterHeader.table),
    team: isInteger(team) ? Number(team) : undefined,
    at: new Date(Number.isNaN(lastFailure) ? Number(raw.timestamp) : lastFailure),
    original,
    ...omittedParts(get(deadLetterHeader.valueOmitted), get(deadLetterHeader.keyHeadersOmitted)),
    ...(get(deadLetterHeader.mayHaveLanded) === 'true' ? { mayHaveLanded: true } : {}),
  };
}

function omittedParts(value: string | undefined, keyHeaders: string | undefined): { omitted?: string } {
  if (value === undefined && keyHeaders === undefined) return {};
  const parts = [value === undefined ? undefined : `value (${value} bytes)`, keyHeaders === undefined ? undefined : `key and headers (${keyHeaders})`];
  return { omitted: parts.filter((p) => p !== undefined).join(', ') };
}

function isInteger(text: string | undefined): text is string {
  return text !== undefined && /^-?\d+$/.test(text);
}

/** UTF-8 text when the bytes are valid UTF-8 without control characters (tab/newline allowed), else base64. */
export function showBytes(bytes: Buffer | undefined): { encoding: 'utf8' | 'base64'; text: string } | undefined {
  if (bytes === undefined) return undefined;
  const text = bytes.toString('utf8');
  const printable = Buffer.from(text, 'utf8').equals(bytes) && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text);
  return printable ? { encoding: 'utf8', text } : { encoding: 'base64', text: bytes.toString('base64') };
}
