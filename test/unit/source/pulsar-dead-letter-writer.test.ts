// The mapping of a dead letter onto a Pulsar message and back (source/pulsar-dead-letter-writer.ts):
// any key, value and headers — bytes that are not UTF-8, names the mapping itself uses, the writer's
// own header names among the original headers, duplicates — survive a trip through the broker as it
// treats properties (JSON strings, a map delivered in no particular order) and parse back through
// parseDeadLetter to the same record and reason.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseDeadLetter } from '../../../src/deadletter/record.ts';
import { deadLetterHeader, type DeadLetterReason } from '../../../src/deadletter/types.ts';
import { deadLetterMessage } from '../../../src/deadletter/writer.ts';
import { ESCAPE, fromPulsarMessage, toPulsarMessage } from '../../../src/source/pulsar-dead-letter-writer.ts';
import { encodeMessageId } from '../../../src/source/pulsar-message-id.ts';
import type { SourceRecord } from '../../../src/source/types.ts';

const reason: DeadLetterReason = { errorClass: 'row_data', code: 'INSERTER_DECODE_BAD_JSON', message: 'b64:looks escaped, ünïcode', route: 'r', table: 'db.t', team: 3 };

const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a)),
  fc.string({ maxLength: 8 }).map((s) => Buffer.from(s)),
  fc.constantFrom(...Object.values(deadLetterHeader), 'b64:', 'b64:0:AA==', '__proto__', 'constructor', '').map((s) => Buffer.from(s)),
);

/** What the broker hands back: property names and values through JSON, in an order of its own. */
function throughBroker(properties: Readonly<Record<string, string>>, order: readonly number[]): Record<string, string> {
  const entries = Object.entries(JSON.parse(JSON.stringify(properties)) as Record<string, string>);
  const shuffled = entries.map((e, i) => ({ e, k: order[i % Math.max(1, order.length)] ?? 0 })).sort((a, b) => a.k - b.k);
  return JSON.parse(JSON.stringify(Object.fromEntries(shuffled.map(({ e }) => e)))) as Record<string, string>;
}

const sortedHex = (headers: ReadonlyArray<readonly [Buffer, Buffer]>): string[] => headers.map(([n, v]) => `${n.toString('hex')}:${v.toString('hex')}`).sort();

test('any key, value and headers survive the Pulsar message and parse back to the same dead letter', () => {
  fc.assert(
    fc.property(
      fc.option(bytes, { nil: undefined }),
      fc.option(bytes, { nil: undefined }),
      fc.array(fc.tuple(bytes, bytes), { maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (key, value, headers, order) => {
        const record: SourceRecord = { topic: 'events', partition: 2, offset: 99n, timestamp: 1_700_000_000_000n, key, value, headers, epoch: 0 };
        const message = toPulsarMessage(deadLetterMessage('events.dlq', record, reason));
        for (const [name, text] of Object.entries(message.properties ?? {})) {
          assert.equal(Buffer.from(name).toString(), name, 'property names are UTF-8 strings');
          assert.equal(Buffer.from(text).toString(), text, 'property values are UTF-8 strings');
        }
        const frame = {
          messageId: encodeMessageId({ ledgerId: 12n, entryId: 5n, partition: -1, batchIndex: -1 }),
          payload: message.payload.toString('base64'),
          properties: throughBroker(message.properties ?? {}, order),
          publishTime: '2026-01-02T03:04:05.678Z',
          ...(message.key === undefined ? {} : { key: message.key }),
        };
        const letter = parseDeadLetter(fromPulsarMessage('events.dlq', frame));
        assert.deepEqual(letter.original?.key, key);
        assert.deepEqual(letter.original?.value, value ?? Buffer.alloc(0), 'an absent value reads back empty');
        assert.deepEqual(sortedHex(letter.original?.headers ?? []), sortedHex(headers));
        assert.equal(letter.message, reason.message);
        assert.equal(letter.code, reason.code);
        assert.equal(letter.team, 3);
        assert.equal(letter.original?.offset, 99n);
        assert.equal(letter.raw.offset, (12n << 27n) | (5n << 10n));
        assert.equal(letter.raw.timestamp, BigInt(Date.parse('2026-01-02T03:04:05.678Z')));
      },
    ),
    { numRuns: 500 },
  );
});

test('plain text stays plain; bytes that are not UTF-8 and the escape prefix itself are escaped', () => {
  const record: SourceRecord = {
    topic: 'events',
    partition: 0,
    offset: 1n,
    timestamp: 1n,
    key: Buffer.from([0xff]),
    value: Buffer.from('v'),
    headers: [
      [Buffer.from('trace'), Buffer.from('t-1')],
      [Buffer.from('raw'), Buffer.from([0xc3, 0x28])],
      [Buffer.from(deadLetterHeader.route), Buffer.from('original')],
    ],
    epoch: 0,
  };
  const message = toPulsarMessage(deadLetterMessage('d', record, reason));
  assert.equal(message.key, `${ESCAPE}/w==`);
  assert.equal(message.properties?.trace, 't-1');
  assert.equal(message.properties?.raw, `${ESCAPE}wyg=`);
  assert.equal(message.properties?.[`${ESCAPE}2:${Buffer.from(deadLetterHeader.route).toString('base64')}`], 'original', "an original header with a writer's name is escaped");
  assert.equal(message.properties?.[deadLetterHeader.route], 'r', "the writer's header is plain");
  assert.equal(message.properties?.[deadLetterHeader.message], `${ESCAPE}${Buffer.from(reason.message).toString('base64')}`, 'a value that starts with the prefix is escaped');
});
