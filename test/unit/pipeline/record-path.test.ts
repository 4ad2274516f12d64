// The per-record path keeps the last record's partition state and lane between records (records
// come in runs per partition): an ownership change must never let a record through on a kept state.
// A record of a revoked partition still buffered in the stream is dropped, even when it continues
// the run that was being read; partitions interleaved record by record go to their own lanes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SourceRecord } from '../../../src/source/types.ts';
import { event, startWorld, TokenWarehouse, until, worldConfig } from '../../helpers/pipeline-world.ts';

const at = (partition: number, offset: number, team: number): SourceRecord => ({
  ...event(offset, team),
  partition,
  value: Buffer.from(JSON.stringify({ team_id: team, uuid: `p${partition}-${offset}` })),
});

test('a record of a partition revoked in the middle of its run is dropped; interleaved partitions each get their rows once', async () => {
  const config = worldConfig({ teams: { map: { 1: 'd1' } } });
  const warehouse = new TokenWarehouse();
  const world = startWorld({ config, warehouse, partitions: [0, 1] });
  try {
    // Interleaved one by one: the kept state and lane change with every record.
    const records: SourceRecord[] = [];
    for (let offset = 0; offset < 6; offset++) records.push(at(0, offset, 1), at(1, offset, 1));
    await world.source.append(records);
    await until(() => world.source.committedAt(0) === 6n && world.source.committedAt(1) === 6n, 'both partitions committed');
    assert.deepEqual(warehouse.uuids().sort(), records.map((r) => `p${r.partition}-${r.offset}`).sort());
    for (const row of warehouse.rows) assert.ok(row.token.startsWith(`t:${row.uuid.slice(1, 2)}:`), `row ${row.uuid} in its own partition's batch (${row.token})`);

    // Partition 0 is the last one read; it is revoked, and a record of it still buffered arrives.
    await world.pipeline.onRecord(at(0, 6, 1));
    world.source.revoke(world.pipeline, [0]);
    await world.pipeline.onRecord(at(0, 7, 1));
    await world.pipeline.onRecord(at(1, 6, 1));
    await until(() => world.source.committedAt(1) === 7n, 'partition 1 goes on');
    await new Promise((resolve) => setTimeout(resolve, 60)); // longer than a batch's age
    const uuids = warehouse.uuids();
    assert.ok(!uuids.includes('p0-7'), 'a record read after its partition was revoked is never inserted');
    assert.ok(uuids.includes('p1-6'));
    assert.equal(
      world.pipeline.status().partitions.some((p) => p.partition === 0),
      false,
      'no state is kept for the revoked partition',
    );
    // Routed on a kept state, it would sit in an abandoned batch, its bytes counted forever.
    assert.equal(world.pipeline.status().bufferedBytesByDestination.d1 ?? 0, 0, 'no bytes held for a record that was dropped');
  } finally {
    await world.pipeline.destroy();
  }
});
