// Pulsar message ids ⇄ offsets (src/source/pulsar-message-id.ts): ids the broker really hands out
// decode; offsets order like the ids of a partition (ledger, then entry, then batch index); every
// offset stays below 2^53 (the core's offset sets hold JavaScript numbers); ids outside the packing
// are refused, never wrapped.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BATCH_BITS, decodeMessageId, encodeMessageId, ENTRY_BITS, LEDGER_BITS, offsetOf, parseEntryId, positionOf, PulsarMessageIdError } from '../../../src/source/pulsar-message-id.ts';

const maxLedger = (1n << LEDGER_BITS) - 1n;
const maxEntry = (1n << ENTRY_BITS) - 1n;
const maxBatch = Number((1n << BATCH_BITS) - 1n);
const id = fc.record({
  ledgerId: fc.bigInt({ min: 0n, max: maxLedger }),
  entryId: fc.bigInt({ min: 0n, max: maxEntry }),
  partition: fc.integer({ min: -1, max: 4096 }).map((n) => n + 0), // never -0
  batchIndex: fc.integer({ min: -1, max: maxBatch }).map((n) => n + 0),
});

test('ids the broker hands out decode (a producer receipt and a consumer frame of Pulsar 4.0.7)', () => {
  // The producer's receipt carries batch_size (field 6); the consumer's frame the partition (field 3).
  assert.deepEqual(decodeMessageId('CAQQAjAA'), { ledgerId: 4n, entryId: 2n, partition: -1, batchIndex: -1 });
  assert.deepEqual(decodeMessageId('CAQQABgAMAA='), { ledgerId: 4n, entryId: 0n, partition: 0, batchIndex: -1 });
  assert.equal(offsetOf(decodeMessageId('CAQQAjAA')), (4n << 27n) | (2n << 10n));
});

test('encode and decode are inverse, and the offset unpacks to the same position', () => {
  fc.assert(
    fc.property(id, (m) => {
      assert.deepEqual(decodeMessageId(encodeMessageId(m)), { ...m });
      const position = positionOf(offsetOf(m));
      assert.equal(position.ledgerId, m.ledgerId);
      assert.equal(position.entryId, m.entryId);
      assert.equal(position.batchIndex, Math.max(0, m.batchIndex));
    }),
  );
});

test('offsets order like message ids within a partition, and stay below 2^53', () => {
  const key = (m: { ledgerId: bigint; entryId: bigint; batchIndex: number }): [bigint, bigint, number] => [m.ledgerId, m.entryId, Math.max(0, m.batchIndex)];
  const compare = (a: [bigint, bigint, number], b: [bigint, bigint, number]): number => (a[0] !== b[0] ? (a[0] < b[0] ? -1 : 1) : a[1] !== b[1] ? (a[1] < b[1] ? -1 : 1) : a[2] - b[2]);
  fc.assert(
    fc.property(id, id, (a, b) => {
      const byId = Math.sign(compare(key(a), key(b)));
      const byOffset = offsetOf(a) === offsetOf(b) ? 0 : offsetOf(a) < offsetOf(b) ? -1 : 1;
      assert.equal(byOffset, byId);
      assert.ok(offsetOf(a) < 2n ** 53n);
      // Exact as a JavaScript number, as the core's offset sets hold it.
      assert.equal(BigInt(Number(offsetOf(a))), offsetOf(a));
    }),
  );
});

test('the largest position packs to 2^53 - 1', () => {
  assert.equal(offsetOf({ ledgerId: maxLedger, entryId: maxEntry, partition: 0, batchIndex: maxBatch }), 2n ** 53n - 1n);
});

test('ids outside the packing are refused, never wrapped', () => {
  const ok = { ledgerId: 1n, entryId: 1n, partition: 0, batchIndex: 0 };
  for (const bad of [
    { ...ok, ledgerId: maxLedger + 1n },
    { ...ok, ledgerId: 2n ** 63n },
    { ...ok, entryId: maxEntry + 1n },
    { ...ok, batchIndex: maxBatch + 1 },
  ]) {
    assert.throws(
      () => offsetOf(decodeMessageId(encodeMessageId(bad))),
      PulsarMessageIdError,
      JSON.stringify(bad, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
    );
  }
  fc.assert(
    fc.property(fc.bigInt({ min: maxLedger + 1n, max: 2n ** 63n - 1n }), fc.bigInt({ min: 0n, max: maxEntry }), (ledgerId, entryId) => {
      assert.throws(() => offsetOf({ ledgerId, entryId, partition: -1, batchIndex: -1 }), PulsarMessageIdError);
    }),
  );
  assert.throws(() => positionOf(2n ** 53n), PulsarMessageIdError);
  assert.throws(() => positionOf(-1n), PulsarMessageIdError);
});

test('malformed message ids are refused', () => {
  assert.throws(() => decodeMessageId(''), PulsarMessageIdError); // no ledger or entry id
  assert.throws(() => decodeMessageId(Buffer.from([0x08]).toString('base64')), PulsarMessageIdError); // truncated varint
  assert.throws(() => decodeMessageId(Buffer.from([0x08, 0x04, 0x3a, 0x05, 0x01]).toString('base64')), PulsarMessageIdError); // length past the end
  assert.throws(() => decodeMessageId(Buffer.from([0x0b, 0x08, 0x04]).toString('base64')), PulsarMessageIdError); // wire type 3
  assert.throws(() => parseEntryId('4-2'), PulsarMessageIdError);
  assert.deepEqual(parseEntryId('4:2'), { ledgerId: 4n, entryId: 2n });
});
