// Review 2026-12-06b of the "ranges in doubt" fix (37abfeb, docs/design/delivery.md §11): an insert
// that may have landed, refused on a retry after the table's live schema changed, is never split:
// the named row is left out (recorded first) and the rest re-sent under the same token, the row
// dead-lettered marked may-have-landed. These tests drive the real Pipeline with fakes (a token-
// deduplicating warehouse whose live schema the test alters, scripted insert outcomes, a shared
// MemoryLedgerStore for crashes: destroy + a new Pipeline). Invariant checked everywhere: every row
// is in its table once or dead-lettered; in both only when its dead letter is marked; never twice.
// Passing tests are controls (the fix holds); `todo` tests reproduce defects found by this review.
// Findings 1, 3, 4, 5, 8 and 9 were fixed in the same session (their tests are regression tests now);
// finding 2 (an ALTER and its revert within one attempt) in the next: the fingerprint includes the
// table's definition version (TableSchema.version), which every ALTER moves.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { Ledger, MemoryLedgerStore, type LedgerJson } from '../../../src/ack/ledger.ts';
import type { Config, DestinationConfig } from '../../../src/config/load.ts';
import type { EncoderFactory } from '../../../src/encode/types.ts';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { AbortedError } from '../../../src/errors/inserter-error.ts';
import { PartitionState } from '../../../src/pipeline/partition-state.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import type { InsertBatch, Sink, TableRef, TableSchema } from '../../../src/sink/types.ts';
import type { SourceRecord } from '../../../src/source/types.ts';
import { expectExactlyOnce, marks, uuids, type Letter } from '../../helpers/exactly-once.ts';
import { event, HeldDeadLetters, TokenWarehouse, TOPIC, until, worldConfig } from '../../helpers/pipeline-world.ts';
import { alteredColumn, fastRetries, isAltered, scripted, startProcess, teamRecords, type Outcome } from '../../helpers/in-doubt-world.ts';
import { simulate } from '../../sim/driver.ts';
import { refusingEncoders } from '../../sim/encoder.ts';

const records = teamRecords;
/** Each warehouse's definition version: every ALTER moves it, as ClickHouse's metadata version does. */
const versions = new WeakMap<TokenWarehouse, number>();
function alter(w: TokenWarehouse): void {
  if (isAltered(w)) return;
  w.columns = [...w.columns, alteredColumn];
  versions.set(w, (versions.get(w) ?? 0) + 1);
}
function revert(w: TokenWarehouse): void {
  w.columns = w.columns.filter((c) => c.name !== 'altered');
  versions.set(w, (versions.get(w) ?? 0) + 1);
}
/** The warehouse's sink, its schema reads saying the definition's version (TableSchema.version). */
function versioned(w: TokenWarehouse, d: DestinationConfig): Sink {
  const inner = w.sink(d);
  const describe = async (table: TableRef): Promise<TableSchema | undefined> => {
    const schema = await inner.describe(table);
    return schema === undefined ? undefined : { ...schema, version: String(versions.get(w) ?? 0) };
  };
  return { ...inner, describe };
}

/** The server refuses rows holding `victims` while `when` holds, naming the body row ("(at row N)") or, with `row`, that row number. */
function refuse(w: TokenWarehouse, victims: ReadonlySet<string>, when: () => boolean, row?: number): void {
  w.fail = (_token, _rows, ids) => {
    if (!when()) return undefined;
    const at = ids.findIndex((u) => victims.has(u));
    if (at < 0) return undefined;
    const named = row ?? at + 1;
    return new WarehouseError(ErrorClasses.rowData, `Cannot parse input (at row ${named})`, 27, undefined, named);
  };
}

async function storedLedger(ledgers: MemoryLedgerStore): Promise<LedgerJson> {
  const json = await ledgers.load(TOPIC, 0);
  assert.ok(json !== undefined, 'a ledger was saved');
  return json;
}

// ---------------------------------------------------------------------------------------------
// Crashes at every step of an exclusion (controls)
// ---------------------------------------------------------------------------------------------

/**
 * Process A: the first insert of the 10 rows is stored or not (`stored`) and its reply lost; the
 * table is altered meanwhile so that u4 is refused; A leaves u4 out (recorded) and re-sends the
 * rest, which `rest` answers; A is killed once `killWhen` holds. Process B then finishes.
 */
async function crashDuringExclusion(
  stored: boolean,
  rest: Outcome,
  killWhen: (sent: InsertBatch[], warehouse: TokenWarehouse) => boolean,
  holdLetters = false,
): Promise<{ warehouse: TokenWarehouse; letters: Letter[]; ledgerA: LedgerJson; sentB: InsertBatch[] }> {
  const warehouse = new TokenWarehouse();
  refuse(warehouse, new Set(['u4']), () => isAltered(warehouse));
  const ledgers = new MemoryLedgerStore();
  const lettersA = new HeldDeadLetters();
  lettersA.hold = holdLetters;
  const a = scripted(warehouse, (n) => {
    if (n === 1) {
      if (!stored) alter(warehouse); // the ALTER lands before the lost insert reaches the server
      return stored ? 'storeThenLose' : 'lose';
    }
    alter(warehouse); // (when stored: the ALTER lands after the first insert)
    return n === 2 ? 'pass' : rest;
  });
  const pa = startProcess({ sink: a.factory, deadLetters: lettersA, ledgers });
  void pa.source.append(records(10));
  await until(() => killWhen(a.sent, warehouse), 'the kill point');
  const ledgerA = await storedLedger(ledgers);
  await pa.pipeline.destroy();
  assert.equal(pa.source.committed < 1n, true, 'A committed nothing');
  const lettersB = new HeldDeadLetters();
  const b = scripted(warehouse, () => 'pass');
  const pb = startProcess({ sink: b.factory, deadLetters: lettersB, ledgers });
  try {
    await pb.source.append(records(10));
    await until(() => pb.source.committed === 10n, 'B committed to 10');
  } finally {
    await pb.pipeline.destroy();
  }
  return { warehouse, letters: [...lettersA.written, ...lettersB.written], ledgerA, sentB: b.sent };
}

test('crash after the exclusion is saved, before the rest is sent (first attempt stored): the replay re-sends the rest under the same token (deduplicated) and dead-letters u4 marked', async () => {
  const { warehouse, letters, ledgerA, sentB } = await crashDuringExclusion(true, 'hang', (sent) => sent.length >= 3);
  assert.deepEqual(ledgerA.intents[0]?.parts?.[0]?.slice(0, 5), [0, 10, 'pending', null, [4]], 'the exclusion was durable before the rest was sent');
  expectExactlyOnce(warehouse, letters, 10);
  assert.deepEqual(warehouse.uuids().sort(), uuids(10).sort(), 'the first attempt landed: every row once');
  assert.deepEqual(marks(letters), [[4n, true]]);
  assert.deepEqual(
    sentB.map((b) => b.rows),
    [9],
    'B sent only the rest',
  );
  assert.equal(new Set(warehouse.inserts.map((i) => i.split(' ')[0])).size, 1, 'one token');
});

test('crash after the rest landed, before it was recorded done (first attempt not stored): the replay is deduplicated; u4 only in the dead-letter topic, marked', async () => {
  const { warehouse, letters } = await crashDuringExclusion(false, 'storeThenHang', (sent) => sent.length >= 3);
  expectExactlyOnce(warehouse, letters, 10);
  assert.deepEqual(
    warehouse.uuids().sort(),
    uuids(10)
      .filter((u) => u !== 'u4')
      .sort(),
  );
  assert.deepEqual(marks(letters), [[4n, true]]);
});

test('crash while the left-out row is being dead-lettered: the replay writes it again, marked; nothing twice, nothing lost', async () => {
  const { warehouse, letters } = await crashDuringExclusion(true, 'pass', (_sent, w) => w.inserts.length >= 2, true);
  expectExactlyOnce(warehouse, letters, 10);
  assert.deepEqual(marks(letters), [[4n, true]]);
});

test('a second exclusion in a replayed part (B refuses u4, already left out, and u7): u7 is mapped back past the left-out row, both dead-lettered marked', async () => {
  const warehouse = new TokenWarehouse();
  const victims = new Set(['u4']);
  refuse(warehouse, victims, () => isAltered(warehouse));
  const ledgers = new MemoryLedgerStore();
  const lettersA = new HeldDeadLetters();
  const a = scripted(warehouse, (n) => {
    if (n === 1) return 'storeThenLose';
    alter(warehouse);
    return n === 2 ? 'pass' : 'hang';
  });
  const pa = startProcess({ sink: a.factory, deadLetters: lettersA, ledgers });
  void pa.source.append(records(10));
  await until(() => a.sent.length >= 3, 'A sent the rest');
  await pa.pipeline.destroy();
  victims.add('u7'); // another ALTER: u7 is refused too
  const lettersB = new HeldDeadLetters();
  const b = scripted(warehouse, () => 'pass');
  const pb = startProcess({ sink: b.factory, deadLetters: lettersB, ledgers });
  try {
    await pb.source.append(records(10));
    await until(() => pb.source.committed === 10n, 'B committed to 10');
  } finally {
    await pb.pipeline.destroy();
  }
  const letters = [...lettersA.written, ...lettersB.written];
  expectExactlyOnce(warehouse, letters, 10);
  assert.deepEqual(
    marks(letters).sort((x, y) => Number(x[0] - y[0])),
    [
      [4n, true],
      [7n, true],
    ],
  );
  // Each left-out row is dead-lettered with the refusal that named it (body row 5, then row 7 of the body without u4).
  const messages = new Map(letters.map((l) => [l.offset, l.reason.message]));
  assert.match(messages.get(4n) ?? '', /at row 5\)/);
  assert.match(messages.get(7n) ?? '', /at row 7\)/, 'the second exclusion keeps its own reason');
  assert.equal(new Set(warehouse.inserts.map((i) => i.split(' ')[0])).size, 1, 'one token');
});

test('the schema is changed back before the replay: the recorded exclusion stands (u4 dead-lettered marked, in the table only via the first attempt)', async () => {
  for (const stored of [true, false]) {
    const warehouse = new TokenWarehouse();
    refuse(warehouse, new Set(['u4']), () => isAltered(warehouse));
    const ledgers = new MemoryLedgerStore();
    const lettersA = new HeldDeadLetters();
    const a = scripted(warehouse, (n) => {
      if (n === 1) return stored ? 'storeThenLose' : 'lose';
      alter(warehouse);
      return n === 2 ? 'pass' : 'hang';
    });
    const pa = startProcess({ sink: a.factory, deadLetters: lettersA, ledgers });
    void pa.source.append(records(10));
    await until(() => a.sent.length >= 3, 'A sent the rest');
    await pa.pipeline.destroy();
    revert(warehouse);
    const lettersB = new HeldDeadLetters();
    const pb = startProcess({ sink: scripted(warehouse, () => 'pass').factory, deadLetters: lettersB, ledgers });
    try {
      await pb.source.append(records(10));
      await until(() => pb.source.committed === 10n, 'B committed to 10');
    } finally {
      await pb.pipeline.destroy();
    }
    const letters = [...lettersA.written, ...lettersB.written];
    expectExactlyOnce(warehouse, letters, 10);
    assert.deepEqual(marks(letters), [[4n, true]]);
    assert.equal(warehouse.uuids().includes('u4'), stored, `stored=${stored}: u4 in the table exactly when the first attempt landed`);
  }
});

// ---------------------------------------------------------------------------------------------
// Shapes of refusals (controls)
// ---------------------------------------------------------------------------------------------

/** One process: the first insert's reply is lost (stored or not), the ALTER lands, later inserts pass the warehouse's verdict. */
async function oneProcess(
  n: number,
  stored: boolean,
  setup: (w: TokenWarehouse) => void,
  extra: { config?: Config; encoders?: EncoderFactory; afterFirst?: (w: TokenWarehouse) => void } = {},
): Promise<{ warehouse: TokenWarehouse; letters: Letter[]; sent: InsertBatch[] }> {
  const warehouse = new TokenWarehouse();
  setup(warehouse);
  const lettersA = new HeldDeadLetters();
  const s = scripted(warehouse, (i) => {
    if (i === 1) return stored ? 'storeThenLose' : 'lose';
    (extra.afterFirst ?? alter)(warehouse);
    return 'pass';
  });
  const p = startProcess({
    ...(extra.config === undefined ? {} : { config: extra.config }),
    sink: s.factory,
    deadLetters: lettersA,
    ledgers: new MemoryLedgerStore(),
    ...(extra.encoders === undefined ? {} : { encoders: extra.encoders }),
  });
  try {
    await p.source.append(records(n));
    await until(() => p.source.committed === BigInt(n), `committed to ${n}`);
  } finally {
    await p.pipeline.destroy();
  }
  return { warehouse, letters: lettersA.written, sent: s.sent };
}

test('every row of a range left out (both rows of a two-row batch refused after the ALTER): both dead-lettered marked, nothing twice, commits pass them', async () => {
  for (const stored of [true, false]) {
    const { warehouse, letters } = await oneProcess(2, stored, (w) => refuse(w, new Set(['u0', 'u1']), () => isAltered(w)), {
      config: worldConfig({ ...baseOverrides(), batch: { maxRows: 2, maxBytes: 1 << 24, maxAgeMs: 20 } }),
    });
    expectExactlyOnce(warehouse, letters, 2);
    assert.deepEqual(marks(letters), [
      [0n, true],
      [1n, true],
    ]);
  }
});

function baseOverrides(): Parameters<typeof worldConfig>[0] {
  return {
    teams: { map: { 8: 'd1' } },
    schemaRefreshMs: 1,
    errorPolicy: { defaults: { transient_network: fastRetries, unknown_server_error: fastRetries, row_data: { baseMs: 5, capMs: 20 } } },
  };
}

// Control (and a spin detector): a refusal in doubt naming a row outside the range cannot be narrowed
// down. Held whole under its token (37abfeb), or dead-lettered whole marked after the class's limits:
// either is fine; never split, never a spin. A delivery loop that re-judges without an attempt or a
// backoff (each turn a schema read and a refusal in hand, all microtasks) starves the event loop:
// this test then never ends (seen on the working tree of 15:05, see the review report).
test('a refusal in doubt naming a row out of range (row 42 of 10) is never split: held under its token (or dead-lettered marked), and lands once when the schema is changed back', async () => {
  const warehouse = new TokenWarehouse();
  refuse(warehouse, new Set(['u4']), () => isAltered(warehouse), 42);
  let refusals = 0;
  const inner = warehouse.fail;
  warehouse.fail = (t, r, ids) => {
    const e = inner?.(t, r, ids);
    if (e !== undefined) refusals++;
    return e;
  };
  const letters = new HeldDeadLetters();
  const s = scripted(warehouse, (i) => {
    if (i === 1) {
      alter(warehouse);
      return 'lose';
    }
    return 'pass';
  });
  const p = startProcess({ sink: s.factory, deadLetters: letters, ledgers: new MemoryLedgerStore() });
  try {
    await p.source.append(records(10));
    await until(() => refusals >= 1, 'refused');
    revert(warehouse);
    await until(() => p.source.committed === 10n, 'committed after the revert');
  } finally {
    await p.pipeline.destroy();
  }
  expectExactlyOnce(warehouse, letters.written, 10);
  assert.equal(new Set(s.sent.map((b) => b.token)).size, 1, 'no other token tried');
  assert.ok(
    letters.written.every((d) => d.reason.mayHaveLanded === true),
    'any dead letter is marked',
  );
});

test('a lone row in doubt refused with a code no class lists (bisect): dead-lettered marked once judged (probe), never inserted twice', async () => {
  for (const stored of [true, false]) {
    const { warehouse, letters } = await oneProcess(
      1,
      stored,
      (w) => {
        w.fail = (_t, _r, ids) => (isAltered(w) && ids.includes('u0') ? new WarehouseError(ErrorClasses.unknownServerError, 'Code: 99999. unlisted', 99999, undefined) : undefined);
      },
      { config: worldConfig({ ...baseOverrides(), batch: { maxRows: 1, maxBytes: 1 << 24, maxAgeMs: 20 } }) },
    );
    expectExactlyOnce(warehouse, letters, 1);
    assert.deepEqual(marks(letters), [[0n, true]], `stored=${stored}`);
  }
});

test('a lone row in doubt refused with row_data (then: deadLetter): dead-lettered marked', async () => {
  for (const stored of [true, false]) {
    const { warehouse, letters } = await oneProcess(1, stored, (w) => refuse(w, new Set(['u0']), () => isAltered(w)), {
      config: worldConfig({ ...baseOverrides(), batch: { maxRows: 1, maxBytes: 1 << 24, maxAgeMs: 20 } }),
    });
    expectExactlyOnce(warehouse, letters, 1);
    assert.deepEqual(marks(letters), [[0n, true]], `stored=${stored}`);
  }
});

test('an encoder refusal (u3) and a server refusal (u8, named by body row) in one range in doubt: both left out, mapped back correctly, marked; one token', async () => {
  const encoders: EncoderFactory = (columns, encoding, options) => refusingEncoders(columns.some((c) => c.name === 'altered') ? new Set(['u3']) : new Set())(columns, encoding, options);
  for (const stored of [true, false]) {
    const { warehouse, letters } = await oneProcess(10, stored, (w) => refuse(w, new Set(['u8']), () => isAltered(w)), { encoders });
    expectExactlyOnce(warehouse, letters, 10);
    assert.deepEqual(
      marks(letters).sort((x, y) => Number(x[0] - y[0])),
      [
        [3n, true],
        [8n, true],
      ],
      `stored=${stored}`,
    );
    assert.equal(new Set(warehouse.rows.map((r) => r.token)).size, 1, 'one token');
  }
});

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

/** A ledger store whose saves wait while `closed`, and which honours the signal it is given (like the Kafka one). */
class GatedLedgerStore extends MemoryLedgerStore {
  closed = false;
  readonly #waiting: Array<() => void> = [];
  override async save(topic: string, partition: number, ledger: LedgerJson, signal?: AbortSignal): Promise<void> {
    if (this.closed) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    if (signal?.aborted === true) throw new AbortedError('ledger save aborted');
    await super.save(topic, partition, ledger);
  }
  get waiting(): number {
    return this.#waiting.length;
  }
  open(): void {
    this.closed = false;
    for (const resume of this.#waiting.splice(0)) resume();
  }
}

// Finding 6 (liveness; found by this review with the simulation — `simulate({ seed: 770 })` stuck,
// partition 0 committed at 3 of 47 — and fixed meanwhile in 308c8e8, found there independently).
// `PartitionState.saveLedger` shared one queued save among its callers but ran the store write under
// the signal of the caller that queued it. 37abfeb added callers with a *range's* signal
// (`journal.sending`, `exclude`): a paused range aborted another lane's *intent* save, whose batch
// took the abort path (needsRewind) and waited for a rewind that never came. Controls now (they
// fail on 37abfeb..49006c6).
test('control (fixed in 308c8e8): a queued ledger save shared by two callers does not fail a caller whose own signal was never aborted', async () => {
  const state = new PartitionState({ topic: TOPIC, partition: 0 });
  state.ledger = new Ledger();
  const store = new GatedLedgerStore();
  store.closed = true;
  const forever = new AbortController();
  const inFlight = state.saveLedger(store, forever.signal); // e.g. a commit's save, waiting on the broker
  await until(() => store.waiting === 1, 'the first save in flight');
  const range = new AbortController();
  const queuedByRange = state.saveLedger(store, range.signal).catch((e: unknown) => e); // journal.sending of a range (its lane signal)
  const intentSave = state.saveLedger(store, forever.signal).catch((e: unknown) => e); // another lane's intent: hardStop
  range.abort(); // the range's lane is paused
  store.open();
  await inFlight;
  await queuedByRange; // the paused caller may see its abort, or the save: either is fine
  assert.equal(await intentSave, undefined, 'a caller whose own signal was never aborted must not fail');
});

test('control (fixed in 308c8e8): simulation seed 770 (default options: ALTERs, pauses, kills) reaches the log end with nothing lost', async () => {
  const result = await simulate({ seed: 770 });
  assert.deepEqual(
    result.violations.map((v) => `[${v.invariant}] ${v.message.slice(0, 160)}`),
    [],
  );
});

// Finding 7 (LOSS, commit past an unresolved record; found by this review with the simulation —
// `simulate({ seed: 882 })`: "incarnation 4 committed 50 but offset 14 … is neither in its table nor
// dead-lettered" — and fixed meanwhile in 308c8e8, found there independently). 8500904 parked a
// re-formed batch whole when `Replays.join` parked one of its records, but a *team* pause arriving
// while the batch was re-forming went through `LaneControl.#stopTeams`, which dropped the batch
// without parking its intent; on a fixed-destination route the intent records no teams, so its later
// records joined a new re-formed batch, `readPast` completed it short, and the intent's completion
// resolved the dropped records without their rows (lost, committed past). Controls now.
test('control (fixed in 308c8e8): a team pause while a re-formed batch of a fixed-destination route is re-forming: the rows joined before the pause are not lost', async () => {
  const cfg = worldConfig({
    routes: [{ name: 'events', topic: TOPIC, table: 'events', destination: 'd1', createTable: { enabled: false } }],
    batch: { maxRows: 3, maxBytes: 1 << 24, maxAgeMs: 20 },
  });
  const ledgers = new MemoryLedgerStore();
  const warehouse = new TokenWarehouse();
  const rows = [event(0, 9), event(1, 8), event(2, 8)];
  // Process A records the intent of rows 0-2, then hangs in its insert and is killed.
  const a = scripted(warehouse, () => 'hang');
  const pa = startProcess({ config: cfg, sink: a.factory, deadLetters: new HeldDeadLetters(), ledgers });
  void pa.source.append(rows);
  await until(() => a.sent.length === 1, 'A sent its insert');
  await pa.pipeline.destroy();
  // Process B re-forms it: row 0 (team 9) joins, team 9 is paused, rows 1 and 2 (team 8) arrive.
  const pb = startProcess({ config: cfg, sink: scripted(warehouse, () => 'pass').factory, deadLetters: new HeldDeadLetters(), ledgers });
  try {
    await pb.source.append([rows[0] as SourceRecord]);
    pb.pipeline.setPauses([{ id: 'p1', scope: { kind: 'team', team: 9 }, reason: 'migration', by: 'test', at: Date.now() }]);
    await pb.source.append([rows[1] as SourceRecord, rows[2] as SourceRecord]);
    pb.pipeline.setPauses([]);
    await until(() => pb.source.committed === 3n, 'committed to 3 after the resume');
  } finally {
    await pb.pipeline.destroy();
  }
  expectExactlyOnce(warehouse, [], 3);
});

test('control (fixed in 308c8e8): simulation seed 882 (default options) commits past no unresolved record and loses nothing', async () => {
  const result = await simulate({ seed: 882 });
  assert.deepEqual(
    result.violations.map((v) => `[${v.invariant}] ${v.message.slice(0, 160)}`),
    [],
  );
});

/** Saves fail (a plain error, as a Kafka producer timing out) from the first one that records a split until `healed`. */
class BrokenFromFirstSplit extends MemoryLedgerStore {
  broken = false;
  healed = false;
  failures = 0;
  override async save(topic: string, partition: number, ledger: LedgerJson): Promise<void> {
    if (!this.healed && ledger.intents.some((i) => i.parts !== undefined)) this.broken = true;
    if (this.broken && !this.healed) {
      this.failures++;
      throw new Error('ledger write failed: broker unavailable');
    }
    await super.save(topic, partition, ledger);
  }
}

// Finding 8 (DUPLICATES; found by the simulation with throwingKafkaClients — seeds 156, 319, 434,
// 491, 834, 2207 of 1–3000 on 49006c6; on 8f26467 434, 491, 1023, 1248, 2207, 2820 — 1023 traced: a
// sub-insert sent on a split whose save had failed landed as a zombie after the kill, then the next
// owner sent the range under its whole token; the CI runs that mode for 100 seeds only). The Ledger is
// mutated in memory before the save that makes a split durable (`journal.split`: ledger.split, then
// saveLedger). When that save fails with an error (not a fence), `#deliverHolding` keeps the batch
// and calls `deliver()` again — which reads the in-memory, never-saved parts (`leaves()`) and
// inserts them under their sub-tokens (the same happens to a re-formed batch after a rewind). A
// crash before a later save lands leaves the durable ledger without the split: the next owner
// re-inserts the range whole under its parent token, which the warehouse has never seen: every row
// twice. Fix: never act on ledger state that is not durable — e.g. in `#deliverHolding`, before
// `deliver()`, save the ledger when it is dirty (await it), or roll back the in-memory mutation
// when its save fails. (Checked on a copy: with such a save the six seeds pass.)
test(
  'a split whose save failed is not acted on before it is durable: a crash then a replay inserts no row twice',
  {/* fixed this session; was todo: the lane retries deliver() over in-memory parts never saved; the next owner re-inserts the range whole (rows twice) */},
  async () => {
    const cfg = worldConfig({ teams: { map: { 8: 'd1' } }, batch: { maxRows: 4, maxBytes: 1 << 24, maxAgeMs: 20 }, errorPolicy: { defaults: { memory_limit: { baseMs: 5, capMs: 20 } } } });
    const warehouse = new TokenWarehouse();
    const ledgers = new BrokenFromFirstSplit();
    // Process A: the first insert of the 4 rows is refused for memory (split); later inserts land.
    const a = scripted(warehouse, () => 'pass');
    const memoryFirst = (d: DestinationConfig): Sink => {
      const inner = a.factory(d);
      let first = true;
      return {
        ...inner,
        insert: async (batch: InsertBatch, signal?: AbortSignal) => {
          if (batch.rows > 0 && first) {
            first = false;
            throw new WarehouseError(ErrorClasses.memoryLimit, 'Code: 241. MEMORY_LIMIT_EXCEEDED', 241, undefined);
          }
          return inner.insert(batch, signal);
        },
      };
    };
    const pa = startProcess({ config: cfg, sink: memoryFirst, deadLetters: new HeldDeadLetters(), ledgers });
    void pa.source.append(records(4));
    // A inserts the parts of the split it could not save (today), or keeps retrying the save (fixed).
    await until(() => ledgers.broken && (warehouse.rows.length === 4 || ledgers.failures >= 20), 'A acted on, or kept retrying, a split it could not save', 5_000);
    await pa.pipeline.destroy();
    ledgers.healed = true;
    const pb = startProcess({ config: cfg, sink: scripted(warehouse, () => 'pass').factory, deadLetters: new HeldDeadLetters(), ledgers });
    try {
      await pb.source.append(records(4));
      await until(() => pb.source.committed === 4n, 'B committed to 4');
    } finally {
      await pb.pipeline.destroy();
    }
    expectExactlyOnce(warehouse, [], 4);
  },
);

/** A seed that reproduced a finding with throwing Kafka clients; fixed this session, so a regression seed now. */
const simTodo = (seed: number, finding: string): void => {
  test(`simulation seed ${seed} with throwing Kafka clients: no violation (${finding})`, async () => {
    const result = await simulate({ seed, throwingKafkaClients: true });
    assert.deepEqual(
      result.violations.slice(0, 3).map((v) => `[${v.invariant}] ${v.message.slice(0, 160)}`),
      [],
    );
  });
};
simTodo(491, 'rows twice: parts of a split whose ledger save failed were inserted, then replayed whole (Finding 8)');
simTodo(1902, 'a row in its table and dead-lettered unmarked: a retried deliver() forgot its range may have landed (Finding 4)');

/** Saves fail (a plain error) from the first one that records rows left out until `healed`. */
class BrokenFromFirstExclusion extends MemoryLedgerStore {
  broken = false;
  healed = false;
  failures = 0;
  override async save(topic: string, partition: number, ledger: LedgerJson): Promise<void> {
    if (!this.healed && ledger.intents.some((i) => i.parts?.some((p) => p.length > 4) === true)) this.broken = true;
    if (this.broken && !this.healed) {
      this.failures++;
      throw new Error('ledger write failed: broker unavailable');
    }
    await super.save(topic, partition, ledger);
  }
}

// Finding 8, the exclusion's form (LOSS): `journal.exclude` also mutates the ledger before its save.
// When that save fails, the lane's retry of `deliver()` reads the never-saved exclusion, sends the
// rest under the token (stored: the first attempt had not landed) and starts dead-lettering the
// left-out row. A crash before that dead letter is acknowledged, and the ALTER reverted before the
// next owner replays (an operator rolling back the change that caused the refusals): the durable
// ledger names no exclusion, the whole range is sent under the same token — accepted, and dropped
// as a duplicate — so the left-out row is in no table and in no dead-letter topic, and its record is
// committed past. Same fix as above (act only on durable ledger state).
test(
  'an exclusion whose save failed is not acted on before it is durable: crash, the ALTER reverted, replay: the left-out row is not lost',
  {/* fixed this session; was todo: lost: the rest was sent under the token on a non-durable exclusion; the replay of the whole is deduplicated */},
  async () => {
    const warehouse = new TokenWarehouse();
    refuse(warehouse, new Set(['u4']), () => isAltered(warehouse));
    const ledgers = new BrokenFromFirstExclusion();
    const lettersA = new HeldDeadLetters();
    lettersA.hold = true; // A dies before the left-out row's dead letter is acknowledged
    const a = scripted(warehouse, (n) => {
      if (n === 1) {
        alter(warehouse);
        return 'lose';
      }
      return 'pass';
    });
    const pa = startProcess({ sink: a.factory, deadLetters: lettersA, ledgers });
    void pa.source.append(records(10));
    // A sends the rest on the exclusion it could not save (today), or keeps retrying the save (fixed).
    await until(() => ledgers.broken && (warehouse.rows.length === 9 || ledgers.failures >= 20), 'A acted on, or kept retrying, an exclusion it could not save', 5_000);
    await pa.pipeline.destroy();
    ledgers.healed = true;
    revert(warehouse);
    const lettersB = new HeldDeadLetters();
    const pb = startProcess({ sink: scripted(warehouse, () => 'pass').factory, deadLetters: lettersB, ledgers });
    try {
      await pb.source.append(records(10));
      await until(() => pb.source.committed === 10n, 'B committed to 10');
    } finally {
      await pb.pipeline.destroy();
    }
    expectExactlyOnce(warehouse, [...lettersA.written, ...lettersB.written], 10);
  },
);

// Finding 9 (liveness of the whole process; found by the simulation with throwingKafkaClients —
// seed 184 on 8f26467: every partition's commits stay at 0 while all is resolved; after the last
// rewind no record was tracked at all). `Rewinder.request` sets `#again` when a rewind is running;
// but a request that arrives after the loop saw `#again` false and broke out, and before the
// `.finally` that clears `#running` (a microtask gap — in seed 184 a dead-letter write failing in
// the same tick as the switch), is lost: `#requested` moved, `#switched` never catches up, so
// `pending` stays true and `Pipeline` drops every record read from then on as stale. Nothing is
// delivered or committed again until a restart (nothing is lost: the position stays put). Fix: in
// the `.finally`, run again when `#again` (or `#switched < #requested`) — checked on a copy: seed
// 184 passes with it.
test(
  'a rewind requested just as the previous one finishes is not lost (pending clears)',
  {/* fixed this session; was todo: Rewinder loses a request that arrives between its loop exit and .finally: pending stays true, every record is dropped as stale */},
  () => {
    // Run where no async hooks are on (node:test enables them, which changes how many microtask
    // turns an await takes): a child process, requesting again 0..39 microtask turns after the
    // first rewind's switch, reports the turns after which the request was lost.
    const rewinder = new URL('../../../src/source/rewinder.ts', import.meta.url).href;
    const helpers = new URL('../../helpers/pipeline-world.ts', import.meta.url).href;
    const logger = new URL('../../../src/telemetry/logger.ts', import.meta.url).href;
    const script = `
      const { Rewinder } = await import(${JSON.stringify(rewinder)});
      const { worldConfig } = await import(${JSON.stringify(helpers)});
      const { createLogger } = await import(${JSON.stringify(logger)});
      const lost = [];
      for (let hops = 0; hops < 40; hops++) {
        const late = {};
        let rewinds = 0;
        const source = { rewind: async (onSwitch) => {
          rewinds++;
          onSwitch();
          if (rewinds === 1) {
            let step = Promise.resolve();
            for (let i = 0; i < hops; i++) step = step.then(() => undefined);
            void step.then(() => late.r.request());
          }
        } };
        const stop = new AbortController();
        late.r = new Rewinder({ source, config: worldConfig(), logger: createLogger('silent'), stop: stop.signal, hardStop: stop.signal, track: () => undefined, onSwitch: () => undefined });
        late.r.request();
        await new Promise((resolve) => setImmediate(resolve));
        if (late.r.pending) lost.push(hops);
        stop.abort();
      }
      console.log(JSON.stringify(lost));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.deepEqual(JSON.parse(out.trim().split('\n').at(-1) ?? '[]'), [], 'microtask turns after which a request was lost');
  },
);
