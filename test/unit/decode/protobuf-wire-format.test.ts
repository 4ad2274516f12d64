import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { readWireHeader, writeWireHeader } from '../../../src/decode/protobuf/wire-format.ts';
import { DecodeError } from '../../../src/errors/inserter-error.ts';

const codeOf = (bytes: number[]): string => {
  try {
    readWireHeader(Uint8Array.from(bytes));
  } catch (error) {
    assert.ok(error instanceof DecodeError);
    return error.code;
  }
  return 'read';
};

test('magic 0, a 4-byte big-endian schema id, then [0] as the single byte 0', () => {
  const header = readWireHeader(Uint8Array.from([0, 0, 0, 1, 2, 0, 0x0a, 0x01]));
  assert.equal(header.schemaId, 258);
  assert.deepEqual(header.indexes, [0]);
  assert.equal(header.payloadStart, 6);
  assert.deepEqual([...writeWireHeader(258, [0])], [0, 0, 0, 1, 2, 0]);
});

test('message indexes: a zigzag count, then zigzag indexes (nested messages)', () => {
  // [1, 0]: count 2 → 4, 1 → 2, 0 → 0
  const header = readWireHeader(Uint8Array.from([0, 0xff, 0xff, 0xff, 0xff, 4, 2, 0, 0x08]));
  assert.equal(header.schemaId, 4294967295);
  assert.deepEqual(header.indexes, [1, 0]);
  assert.equal(header.payloadStart, 8);
  // an index of 100 takes two varint bytes (200 = 0xc8 0x01)
  assert.deepEqual(readWireHeader(Uint8Array.from([0, 0, 0, 0, 9, 2, 0xc8, 0x01])).indexes, [100]);
  assert.deepEqual([...writeWireHeader(9, [100])], [0, 0, 0, 0, 9, 2, 0xc8, 0x01]);
});

test('what is not the wire format is a DecodeError with its own code', () => {
  assert.equal(codeOf([1, 0, 0, 0, 1, 0]), 'INSERTER_DECODE_BAD_MAGIC');
  assert.equal(codeOf([0x7b, 0x22, 0x61, 0x22, 0x7d]), 'INSERTER_DECODE_BAD_MAGIC', 'JSON on a protobuf route');
  assert.equal(codeOf([0, 0, 0]), 'INSERTER_DECODE_BAD_MAGIC', 'too short for the schema id');
  assert.equal(codeOf([0, 0, 0, 0, 1]), 'INSERTER_DECODE_BAD_MESSAGE_INDEX', 'ends before the index list');
  assert.equal(codeOf([0, 0, 0, 0, 1, 4, 2]), 'INSERTER_DECODE_BAD_MESSAGE_INDEX', 'ends inside the index list');
  assert.equal(codeOf([0, 0, 0, 0, 1, 1]), 'INSERTER_DECODE_BAD_MESSAGE_INDEX', 'a negative count');
  assert.equal(codeOf([0, 0, 0, 0, 1, 2, 3]), 'INSERTER_DECODE_BAD_MESSAGE_INDEX', 'a negative index');
  assert.equal(codeOf([0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), 'INSERTER_DECODE_BAD_MESSAGE_INDEX', 'a varint too long');
  assert.equal(codeOf([0, 0, 0, 0, 1, 0xfe, 0x01]), 'INSERTER_DECODE_BAD_MESSAGE_INDEX', 'a count of 127 entries');
});

test('property: what writeWireHeader writes, readWireHeader reads back', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.array(fc.integer({ min: 0, max: 100_000 }), { minLength: 1, maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (id, indexes, payload) => {
      const header = writeWireHeader(id, indexes);
      const read = readWireHeader(Buffer.concat([header, payload]));
      assert.equal(read.schemaId, id);
      assert.deepEqual(read.indexes, indexes);
      assert.equal(read.payloadStart, header.length);
    }),
  );
});

test('property: arbitrary bytes either read as a header or fail with a DecodeError, never anything else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 24 }), (bytes) => {
      const code = codeOf([...bytes]);
      assert.ok(code === 'read' || code.startsWith('INSERTER_DECODE_'));
    }),
  );
});
