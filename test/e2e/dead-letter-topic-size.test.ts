// A dead-letter topic inserter creates takes the largest record a route accepts (`maxMessageBytes`)
// plus its headers: it is created with `max.message.bytes` = maxMessageBytes + 256 KiB, so a
// dead letter above the broker's own `message.max.bytes` (8 MiB on the test broker) is written,
// where the broker's default would refuse it and the writer would retry it for ever.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Admin } from '@platformatic/kafka';
import { DeadLetterWriter, deadLetterTopicMaxBytes } from '../../src/source/kafka-dead-letter-writer.ts';
import type { SourceRecord } from '../../src/source/types.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

let writer: DeadLetterWriter | undefined;
let admin: Admin | undefined;

after(async () => {
  await writer?.close();
  await admin?.close();
});

test('a dead-letter topic is created with max.message.bytes for maxMessageBytes plus headers; a 9 MiB dead letter is written', async () => {
  const bootstrap = await sharedKafka();
  const maxMessageBytes = 10 * 1024 * 1024;
  const dlq = uniqueTopic('dlq-size');
  writer = new DeadLetterWriter({
    brokers: [bootstrap],
    clientId: 'dlq-size-test',
    createPartitions: 1,
    maxMessageBytes,
    retry: { baseMs: 100, factor: 2, capMs: 500, maxAttempts: 3 },
    logger: createLogger('silent'),
  });
  const record: SourceRecord = {
    topic: 'events',
    partition: 0,
    offset: 7n,
    timestamp: BigInt(Date.now()),
    key: Buffer.from('k'),
    value: Buffer.alloc(9 * 1024 * 1024, 0x61),
    headers: [[Buffer.from('h'), Buffer.from('v')]],
    epoch: 0,
  };
  await writer.write(
    dlq,
    record,
    { errorClass: 'row_data', code: 'INSERTER_SINK_ROW_DATA', message: 'x'.repeat(5000), route: 'r', destination: 'd', table: 'db.t', attempts: 1 },
    AbortSignal.timeout(60_000),
  );
  admin = new Admin({ clientId: 'dlq-size-admin', bootstrapBrokers: [bootstrap] });
  const [description] = await admin.describeConfigs({ resources: [{ resourceType: 2, resourceName: dlq, configurationKeys: ['max.message.bytes'] }] });
  const value = description?.configs.find((c) => c.name === 'max.message.bytes')?.value;
  assert.equal(value, String(deadLetterTopicMaxBytes(maxMessageBytes)));
});
