// Review 2026-12-07f of src/source/pulsar-message-id.ts (commit f0d5c34): message id → offset packing
// (ledgerId·2^27 + entryId·2^10 + batchIndex, below 2^53) never collides or reorders, and refuses what
// it cannot pack; the MessageIdData decoding round-trips what the broker sends (extra fields too).
// Tests marked "Fixed, was finding N" demonstrated a finding and pass since it was fixed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeMessageId, encodeMessageId, offsetOf, positionOf, PulsarMessageIdError, type PulsarMessageId } from '../../../src/source/pulsar-message-id.ts';

const MAX_LEDGER = (1n << 26n) - 1n;
const MAX_ENTRY = (1n << 17n) - 1n;
const id = (ledgerId: bigint, entryId: bigint, batchIndex = -1): PulsarMessageId => ({ ledgerId, entryId, partition: -1, batchIndex });

// Ids of one partition: a non-batched entry has batch index -1, a batched one 0..1023.
const ids = fc.record({
  ledgerId: fc.oneof(fc.bigInt({ min: 0n, max: MAX_LEDGER }), fc.constantFrom(0n, 1n, MAX_LEDGER - 1n, MAX_LEDGER)),
  entryId: fc.oneof(fc.bigInt({ min: 0n, max: MAX_ENTRY }), fc.constantFrom(0n, MAX_ENTRY)),
  batchIndex: fc.oneof(fc.integer({ min: -1, max: 1023 }), fc.constantFrom(-1, 0, 1022, 1023)),
  partition: fc.integer({ min: -1, max: 64 }),
});
const key = (m: PulsarMessageId): [bigint, bigint, number] => [m.ledgerId, m.entryId, Math.max(0, m.batchIndex)];
const compare = (a: [bigint, bigint, number], b: [bigint, bigint, number]): number => (a[0] !== b[0] ? (a[0] < b[0] ? -1 : 1) : a[1] !== b[1] ? (a[1] < b[1] ? -1 : 1) : a[2] - b[2]);

test('holds: offsets order like (ledger, entry, batch index), never collide, stay below 2^53, and unpack to their position', () => {
  fc.assert(
    fc.property(ids, ids, (a, b) => {
      const oa = offsetOf(a);
      const ob = offsetOf(b);
      assert.ok(oa >= 0n && oa < 1n << 53n && ob < 1n << 53n);
      assert.equal(
        Math.sign(compare(key(a), key(b))),
        oa < ob ? -1 : oa > ob ? 1 : 0,
        `${JSON.stringify(key(a), (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v))} vs ${String(oa)} ${String(ob)}`,
      );
      assert.deepEqual(positionOf(oa), { ledgerId: a.ledgerId, entryId: a.entryId, batchIndex: Math.max(0, a.batchIndex) });
      // A JavaScript number keeps it exactly (the core's offset sets hold numbers).
      assert.equal(BigInt(Number(oa)), oa);
    }),
    { numRuns: 5_000 },
  );
  assert.equal(offsetOf(id(MAX_LEDGER, MAX_ENTRY, 1023)), (1n << 53n) - 1n);
  assert.equal(offsetOf(id(0n, 0n, -1)), 0n);
});

test('holds: ids the packing cannot hold are refused, never wrapped (ledger 2^26, entry 2^17, batch index 1024, negative ids)', () => {
  for (const bad of [id(MAX_LEDGER + 1n, 0n), id(0n, MAX_ENTRY + 1n), id(5n, 5n, 1024), id(5n, 5n, 2 ** 31 - 1), id(-1n, 0n), id(0n, -1n), id(1n << 63n, 0n)]) {
    assert.throws(
      () => offsetOf(bad),
      PulsarMessageIdError,
      JSON.stringify(bad, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
    );
  }
});

test('holds: MessageIdData decodes as the broker encodes it (uint64 ids, negative int32 partition and batch index, extra fields skipped); malformed ids are refused', () => {
  fc.assert(
    fc.property(ids, (m) => {
      assert.deepEqual(decodeMessageId(encodeMessageId(m)), { ...m });
    }),
    { numRuns: 2_000 },
  );
  // ledgerId 3, entryId 9, partition -1 (10-byte varint), batch_index 2, ack_set [7] (field 5: proto2, unpacked), batch_size 10 (field 6).
  const withExtras = Buffer.from([0x08, 0x03, 0x10, 0x09, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x20, 0x02, 0x28, 0x07, 0x30, 0x0a]).toString('base64');
  assert.deepEqual(decodeMessageId(withExtras), { ledgerId: 3n, entryId: 9n, partition: -1, batchIndex: 2 });
  // A uint64 ledger id above 2^63 decodes exactly, and is refused by the packing.
  const huge = decodeMessageId(encodeMessageId(id((1n << 64n) - 2n, 1n)));
  assert.equal(huge.ledgerId, (1n << 64n) - 2n);
  assert.throws(() => offsetOf(huge), PulsarMessageIdError);
  for (const bad of [
    '',
    'CAM=',
    'CAMQ',
    Buffer.from([0x08, 0x83]).toString('base64'),
    Buffer.from([0x0b, 0x08, 0x03]).toString('base64'),
    Buffer.from([0x08, 0x03, 0x10, 0x01, 0x3a, 0x7f]).toString('base64'),
  ]) {
    assert.throws(() => decodeMessageId(bad), PulsarMessageIdError, bad);
  }
});

// Fixed, was finding 13: offsetOf clamps any negative batch index to 0: -2 and 0 of one entry give the same offset
test('a batch index below -1 (not a MessageIdData the broker writes) is refused, not packed as batch index 0', () => {
  // (The message is built only if it was packed: building it calls offsetOf, which now throws.)
  let packed: bigint | undefined;
  assert.throws(() => (packed = offsetOf(id(4n, 4n, -2))), PulsarMessageIdError);
  assert.equal(packed, undefined, `packed as ${packed}, the offset of batch index 0 (${offsetOf(id(4n, 4n, 0))})`);
});

// Fixed, was finding 14: `at.i += Number(varint(bytes, at))` reads at.i before varint() moves it past the length: the skip lands inside the field
test('a length-delimited field is skipped whole: the id of a chunked message (first_chunk_message_id, field 7) decodes to its own ledger and entry', () => {
  // What ChunkMessageIdImpl.toByteArray writes: the last chunk's id, then the first chunk's id nested in field 7.
  const first = Buffer.from(encodeMessageId(id(12n, 3n)), 'base64');
  const last = Buffer.from(encodeMessageId(id(12n, 5n)), 'base64');
  const chunked = Buffer.concat([last, Buffer.from([0x3a, first.length]), first]).toString('base64');
  let decoded: unknown;
  try {
    decoded = decodeMessageId(chunked);
  } catch (error) {
    decoded = error;
  }
  assert.deepEqual(decoded, { ...id(12n, 5n) }, `the source stops at such an id (run() rejects): ${String(decoded)}`);
});
