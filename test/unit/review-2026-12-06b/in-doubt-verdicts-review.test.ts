// Review 2026-12-06b (ranges in doubt, 37abfeb; the review's summary is at the top of
// in-doubt-review.test.ts), findings 1–5: whether a range may have landed, and how a refusal of it
// is judged — a ledger written before the fix, an ALTER reverted within one attempt, `then:
// deadLetter` after an ambiguous or load-dependent failure, a retried delivery after a failed save
// of the new schema, and a hold with no end. Fixed in the same session (finding 2 in the next):
// regression tests now, their `was todo` notes say what each reproduced.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryLedgerStore, type LedgerJson } from '../../../src/ack/ledger.ts';
import type { DestinationConfig } from '../../../src/config/load.ts';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import type { InsertBatch, Sink } from '../../../src/sink/types.ts';
import { expectExactlyOnce, marks } from '../../helpers/exactly-once.ts';
import { HeldDeadLetters, TokenWarehouse, TOPIC, until, worldConfig } from '../../helpers/pipeline-world.ts';
import { fastRetries, isAltered, scripted, startProcess, teamRecords as records } from '../../helpers/in-doubt-world.ts';
import { alter, baseOverrides, refuse, revert, storedLedger, versioned } from './world.ts';

// ---------------------------------------------------------------------------------------------
// Defects (todo): each fails today and passes once fixed
// ---------------------------------------------------------------------------------------------

/**
 * Process A stores the 10 rows' insert and dies before its answer (a kill during the insert); the
 * ledger then holds the intent, and A's rows are in the table under the intent's token.
 */
async function killedAfterStoring(warehouse: TokenWarehouse, ledgers: MemoryLedgerStore): Promise<void> {
  const a = scripted(warehouse, () => 'storeThenHang');
  const pa = startProcess({ sink: a.factory, deadLetters: new HeldDeadLetters(), ledgers });
  void pa.source.append(records(10));
  await until(() => warehouse.rows.length === 10, 'A stored its insert');
  await pa.pipeline.destroy();
  assert.equal(pa.source.committed < 1n, true);
}

// Finding 1. A ledger written before 37abfeb has no `schemas` on its intents: Ledger.fromJson reads
// `schemas: []`, and after B's first attempt records the schema of now, `inDoubt` sees every
// recorded schema equal to the fresh one: the replayed range is judged "not in doubt" although the
// earlier owner sent it under a schema nobody recorded. A schema change across the upgrade (or
// across a crash of the old version) then splits a range that landed: its other rows are inserted
// again under sub-tokens (twice), and the refused row is in the table and dead-lettered unmarked.
// Fix: an intent loaded without a `schemas` field (and sent, i.e. any replayed one) must count as
// sent under an unknown schema — e.g. fromJson pushes a sentinel fingerprint ('unknown') that never
// equals a real one — so such a range is in doubt (left-out row, same token, marked letter). Careful:
// `toJson` omits `schemas` when empty (an intent whose schema read failed), so it must always write
// the field, else such intents also read as legacy — checked on a copy: with the sentinel but not
// the field, more ranges are in doubt and the simulation sticks on Finding 5's hold (seeds 292, 1113,
// 1612). test/unit/ack/ledger.test.ts asserts today that a legacy intent reads with `schemas: []`.
test(
  'a pending intent from a ledger written before the fix (no `schemas`), replayed after an ALTER that makes u4 invalid: no row twice, u4 marked',
  {/* fixed this session; was todo: legacy intents without schemas are judged "same schema": the landed range is split (rows twice) */},
  async () => {
    const warehouse = new TokenWarehouse();
    refuse(warehouse, new Set(['u4']), () => isAltered(warehouse));
    const ledgers = new MemoryLedgerStore();
    await killedAfterStoring(warehouse, ledgers);
    // The ledger as the previous version wrote it: no `schemas`.
    const json = await storedLedger(ledgers);
    for (const intent of json.intents) delete intent.schemas;
    await ledgers.save(TOPIC, 0, json);
    alter(warehouse);
    const letters = new HeldDeadLetters();
    const pb = startProcess({ sink: scripted(warehouse, () => 'pass').factory, deadLetters: letters, ledgers });
    try {
      await pb.source.append(records(10));
      await until(() => pb.source.committed === 10n, 'B committed to 10');
    } finally {
      await pb.pipeline.destroy();
    }
    expectExactlyOnce(warehouse, letters.written, 10);
    assert.deepEqual(marks(letters.written), [[4n, true]]);
  },
);

// Finding 2. The fingerprint recorded for an attempt is that of a schema *read* (cached up to
// schemaRefreshMs, and in any case read before the request): not the schema the server applied to
// the insert. An ALTER that lands after the read and is reverted before the retry (an operator's
// change rolled back; a migration re-run) leaves every recorded fingerprint equal to the fresh read:
// the retry's refusal is judged "same schema, so the first attempt was refused too" — but the first
// attempt landed under the intermediate schema. The range is split: rows twice, the refused row in
// the table and dead-lettered unmarked. Fixed: the fingerprint includes the table's definition
// version (ClickHouse `system.tables.metadata_version`, else `metadata_modification_time`, read with
// the columns), which cannot repeat across a change and its revert; the schema read after the
// ambiguous failure (refreshFingerprint) then differs from the one the attempt was recorded under.
test('an ALTER that lands between the schema read and the insert (which is stored, reply lost) and is reverted before the retry: no row twice', async () => {
  const warehouse = new TokenWarehouse();
  // u4 is valid only under the intermediate schema (say a column widened, then narrowed back).
  refuse(warehouse, new Set(['u4']), () => !isAltered(warehouse));
  const letters = new HeldDeadLetters();
  const sink = (d: DestinationConfig): Sink => {
    const inner = versioned(warehouse, d);
    let n = 0;
    return {
      ...inner,
      insert: async (batch: InsertBatch, signal?: AbortSignal) => {
        if (batch.rows > 0 && ++n === 1) {
          alter(warehouse); // the ALTER lands after the schema was read for this attempt
          await inner.insert(batch, signal); // u4 is valid now: stored
          revert(warehouse); // rolled back before the retry
          throw new WarehouseError(ErrorClasses.transientNetwork, 'socket hang up (stored)', undefined, undefined);
        }
        return inner.insert(batch, signal);
      },
    };
  };
  const p = startProcess({
    config: worldConfig({ ...baseOverrides(), schemaRefreshMs: 30_000, batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 } }),
    sink,
    deadLetters: letters,
    ledgers: new MemoryLedgerStore(),
  });
  try {
    await p.source.append(records(10));
    await until(() => p.source.committed === 10n, 'committed to 10');
  } finally {
    await p.pipeline.destroy();
  }
  expectExactlyOnce(warehouse, letters.written, 10);
});

// Finding 3. `then: deadLetter` after the retries of a class whose failure says nothing about the
// rows — an ambiguous one (transient_network, unknown_insert_status, unknown) or a load-dependent
// one (memory_limit) — dead-letters rows whose earlier attempt may have landed WITHOUT the mark:
// `doubt` is only true when the schema changed, but the schema check proves a verdict only for
// refusals that depend on the rows (row_data, unknown_server_error). The rows are then in the table
// and in the dead-letter topic unmarked, and `dlq replay` re-inserts them (twice). docs/errors.md
// allows `then: deadLetter` for every configurable class. Fix: in `#range`, mark the reason
// `mayHaveLanded` when the range is in limbo and the final failure's class is ambiguous or
// load-dependent (independent of the schema), i.e. `mayHaveLanded: doubt || (inLimbo &&
// !rowDetermined.has(failure.errorClass))`.
test(
  'transient_network with then: deadLetter: an insert stored with its reply lost, then retries exhausted: the dead letters are marked may-have-landed',
  {/* fixed this session; was todo: dead-lettered after an ambiguous failure without the mark: rows in the table and dead-lettered unmarked */},
  async () => {
    const warehouse = new TokenWarehouse();
    const letters = new HeldDeadLetters();
    const s = scripted(warehouse, (n) => (n === 1 ? 'storeThenLose' : 'lose'));
    const cfg = worldConfig({
      ...baseOverrides(),
      batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 },
      errorPolicy: { defaults: { transient_network: { baseMs: 5, capMs: 20, maxAttempts: 3, then: 'deadLetter' } } },
    });
    const p = startProcess({ config: cfg, sink: s.factory, deadLetters: letters, ledgers: new MemoryLedgerStore() });
    try {
      await p.source.append(records(10));
      await until(() => p.source.committed === 10n, 'committed to 10');
    } finally {
      await p.pipeline.destroy();
    }
    assert.equal(warehouse.uuids().length, 10, 'the first attempt landed');
    expectExactlyOnce(warehouse, letters.written, 10);
  },
);

test(
  'memory_limit with then: deadLetter on a batch re-formed after a crash (its insert landed): the dead letters are marked may-have-landed',
  {/* fixed this session; was todo: dead-lettered after a load-dependent refusal of a range in limbo without the mark */},
  async () => {
    const warehouse = new TokenWarehouse();
    const ledgers = new MemoryLedgerStore();
    await killedAfterStoring(warehouse, ledgers);
    warehouse.fail = () => new WarehouseError(ErrorClasses.memoryLimit, 'Code: 241. MEMORY_LIMIT_EXCEEDED', 241, undefined);
    const letters = new HeldDeadLetters();
    const cfg = worldConfig({
      ...baseOverrides(),
      batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 },
      errorPolicy: { defaults: { memory_limit: { baseMs: 5, capMs: 20, maxAttempts: 2, then: 'deadLetter' } } },
    });
    const pb = startProcess({ config: cfg, sink: scripted(warehouse, () => 'pass').factory, deadLetters: letters, ledgers });
    try {
      await pb.source.append(records(10));
      await until(() => pb.source.committed === 10n, 'B committed to 10');
    } finally {
      await pb.pipeline.destroy();
    }
    assert.equal(warehouse.uuids().length, 10, 'the first attempt landed');
    expectExactlyOnce(warehouse, letters.written, 10);
  },
);

/** A sink whose first insert of rows is stored, then the table is altered, then the reply is lost. */
function storedThenAltered(warehouse: TokenWarehouse): (d: DestinationConfig) => Sink {
  let n = 0;
  return (d) => {
    const inner = warehouse.sink(d);
    return {
      ...inner,
      insert: async (batch: InsertBatch, signal?: AbortSignal) => {
        if (batch.rows === 0 || ++n > 1) return inner.insert(batch, signal);
        await inner.insert(batch, signal);
        alter(warehouse);
        throw new WarehouseError(ErrorClasses.transientNetwork, 'socket hang up (stored)', undefined, undefined);
      },
    };
  };
}

/** Fails the first save that records a second schema for an intent (a ledger write timing out). */
class FailingSecondSchemaSave extends MemoryLedgerStore {
  failed = false;
  override async save(topic: string, partition: number, ledger: LedgerJson): Promise<void> {
    if (!this.failed && ledger.intents.some((i) => (i.schemas?.length ?? 0) >= 2)) {
      this.failed = true;
      throw new Error('ledger write timed out');
    }
    await super.save(topic, partition, ledger);
  }
}

// Finding 4. Whether a range "may have landed" is known only to one `deliver()` call: `inLimbo` is a
// local of `#range`, and the journal's `mayHaveLanded` names only the ranges of a *re-formed* batch.
// When a delivery ends with an error that `LaneDelivery.#deliverHolding` retries ("batch held: insert
// keeps failing") — exactly what happens when the durable save of a new schema fingerprint fails in
// `journal.sending`, i.e. right after a schema change — the next `deliver()` of the same batch starts
// with `mayHaveLanded` false for a range whose first attempt was stored with its reply lost. Its
// refusal under the new schema is then split: rows twice (and the refused row in the table and
// dead-lettered unmarked). Fix: remember on the Batch that an insert of it was sent (e.g. set
// `batch.replayed = true`, or keep the set of ranges sent) when a `deliver()` ends in an error after
// any attempt was sent, so the journal of the retry reports those ranges as possibly landed. (On a
// copy, `batch.replayed = true` in the lane's retry path makes this test and sim seed 1902
// (throwingKafkaClients) pass; it also puts more ranges in doubt, so fix Finding 5 with it: alone it
// made throwing seed 1534 stick on the hold.)
test(
  'the save recording the new schema fails (the delivery is retried by the lane): the range whose first insert was stored stays in doubt; no row twice',
  {/* fixed this session; was todo: a retried deliver() forgets that its range may have landed: split after the ALTER (rows twice) */},
  async () => {
    const warehouse = new TokenWarehouse();
    refuse(warehouse, new Set(['u4']), () => isAltered(warehouse));
    const ledgers = new FailingSecondSchemaSave();
    const letters = new HeldDeadLetters();
    const p = startProcess({ sink: storedThenAltered(warehouse), deadLetters: letters, ledgers });
    try {
      await p.source.append(records(10));
      await until(() => p.source.committed === 10n, 'committed to 10');
    } finally {
      await p.pipeline.destroy();
    }
    assert.equal(ledgers.failed, true, 'the save of the second schema failed');
    expectExactlyOnce(warehouse, letters.written, 10);
  },
);

// Finding 5 (liveness, a regression of 37abfeb). A range in limbo (an attempt failed with a network
// error) whose retry is refused without a row number is "held" as soon as *any* ALTER happened in
// between — the fingerprint covers every column, so an unrelated ADD COLUMN counts — and the hold
// has no end: `#holdInDoubt` retries with the class's backoff but without its limits, and reverting
// the ALTER does not help either (the range's recorded schemas keep differing from any schema of
// now: once two are recorded, `inDoubt` is true forever). A poison row whose refusal carries a code
// no class lists (Code 306, JSON nested too deep: `unknown_server_error`, which never names a row)
// then stalls its partition for good, where before the fix it was bisected and dead-lettered (the
// first attempt of a batch holding a poison row cannot have landed). Same for too_many_partitions.
// Fix options: bound the hold by the class's limits, then act on `then` with the mark (e.g.
// dead-letter the held rows marked may-have-landed, or pause the destination with an alert that
// names the token); and/or judge only what can change a verdict (a refusal whose cause is not in
// the columns the ALTER touched).
test(
  'a poison row refused with a code no class lists, after a network error and an unrelated ADD COLUMN: the partition is not held forever',
  {/* fixed this session; was todo: held forever: an in-doubt refusal naming no row is retried whole without end */},
  async () => {
    const warehouse = new TokenWarehouse();
    warehouse.fail = (_t, _r, ids) => (ids.includes('u4') ? new WarehouseError(ErrorClasses.unknownServerError, 'Code: 306. TOO_DEEP_RECURSION', 306, undefined) : undefined);
    const letters = new HeldDeadLetters();
    const s = scripted(warehouse, (n) => {
      if (n !== 1) return 'pass';
      warehouse.columns = [...warehouse.columns, { name: 'unrelated', type: 'String', defaultKind: '' }];
      return 'lose';
    });
    const cfg = worldConfig({
      ...baseOverrides(),
      batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 },
      errorPolicy: { defaults: { transient_network: fastRetries, unknown_server_error: { ...fastRetries, maxAttempts: 5 } } },
    });
    const p = startProcess({ config: cfg, sink: s.factory, deadLetters: letters, ledgers: new MemoryLedgerStore() });
    try {
      await p.source.append(records(10));
      await until(() => p.source.committed === 10n, 'committed to 10', 3_000);
    } finally {
      await p.pipeline.destroy();
    }
    expectExactlyOnce(warehouse, letters.written, 10);
  },
);
