// One message is one row: a value holding two JSON objects (or trailing bytes), and an empty or
// whitespace-only value, are dead-lettered as decode errors, never inserted (ClickHouse's
// JSONEachRow would make the two objects two rows without Kafka metadata and shift every later
// "(at row N)"); the partition's commits move past them. Drives the real Pipeline over the
// in-memory world of test/helpers/pipeline-world.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SourceRecord } from '../../../src/source/types.ts';
import { event, HeldDeadLetters, startWorld, TokenWarehouse, TOPIC, until, worldConfig } from '../../helpers/pipeline-world.ts';

const raw = (offset: number, value: string): SourceRecord => ({
  topic: TOPIC,
  partition: 0,
  offset: BigInt(offset),
  timestamp: BigInt(Date.now()),
  key: undefined,
  value: Buffer.from(value),
  headers: [],
  epoch: 0,
});

test('two JSON values in one message, trailing bytes, empty and whitespace-only values are dead-lettered, never inserted', async () => {
  const config = worldConfig({ teams: { map: { 8: 'd1' } } });
  const warehouse = new TokenWarehouse();
  const deadLetters = new HeldDeadLetters();
  const { pipeline, source } = startWorld({ config, warehouse, deadLetters });
  try {
    await source.append([
      event(0, 8),
      raw(1, '{"team_id":8,"uuid":"x1"}{"team_id":8,"uuid":"x2"}'),
      raw(2, '{"team_id":8,"uuid":"y1"}\n{"team_id":8,"uuid":"y2"}\n'),
      raw(3, '{"team_id":8,"uuid":"z1"} trailing'),
      raw(4, ''),
      raw(5, ' \n\t '),
      event(6, 8),
    ]);
    await until(() => source.committed === 7n, `commits past every record (committed ${source.committed})`);
    assert.deepEqual(warehouse.uuids().sort(), ['u0', 'u6']);
    assert.deepEqual(deadLetters.written.map((d) => [Number(d.offset), d.reason.errorClass, d.reason.code]).sort(), [
      [1, 'decode', 'INSERTER_DECODE_BAD_JSON'],
      [2, 'decode', 'INSERTER_DECODE_BAD_JSON'],
      [3, 'decode', 'INSERTER_DECODE_NOT_OBJECT'],
      [4, 'decode', 'INSERTER_DECODE_EMPTY'],
      [5, 'decode', 'INSERTER_DECODE_EMPTY'],
    ]);
  } finally {
    await pipeline.destroy();
  }
});
