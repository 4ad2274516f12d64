// Owns the Confluent wire format of a Protobuf record value: magic byte 0, the schema id as 4 bytes
// big-endian, the message-index list (zigzag varints: a count, then that many indexes; a count of 0
// is the list [0], the first message of the schema's file), then the Protobuf payload. What cannot
// be read is a DecodeError naming what is wrong.
import { DecodeError } from '../../errors/inserter-error.ts';

export interface WireHeader {
  readonly schemaId: number;
  /** The path to the message: a top-level message of the file, then nested messages. */
  readonly indexes: readonly number[];
  /** Where the Protobuf payload starts. */
  readonly payloadStart: number;
}

const MAGIC = 0;
const HEADER_BYTES = 5;
/** More nesting than this is not a schema anyone writes: the bytes are not a header. */
const MAX_INDEXES = 64;
const FIRST: readonly number[] = [0];

export function readWireHeader(value: Uint8Array): WireHeader {
  if (value.length < HEADER_BYTES)
    throw new DecodeError('INSERTER_DECODE_BAD_MAGIC', `message of ${value.length} bytes is too short for the schema registry wire format (magic byte, 4-byte schema id)`);
  if (value[0] !== MAGIC) throw new DecodeError('INSERTER_DECODE_BAD_MAGIC', `message does not start with the schema registry magic byte 0 (found ${value[0] ?? 0})`);
  const schemaId = (((value[1] ?? 0) << 24) | ((value[2] ?? 0) << 16) | ((value[3] ?? 0) << 8) | (value[4] ?? 0)) >>> 0;
  const cursor = { pos: HEADER_BYTES };
  const count = readZigzag(value, cursor);
  if (count === 0) return { schemaId, indexes: FIRST, payloadStart: cursor.pos };
  if (count < 0 || count > MAX_INDEXES) throw new DecodeError('INSERTER_DECODE_BAD_MESSAGE_INDEX', `schema ${schemaId}: message-index list of ${count} entries`);
  const indexes: number[] = [];
  for (let i = 0; i < count; i++) {
    const index = readZigzag(value, cursor);
    if (index < 0) throw new DecodeError('INSERTER_DECODE_BAD_MESSAGE_INDEX', `schema ${schemaId}: negative message index ${index}`);
    indexes.push(index);
  }
  return { schemaId, indexes, payloadStart: cursor.pos };
}

/** A zigzag varint of at most 32 bits. */
function readZigzag(value: Uint8Array, cursor: { pos: number }): number {
  let result = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (cursor.pos >= value.length) throw new DecodeError('INSERTER_DECODE_BAD_MESSAGE_INDEX', 'message ends inside its message-index list');
    const byte = value[cursor.pos++] ?? 0;
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return (result >>> 1) ^ -(result & 1);
  }
  throw new DecodeError('INSERTER_DECODE_BAD_MESSAGE_INDEX', 'message-index varint longer than 5 bytes');
}

/** The header bytes for a schema id and message indexes (producers, tests). */
export function writeWireHeader(schemaId: number, indexes: readonly number[]): Buffer {
  const bytes: number[] = [MAGIC, (schemaId >>> 24) & 255, (schemaId >>> 16) & 255, (schemaId >>> 8) & 255, schemaId & 255];
  const list = indexes.length === 1 && indexes[0] === 0 ? [] : indexes;
  for (const n of [list.length, ...list]) {
    let zz = ((n << 1) ^ (n >> 31)) >>> 0;
    while (zz >= 0x80) {
      bytes.push((zz & 0x7f) | 0x80);
      zz >>>= 7;
    }
    bytes.push(zz);
  }
  return Buffer.from(bytes);
}
