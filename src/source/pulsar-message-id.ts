// Owns Pulsar message ids: decoding the base64 MessageIdData protobuf the WebSocket API hands out,
// and packing a message's position into the ordered bigint offset the core keys everything by. The
// core keeps offsets in JavaScript numbers inside its offset sets (src/ack/offset-set.ts), so an
// offset must stay below 2^53: the packing is ledgerId·2^27 + entryId·2^10 + batchIndex, and a
// message id outside it is refused loudly, never wrapped (docs/design/pulsar.md, "Records and
// positions").

/** Bits of a ledger's entry id (Pulsar rolls a ledger over at managedLedgerMaxEntriesPerLedger, 50,000 by default). */
export const ENTRY_BITS = 17n;
/** Bits of a batch index (a producer's batchingMaxMessages is 1,000 by default). */
export const BATCH_BITS = 10n;
/** Bits left for the ledger id under 2^53. */
export const LEDGER_BITS = 53n - ENTRY_BITS - BATCH_BITS;

const MAX_ENTRY = (1n << ENTRY_BITS) - 1n;
const MAX_BATCH = (1n << BATCH_BITS) - 1n;
const MAX_LEDGER = (1n << LEDGER_BITS) - 1n;

export interface PulsarMessageId {
  readonly ledgerId: bigint;
  readonly entryId: bigint;
  /** The partition index the broker put in the id (-1: a non-partitioned topic). */
  readonly partition: number;
  /** Index inside a batched entry; -1 for a message that was not batched. */
  readonly batchIndex: number;
}

/** A message id that cannot be packed into an offset, or is not a MessageIdData at all. */
export class PulsarMessageIdError extends Error {
  readonly code = 'PULSAR_MESSAGE_ID';
  constructor(message: string) {
    super(message);
    this.name = 'PulsarMessageIdError';
  }
}

/** Decodes the base64 MessageIdData (ledgerId=1, entryId=2, partition=3, batch_index=4; others skipped). */
export function decodeMessageId(base64: string): PulsarMessageId {
  const bytes = Buffer.from(base64, 'base64');
  let ledgerId: bigint | undefined;
  let entryId: bigint | undefined;
  let partition = -1;
  let batchIndex = -1;
  const at = { i: 0 };
  while (at.i < bytes.length) {
    const tag = Number(varint(bytes, at));
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) {
      const value = varint(bytes, at);
      if (field === 1) ledgerId = value;
      else if (field === 2) entryId = value;
      else if (field === 3) partition = int32(value);
      else if (field === 4) batchIndex = int32(value);
    } else if (wire === 1) at.i += 8;
    else if (wire === 5) at.i += 4;
    else if (wire === 2) {
      // The length is read first: varint() moves at.i past it, and the skip starts there.
      const length = Number(varint(bytes, at));
      at.i += length;
    } else throw new PulsarMessageIdError(`message id ${base64}: unsupported wire type ${wire}`);
    if (at.i > bytes.length) throw new PulsarMessageIdError(`message id ${base64} is truncated`);
  }
  if (ledgerId === undefined || entryId === undefined) throw new PulsarMessageIdError(`message id ${base64} has no ledger or entry id`);
  return { ledgerId, entryId, partition, batchIndex };
}

/** Encodes an id as the broker does (for a reader's start position or an acknowledgement). */
export function encodeMessageId(id: PulsarMessageId): string {
  const out: number[] = [];
  const field = (n: number, value: bigint): void => {
    writeVarint(out, BigInt(n << 3));
    writeVarint(out, value < 0n ? value + (1n << 64n) : value);
  };
  field(1, id.ledgerId);
  field(2, id.entryId);
  if (id.partition >= 0) field(3, BigInt(id.partition));
  if (id.batchIndex >= 0) field(4, BigInt(id.batchIndex));
  return Buffer.from(out).toString('base64');
}

/** The message's offset: ordered like the ids of one partition, below 2^53; throws outside the packing. */
export function offsetOf(id: PulsarMessageId): bigint {
  // -1 is the broker's "not batched"; anything lower is no id it writes and would pack as index 0.
  if (!Number.isInteger(id.batchIndex) || id.batchIndex < -1) throw new PulsarMessageIdError(`batch index ${id.batchIndex} is not a batch index (-1 or above)`);
  const batch = BigInt(Math.max(0, id.batchIndex));
  if (id.ledgerId < 0n || id.ledgerId > MAX_LEDGER) throw new PulsarMessageIdError(`ledger id ${id.ledgerId} does not fit an offset (at most ${MAX_LEDGER})`);
  if (id.entryId < 0n || id.entryId > MAX_ENTRY)
    throw new PulsarMessageIdError(`entry id ${id.entryId} of ledger ${id.ledgerId} does not fit an offset (at most ${MAX_ENTRY}: lower managedLedgerMaxEntriesPerLedger)`);
  if (batch > MAX_BATCH) throw new PulsarMessageIdError(`batch index ${id.batchIndex} does not fit an offset (at most ${MAX_BATCH}: lower the producers' batchingMaxMessages)`);
  return (id.ledgerId << (ENTRY_BITS + BATCH_BITS)) | (id.entryId << BATCH_BITS) | batch;
}

/** The position an offset packs (its batch index is -1 when it is 0: a message that was not batched looks the same). */
export function positionOf(offset: bigint): { ledgerId: bigint; entryId: bigint; batchIndex: number } {
  if (offset < 0n || offset >= 1n << 53n) throw new PulsarMessageIdError(`offset ${offset} is not a packed Pulsar position`);
  return { ledgerId: offset >> (ENTRY_BITS + BATCH_BITS), entryId: (offset >> BATCH_BITS) & MAX_ENTRY, batchIndex: Number(offset & MAX_BATCH) };
}

/** "ledger:entry" (the admin API's X-Pulsar-Message-ID and internal stats) → ledger and entry ids. */
export function parseEntryId(text: string): { ledgerId: bigint; entryId: bigint } {
  const match = /^(\d+):(\d+)/.exec(text);
  if (match === null) throw new PulsarMessageIdError(`not a ledger:entry id: ${text}`);
  return { ledgerId: BigInt(match[1] as string), entryId: BigInt(match[2] as string) };
}

export function entryText(id: { ledgerId: bigint; entryId: bigint }): string {
  return `${id.ledgerId}:${id.entryId}`;
}

function varint(bytes: Buffer, at: { i: number }): bigint {
  let value = 0n;
  for (let shift = 0n; shift < 70n; shift += 7n) {
    if (at.i >= bytes.length) throw new PulsarMessageIdError('varint runs past the end of the message id');
    const byte = bytes[at.i++] as number;
    value |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return value & ((1n << 64n) - 1n);
  }
  throw new PulsarMessageIdError('varint longer than 10 bytes in the message id');
}

/** A protobuf int32 is sent as a 64-bit two's complement varint. */
function int32(value: bigint): number {
  return Number(BigInt.asIntN(32, value));
}

function writeVarint(out: number[], value: bigint): void {
  let v = value;
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}
