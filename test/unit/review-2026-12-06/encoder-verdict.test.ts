// Review 2026-12-06, target 2: a row the encoder refuses (INSERTER_ENCODE_REJECTED) becomes a
// row_data WarehouseError naming the row (encode/batch-body.ts) and is isolated by deliver.ts +
// split-points.ts. Invariants (docs/design/delivery.md §1): every row lands once or is dead-lettered,
// and "a row is never both in the warehouse and dead-lettered". The encoder's verdict depends on the
// live schema, which TableSchemas re-reads every schemaRefreshMs (and a restarted process reads anew).
// The last two reproduced the review's defect 2 (a schema change between an attempt that may have
// landed and its retry split the range into new tokens: rows twice); fixed as docs/design/delivery.md
// §11 says: the refused row is left out and the rest sent again under the same token; its dead
// letter is marked may-have-landed (it is in the table exactly when the first attempt landed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryLedgerStore } from '../../../src/ack/ledger.ts';
import type { DestinationConfig } from '../../../src/config/load.ts';
import type { EncoderFactory } from '../../../src/encode/types.ts';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import type { Sink } from '../../../src/sink/types.ts';
import { event, HeldDeadLetters, startWorld, TokenWarehouse, until, worldConfig } from '../../helpers/pipeline-world.ts';
import { refusingEncoders } from '../../sim/encoder.ts';

/** Encoders built per schema read: after the ALTER (a column `altered` in the live schema) they refuse `refused`. */
class LiveSchema {
  refused = new Set<string>();
  reads = 0;
  readonly factory: EncoderFactory = (columns, encoding, options) => {
    this.reads++;
    const altered = columns.some((c) => c.name === 'altered');
    return refusingEncoders(altered ? new Set(this.refused) : new Set())(columns, encoding, options);
  };
}

/** The ALTER: the table gains a column, and the new schema's encoder refuses a row the old one took. */
function alter(warehouse: TokenWarehouse): void {
  if (!warehouse.columns.some((c) => c.name === 'altered')) warehouse.columns = [...warehouse.columns, { name: 'altered', type: 'UInt8', defaultKind: 'DEFAULT' }];
}

/** Every row once in the table or dead-lettered; in both only when its dead letter says it may have landed. */
function expectOnceOrDeadLettered(warehouse: TokenWarehouse, deadLetters: HeldDeadLetters, count: number): void {
  const landed = warehouse.uuids();
  const dead = new Set(deadLetters.written.filter((d) => d.reason.mayHaveLanded !== true).map((d) => `u${d.offset}`));
  const both = [...dead].filter((u) => landed.includes(u));
  const twice = landed.filter((u, i) => landed.indexOf(u) !== i);
  const missing = Array.from({ length: count }, (_, i) => `u${i}`).filter((u) => !landed.includes(u) && !dead.has(u));
  assert.deepEqual(
    { twice, both, missing },
    { twice: [], both: [], missing: [] },
    `rows landed twice: [${twice.join(',')}]; landed and dead-lettered: [${both.join(',')}]; lost: [${missing.join(',')}] (inserts: ${warehouse.inserts.join(' ')})`,
  );
}

test('control: a row the encoder refuses is the only row dead-lettered; every other row lands once', async () => {
  const config = worldConfig({ teams: { map: { 8: 'd1' } }, batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 } });
  const schema = new LiveSchema();
  schema.refused.add('u7');
  const warehouse = new TokenWarehouse();
  alter(warehouse);
  const deadLetters = new HeldDeadLetters();
  const { pipeline, source } = startWorld({ config, warehouse, deadLetters, encoders: schema.factory });
  try {
    await source.append(Array.from({ length: 10 }, (_, i) => event(i, 8)));
    await until(() => source.committed === 10n, 'committed to 10');
    expectOnceOrDeadLettered(warehouse, deadLetters, 10);
    assert.deepEqual(
      deadLetters.written.map((d) => [d.offset, d.reason.mayHaveLanded]),
      [[7n, undefined]],
    );
  } finally {
    await pipeline.destroy();
  }
});

/** A warehouse whose first attempt of each token is stored but answered with a network error (the reply was lost). */
function lostReplies(warehouse: TokenWarehouse): (d: DestinationConfig) => Sink {
  const answered = new Set<string>();
  return warehouse.sinksWith(async (inner, batch, signal) => {
    const result = await inner.insert(batch, signal);
    if (batch.rows > 0 && !answered.has(batch.token)) {
      answered.add(batch.token);
      throw new WarehouseError(ErrorClasses.transientNetwork, 'socket hang up (the server stored the insert)', undefined, undefined);
    }
    return result;
  });
}

test('an insert whose reply was lost, retried after the live schema changed: the row the encoder now refuses is left out, the rest is deduplicated under the same token, the row dead-lettered marked may-have-landed', async () => {
  const config = worldConfig({ teams: { map: { 8: 'd1' } }, schemaRefreshMs: 1, batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 } });
  const schema = new LiveSchema();
  const warehouse = new TokenWarehouse();
  const deadLetters = new HeldDeadLetters();
  const { pipeline, source } = startWorld({ config, warehouse, deadLetters, sinkFactory: lostReplies(warehouse), encoders: schema.factory });
  try {
    // The ALTER lands while the first insert is on the wire: the retry re-reads the schema (schemaRefreshMs 1).
    const original = warehouse.fail;
    schema.refused.add('u7');
    warehouse.fail = (token, rows, uuids) => {
      alter(warehouse);
      return original?.(token, rows, uuids);
    };
    await source.append(Array.from({ length: 10 }, (_, i) => event(i, 8)));
    await until(() => source.committed === 10n, 'committed to 10', 5_000);
    expectOnceOrDeadLettered(warehouse, deadLetters, 10);
    assert.equal(warehouse.uuids().length, 10, 'the first attempt landed: every row once, u7 included');
    assert.deepEqual(
      deadLetters.written.map((d) => [d.offset, d.reason.mayHaveLanded]),
      [[7n, true]],
    );
    assert.equal(new Set(warehouse.rows.map((r) => r.token)).size, 1, 'one token: no split');
  } finally {
    await pipeline.destroy();
  }
});

test('a batch re-formed after a crash (its insert landed, unacknowledged) under a schema that now refuses one row: the row is left out, the rest deduplicated under the same token', async () => {
  const config = worldConfig({ teams: { map: { 8: 'd1' } }, batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 } });
  const ledgers = new MemoryLedgerStore();
  const warehouse = new TokenWarehouse();
  const deadLetters = new HeldDeadLetters();
  // Process A: the insert is stored, the reply never comes; A is killed.
  const stored = new Set<string>();
  const hanging = warehouse.sinksWith(async (inner, batch, signal) => {
    await inner.insert(batch, signal);
    stored.add(batch.token);
    return new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(new Error('killed')), { once: true }));
  });
  const schemaA = new LiveSchema();
  const { pipeline: a, source: sourceA } = startWorld({ config, warehouse, deadLetters, ledgers, sinkFactory: hanging, encoders: schemaA.factory });
  const records = Array.from({ length: 10 }, (_, i) => event(i, 8));
  void sourceA.append(records);
  await until(() => stored.size === 1, 'A stored its insert');
  await a.destroy();
  assert.equal(sourceA.committed < 1n, true);
  // Process B: the table was altered meanwhile; its live schema refuses u7.
  alter(warehouse);
  const schemaB = new LiveSchema();
  schemaB.refused.add('u7');
  const { pipeline: b, source: sourceB } = startWorld({ config, warehouse, deadLetters, ledgers, encoders: schemaB.factory });
  try {
    await sourceB.append(records);
    await until(() => sourceB.committed === 10n, 'B committed to 10', 5_000);
    expectOnceOrDeadLettered(warehouse, deadLetters, 10);
    assert.equal(warehouse.uuids().length, 10);
    assert.deepEqual(
      deadLetters.written.map((d) => [d.offset, d.reason.mayHaveLanded]),
      [[7n, true]],
    );
  } finally {
    await b.destroy();
  }
});
