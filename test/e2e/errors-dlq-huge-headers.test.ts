// A dead letter too large for its dead-letter topic even without its value (a 1 MiB key and 1 MiB of
// headers on a record whose value is not JSON): it is written without its value, key and original
// headers — the reason and the original coordinates kept, `x-inserter-value-omitted` and
// `x-inserter-key-headers-omitted` saying what was left in the source topic — and the partition's
// commits move on; nothing spins, nothing is dropped silently. (On 4942df1 the value-less dead letter
// was refused too and retried for ever: no commit past the record.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { committedOffsets, produce } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { counts, deadLetters, produceRows, scenarioConfig, TABLE_DDL } from '../helpers/error-scenarios.ts';
import { startInserter, waitFor, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

let bootstrap: string;
let ch: ClickHouseInstance;
let inserter: InserterProcess | undefined;

before(async () => {
  bootstrap = await sharedKafka();
  ch = await startClickHouse();
  await ch.query('CREATE DATABASE e');
  await ch.query(TABLE_DDL('e', 't'));
});

after(async () => {
  await inserter?.kill();
  await ch?.stop();
});

test('a dead letter too large even without its value is written without its key and headers too; commits move on', async () => {
  const topic = uniqueTopic('dlq-huge-headers');
  const group = `${topic}-g`;
  const dlq = `${topic}.dlq`;
  const maxMessageBytes = 64 * 1024;
  await createTopic(bootstrap, topic, 1);
  // Exactly what the start-up check asks for (maxMessageBytes + 256 KiB): it starts.
  await createTopic(bootstrap, dlq, 1, { 'max.message.bytes': String(maxMessageBytes + 256 * 1024) });
  const BAD = 1_024;
  await produceRows(bootstrap, topic, 0, BAD); // offsets 0-1023
  // Not JSON (a decode error, dead-lettered), with a key and headers far above what the topic takes.
  await produce(bootstrap, topic, [{ key: randomBytes(1024 * 1024), value: Buffer.from('not json'), headers: { a: randomBytes(512 * 1024), b: randomBytes(512 * 1024) }, partition: 0 }]); // offset 1024 (a partition given: the client's own key hash takes minutes on a 1 MiB key)
  await produceRows(bootstrap, topic, BAD + 1, BAD + 201);
  inserter = await startInserter(scenarioConfig({ bootstrap, group, topic, url: ch.url, database: 'e', table: 't', maxRows: 256, extra: { maxMessageBytes } }));
  await waitFor(async () => ((await committedOffsets(bootstrap, group, topic, 1))[0] ?? -1n) > BigInt(BAD), 'commits past the record', 60_000).catch(async (error: unknown) => {
    throw new Error(`${String(error)}: committed ${String((await committedOffsets(bootstrap, group, topic, 1))[0])}\n${(await inserter?.log())?.slice(-2500)}`);
  });
  await waitFor(async () => (await counts(ch, 'e', 't')).distinct === BAD + 200, 'every good row', 30_000);
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
  inserter = undefined;
});
