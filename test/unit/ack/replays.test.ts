// Re-formed batches (src/ack/replays.ts) are all or nothing: a pause that parks one of an intent's
// records must park the whole batch until the partition is read again. Found by the simulation
// (commit 8500904): with one team of the batch paused, the batch (its other team's rows) was completed
// short when the partition read past the intent's last
// record, and the intent's completion resolved the parked record without its row.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryLedgerStore } from '../../../src/ack/ledger.ts';
import type { DestinationConfig } from '../../../src/config/load.ts';
import { Pipeline } from '../../../src/pipeline/pipeline.ts';
import type { InsertBatch, Sink } from '../../../src/sink/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { Metrics } from '../../../src/telemetry/metrics.ts';
import { event, FedSource, HeldDeadLetters, TokenWarehouse, TOPIC, until, worldConfig } from '../../helpers/pipeline-world.ts';

test('a re-formed batch one of whose teams is paused parks whole: after the resume every row lands once', async () => {
  const config = worldConfig({ teams: { map: { 8: 'd1', 9: 'd1' } }, batch: { maxRows: 2, maxBytes: 1 << 24, maxAgeMs: 20 } });
  const ledgers = new MemoryLedgerStore();
  const warehouse = new TokenWarehouse();
  const records = [event(0, 8), event(1, 9)];
  // Process A records the intent of rows 0 and 1, then hangs in its insert and is killed.
  let sent = 0;
  const hanging = (d: DestinationConfig): Sink => ({
    ...warehouse.sink(d),
    insert: (_batch: InsertBatch, signal?: AbortSignal) => {
      sent++;
      return new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(new Error('killed')), { once: true }));
    },
  });
  const sourceA = new FedSource();
  const a = new Pipeline({ config, source: sourceA, sinkFactory: hanging, deadLetters: new HeldDeadLetters(), ledgers, logger: createLogger('silent'), metrics: new Metrics() });
  void a.start();
  a.onAssigned([{ topic: TOPIC, partition: 0 }]);
  void sourceA.append(records);
  await until(() => sent === 1, 'A sent its insert');
  await a.destroy();
  // Process B re-forms the batch: row 0 joins, then the table is paused, then row 1 arrives.
  const sourceB = new FedSource();
  const b = new Pipeline({ config, source: sourceB, sinkFactory: (d) => warehouse.sink(d), deadLetters: new HeldDeadLetters(), ledgers, logger: createLogger('silent'), metrics: new Metrics() });
  void b.start();
  b.onAssigned([{ topic: TOPIC, partition: 0 }]);
  try {
    await sourceB.append([records[0] as (typeof records)[0]]);
    // Team 9 is paused: row 1 (team 9) is parked, while the batch's other row (team 8) is not.
    b.setPauses([{ id: 'p1', scope: { kind: 'team', team: 9 }, reason: 'migration', by: 'test', at: Date.now() }]);
    await sourceB.append([records[1] as (typeof records)[0]]);
    b.setPauses([]);
    await until(() => sourceB.committed === 2n, 'committed to 2 after the resume');
    assert.deepEqual(warehouse.uuids().sort(), ['u0', 'u1']);
  } finally {
    await b.destroy();
  }
});
