// Review 2026-12-06d of dc69dcf: each row left out of an insert in doubt (docs/design/delivery.md §11)
// keeps the refusal that named it (Ledger.exclude's `excludedReasons`, one per excluded row, in the
// order of `excluded`). These tests drive the real Pipeline with fakes: a token-deduplicating
// warehouse whose schema the test alters, scripted insert outcomes, and a MemoryLedgerStore shared by
// two processes for crashes (destroy + a new Pipeline). Each refusal names its row's uuid, so a letter
// shows whose refusal it carries. Exclusions are made in descending row order (the second one goes in
// front of the first: the splice path), with a crash after each step, and from a ledger of the old
// layout (one reason object for all excluded rows). All pass: controls.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryLedgerStore, type LedgerJson } from '../../../src/ack/ledger.ts';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import type { InsertBatch } from '../../../src/sink/types.ts';
import { expectExactlyOnce, marks, type Letter } from '../../helpers/exactly-once.ts';
import { HeldDeadLetters, TokenWarehouse, TOPIC, until } from '../../helpers/pipeline-world.ts';
import { alteredColumn, isAltered, scripted, startProcess, teamRecords, type Outcome } from '../../helpers/in-doubt-world.ts';

const records = teamRecords;
function alter(w: TokenWarehouse): void {
  if (!isAltered(w)) w.columns = [...w.columns, alteredColumn];
}

/**
 * While the table is altered, the server refuses an insert holding one of `victims`: the LAST one in
 * the body (so the higher row is left out first), named by body row, its uuid in the message
 * (`pad` makes the message that long).
 */
function refuseLast(w: TokenWarehouse, victims: ReadonlySet<string>, pad = 0): void {
  w.fail = (_token, _rows, ids) => {
    if (!isAltered(w)) return undefined;
    const at = ids.findLastIndex((u) => victims.has(u));
    if (at < 0) return undefined;
    return new WarehouseError(ErrorClasses.rowData, `Cannot parse input: ${ids[at]}${'.'.repeat(pad)} (at row ${at + 1})`, 27, undefined, at + 1);
  };
}

/** Process B: replays what the ledger holds, every insert answered; ends when it committed all 10. */
async function finish(warehouse: TokenWarehouse, ledgers: MemoryLedgerStore): Promise<Letter[]> {
  const letters = new HeldDeadLetters();
  const b = scripted(warehouse, () => 'pass');
  const pb = startProcess({ sink: b.factory, deadLetters: letters, ledgers });
  try {
    await pb.source.append(records(10));
    await until(() => pb.source.committed === 10n, 'B committed to 10');
  } finally {
    await pb.pipeline.destroy();
  }
  return letters.written;
}

/** Each left-out row's letter: its offset and the uuid its refusal named (several letters of a row: all must agree). */
function namedBy(letters: readonly Letter[]): Array<[bigint, string]> {
  const byOffset = new Map<bigint, Set<string>>();
  for (const l of letters) {
    const uuid = /Cannot parse input: (u\d+)/.exec(l.reason.message)?.[1] ?? `? ${l.reason.message}`;
    byOffset.set(l.offset, (byOffset.get(l.offset) ?? new Set()).add(uuid));
  }
  return [...byOffset.entries()].map(([offset, named]): [bigint, string] => [offset, [...named].join('|')]).sort((x, y) => Number(x[0] - y[0]));
}

const both: Array<[bigint, string]> = [
  [4n, 'u4'],
  [7n, 'u7'],
];
const bothMarked: Array<[bigint, boolean | undefined]> = [
  [4n, true],
  [7n, true],
];
const sortedMarks = (letters: readonly Letter[]): Array<[bigint, boolean | undefined]> => marks(letters).sort((x, y) => Number(x[0] - y[0]));

/** Process A: the first insert is stored and its reply lost, the table is altered, then `script(n)` for n >= 2. A is killed once `killWhen` holds. */
async function processA(warehouse: TokenWarehouse, ledgers: MemoryLedgerStore, script: (n: number) => Outcome, killWhen: (sent: InsertBatch[]) => boolean): Promise<Letter[]> {
  const letters = new HeldDeadLetters();
  const a = scripted(warehouse, (n) => {
    if (n === 1) return 'storeThenLose';
    alter(warehouse);
    return script(n);
  });
  const pa = startProcess({ sink: a.factory, deadLetters: letters, ledgers });
  try {
    void pa.source.append(records(10));
    await until(() => killWhen(a.sent), 'the kill point');
  } finally {
    await pa.pipeline.destroy();
  }
  assert.equal(pa.source.committed < 1n, true, 'A committed nothing');
  return letters.written;
}

test('two exclusions in descending order in one process (u7 named first, then u4): each letter carries the refusal that named its row, both marked', { timeout: 60_000 }, async () => {
  const warehouse = new TokenWarehouse();
  refuseLast(warehouse, new Set(['u4', 'u7']));
  const ledgers = new MemoryLedgerStore();
  const letters = new HeldDeadLetters();
  const a = scripted(warehouse, (n) => {
    if (n === 1) return 'storeThenLose';
    alter(warehouse);
    return 'pass';
  });
  const pa = startProcess({ sink: a.factory, deadLetters: letters, ledgers });
  try {
    await pa.source.append(records(10));
    await until(() => pa.source.committed === 10n, 'committed to 10');
  } finally {
    await pa.pipeline.destroy();
  }
  expectExactlyOnce(warehouse, letters.written, 10);
  assert.deepEqual(namedBy(letters.written), both);
  assert.deepEqual(sortedMarks(letters.written), bothMarked);
  // u7 was refused at body row 8, u4 then at body row 5 of the body without u7.
  const messages = new Map(letters.written.map((l) => [l.offset, l.reason.message]));
  assert.match(messages.get(7n) ?? '', /at row 8\)$/);
  assert.match(messages.get(4n) ?? '', /at row 5\)$/);
  assert.equal(new Set(warehouse.rows.map((r) => r.token)).size, 1, 'one token');
});

test('a crash after the first exclusion (u7) is saved: the replay leaves u4 out in front of it; each keeps its own refusal', { timeout: 60_000 }, async () => {
  const warehouse = new TokenWarehouse();
  refuseLast(warehouse, new Set(['u4', 'u7']));
  const ledgers = new MemoryLedgerStore();
  // n=2 is refused for u7 (left out), n=3 (refused for u4) is where A dies: its refusal is never seen.
  const lettersA = await processA(
    warehouse,
    ledgers,
    (n) => (n === 3 ? 'hang' : 'pass'),
    (sent) => sent.length >= 3,
  );
  const saved = (await ledgers.load(TOPIC, 0)) as LedgerJson;
  assert.deepEqual(saved.intents[0]?.parts?.[0]?.[4], [7], 'A recorded u7 left out');
  const letters = [...lettersA, ...(await finish(warehouse, ledgers))];
  expectExactlyOnce(warehouse, letters, 10);
  assert.deepEqual(namedBy(letters), both);
  assert.deepEqual(sortedMarks(letters), bothMarked);
});

test('a crash after both exclusions are saved and the rest stored (answer lost): the replay dead-letters each row with its recorded refusal', { timeout: 60_000 }, async () => {
  const warehouse = new TokenWarehouse();
  refuseLast(warehouse, new Set(['u4', 'u7']));
  const ledgers = new MemoryLedgerStore();
  const lettersA = await processA(
    warehouse,
    ledgers,
    (n) => (n === 4 ? 'storeThenHang' : 'pass'),
    (sent) => sent.length >= 4 && warehouse.inserts.length >= 2,
  );
  const saved = (await ledgers.load(TOPIC, 0)) as LedgerJson;
  assert.deepEqual(saved.intents[0]?.parts?.[0]?.[4], [4, 7], 'A recorded both left out');
  const letters = [...lettersA, ...(await finish(warehouse, ledgers))];
  expectExactlyOnce(warehouse, letters, 10);
  assert.deepEqual(namedBy(letters), both);
  assert.deepEqual(sortedMarks(letters), bothMarked);
});

test('a ledger of the old layout (one reason object) replayed by the new code, then a second exclusion: the old row keeps the old reason, the new one its own', { timeout: 60_000 }, async () => {
  const warehouse = new TokenWarehouse();
  const victims = new Set(['u7']);
  refuseLast(warehouse, victims);
  const ledgers = new MemoryLedgerStore();
  const lettersA = await processA(
    warehouse,
    ledgers,
    (n) => (n === 3 ? 'hang' : 'pass'),
    (sent) => sent.length >= 3,
  );
  // Rewrite the saved ledger as a process before dc69dcf wrote it: one reason object, not a list.
  const saved = (await ledgers.load(TOPIC, 0)) as LedgerJson;
  const part = saved.intents[0]?.parts?.[0] as unknown[];
  assert.ok(Array.isArray(part[5]) && part[5].length === 1);
  part[5] = (part[5] as unknown[])[0];
  await ledgers.save(TOPIC, 0, saved);
  victims.add('u4'); // and B is refused for u4 too
  const letters = [...lettersA, ...(await finish(warehouse, ledgers))];
  expectExactlyOnce(warehouse, letters, 10);
  assert.deepEqual(namedBy(letters), both);
  assert.deepEqual(sortedMarks(letters), bothMarked);
});

test('a refusal longer than 500 characters: recorded truncated to 500, the replay dead-letters the row with that prefix (marked)', { timeout: 60_000 }, async () => {
  const warehouse = new TokenWarehouse();
  refuseLast(warehouse, new Set(['u7']), 800);
  const ledgers = new MemoryLedgerStore();
  const lettersA = await processA(
    warehouse,
    ledgers,
    (n) => (n === 3 ? 'storeThenHang' : 'pass'),
    (sent) => sent.length >= 3 && warehouse.inserts.length >= 2,
  );
  const saved = (await ledgers.load(TOPIC, 0)) as LedgerJson;
  const reasons = saved.intents[0]?.parts?.[0]?.[5] as Array<{ message: string }>;
  assert.equal(reasons[0]?.message.length, 500, 'the ledger keeps 500 characters');
  const letters = [...lettersA, ...(await finish(warehouse, ledgers))];
  expectExactlyOnce(warehouse, letters, 10);
  assert.deepEqual(namedBy(letters), [[7n, 'u7']]);
  assert.deepEqual(sortedMarks(letters), [[7n, true]]);
  for (const l of letters) assert.ok(l.reason.message.startsWith(`Cannot parse input: u7...`), l.reason.message.slice(0, 40));
});
