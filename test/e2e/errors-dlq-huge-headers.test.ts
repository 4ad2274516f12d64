// A dead letter too large for its dead-letter topic even without its value (a 1 MiB key and 1 MiB of
// headers on a record whose value is not JSON): it is written without its value, key and original
// headers — the reason and the original coordinates kept, `x-inserter-value-omitted` and
// `x-inserter-key-headers-omitted` saying what was left in the source topic — and the partition's
// commits move on; nothing spins, nothing is dropped silently. (On 4942df1 the value-less dead letter
// was refused too and retried for ever: no commit past the record.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { committedOffsets, produce } from '../helpers/bus.ts';
import { deadLetters, produceRows, useScenarioStack } from '../helpers/error-scenarios.ts';
import { createTopic } from '../helpers/kafka.ts';

const stack = useScenarioStack('dlq-huge-headers');
const { topic, group, dlq } = stack;

test('a dead letter too large even without its value is written without its key and headers too; commits move on', async () => {
  const { bootstrap } = stack;
  const maxMessageBytes = 64 * 1024;
  // Exactly what the start-up check asks for (maxMessageBytes + 256 KiB): it starts.
  await createTopic(bootstrap, dlq, 1, { 'max.message.bytes': String(maxMessageBytes + 256 * 1024) });
  const BAD = 1_024;
  await produceRows(bootstrap, topic, 0, BAD); // offsets 0-1023
  // Not JSON (a decode error, dead-lettered), with a key and headers far above what the topic takes.
  await produce(bootstrap, topic, [{ key: randomBytes(1024 * 1024), value: Buffer.from('not json'), headers: { a: randomBytes(512 * 1024), b: randomBytes(512 * 1024) }, partition: 0 }]); // offset 1024 (a partition given: the client's own key hash takes minutes on a 1 MiB key)
  await produceRows(bootstrap, topic, BAD + 1, BAD + 201);
  // No deadLetterTopic in the route: its default name, `${topic}.dlq`.
  const inserter = await stack.start({ deadLetterTopic: undefined, maxRows: 256, extra: { maxMessageBytes } });
  const committed = async (): Promise<string> => `committed ${String((await committedOffsets(bootstrap, group, topic, 1))[0])}`;
  await stack.waitFor(async () => ((await committedOffsets(bootstrap, group, topic, 1))[0] ?? -1n) > BigInt(BAD), 'commits past the record', 60_000, committed);
  await stack.waitFor(async () => (await stack.counts()).distinct === BAD + 200, 'every good row', 30_000);
  const letters = await deadLetters(bootstrap, dlq, 0);
  assert.equal(letters.length, 1, 'one dead letter');
  const [letter] = letters;
  assert.ok(letter !== undefined);
  assert.equal(letter.headers.get('x-inserter-value-omitted'), String('not json'.length));
  assert.equal(letter.headers.get('x-inserter-key-headers-omitted'), `key ${1024 * 1024} bytes, 2 headers ${512 * 1024 * 2 + 2} bytes`);
  assert.equal(letter.headers.get('x-inserter-original-offset'), String(BAD));
  assert.equal(letter.headers.get('x-inserter-original-topic'), topic);
  assert.equal(letter.headers.get('x-inserter-error-code'), 'INSERTER_DECODE_NOT_OBJECT');
  assert.equal(letter.headers.has('a'), false, 'the original headers are left out');
  assert.ok(letter.key === undefined || letter.key.length === 0, 'no key');
  assert.ok(letter.value === undefined || letter.value.length === 0, 'no value');
  const log = await inserter.log();
  assert.match(log, /dead letter still too large without its value: written without its key and original headers too/);
  assert.doesNotMatch(log, /INSERTER_DLQ_REFUSED/);
  await inserter.kill();
});
