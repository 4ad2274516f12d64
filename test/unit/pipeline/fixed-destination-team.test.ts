// Drop-in semantics where the team does not matter: on a route with a fixed destination, a row
// whose team id is malformed is inserted like any other (ClickHouse's Kafka engine would take it
// if its columns do), not dead-lettered; on a route that routes by team it is still a decode
// error. Drives the real Pipeline over the in-memory world of test/helpers/pipeline-world.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SourceRecord } from '../../../src/source/types.ts';
import { HeldDeadLetters, startWorld, TokenWarehouse, TOPIC, until, worldConfig } from '../../helpers/pipeline-world.ts';

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
const values = ['{"team_id":"abc","uuid":"a"}', '{"team_id":1.5,"uuid":"b"}', '{"team_id":8,"uuid":"c"}', '{"uuid":"d"}'];

test('a fixed destination inserts rows whose team id is malformed; routing by team dead-letters them', async () => {
  const fixed = worldConfig({ routes: [{ name: 'events', topic: TOPIC, table: 'events', destination: 'd1', createTable: { enabled: false } }] });
  const warehouse = new TokenWarehouse();
  const deadLetters = new HeldDeadLetters();
  const world = startWorld({ config: fixed, warehouse, deadLetters });
  try {
    await world.source.append(values.map((v, i) => raw(i, v)));
    await until(() => world.source.committed === 4n, `commits past every record (committed ${world.source.committed})`);
    assert.deepEqual(warehouse.uuids().sort(), ['a', 'b', 'c', 'd']);
    assert.equal(deadLetters.written.length, 0);
  } finally {
    await world.pipeline.destroy();
  }

  const byTeam = worldConfig({ teams: { map: { 8: 'd1' } } });
  const warehouse2 = new TokenWarehouse();
  const deadLetters2 = new HeldDeadLetters();
  const world2 = startWorld({ config: byTeam, warehouse: warehouse2, deadLetters: deadLetters2 });
  try {
    await world2.source.append(values.map((v, i) => raw(i, v)));
    await until(() => world2.source.committed === 4n, `commits past every record (committed ${world2.source.committed})`);
    assert.deepEqual(warehouse2.uuids(), ['c']);
    assert.deepEqual(deadLetters2.written.map((d) => [Number(d.offset), d.reason.code]).sort(), [
      [0, 'INSERTER_DECODE_BAD_TEAM'],
      [1, 'INSERTER_DECODE_BAD_TEAM'],
      [3, 'INSERTER_NO_TEAM'],
    ]);
  } finally {
    await world2.pipeline.destroy();
  }
});
