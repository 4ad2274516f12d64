// The ledger's durable form: what a new owner reads back must re-form exactly the same inserts —
// the parts, the rows left out of a part's insert (§11) and the schemas inserts were sent under.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ledger, UNKNOWN_SCHEMA, type Intent, type PartReason } from '../../../src/ack/ledger.ts';
import { OffsetSet } from '../../../src/ack/offset-set.ts';

function intent(rows: number): Intent {
  return {
    route: 'events',
    destination: 'd1',
    token: 'tok',
    records: OffsetSet.fromSorted(Array.from({ length: rows }, (_, i) => BigInt(i))),
    rows,
    teams: undefined,
    parts: undefined,
    schemas: ['s1'],
    done: false,
  };
}

const reason: PartReason = { errorClass: 'row_data', code: 'INSERTER_SINK_ROW_DATA', message: 'Cannot parse input (at row 4)', attempts: 2, mayHaveLanded: true };

test('rows left out of an insert, and the schemas it was sent under, survive a round trip through JSON', () => {
  const ledger = new Ledger();
  const i = intent(10);
  ledger.add(i);
  assert.equal(ledger.sentUnder(i, 's1'), false, 'known schema: nothing to save');
  assert.equal(ledger.sentUnder(i, 's2'), true, 'a new schema must be saved before the insert');
  ledger.split(i, 0, 10, [
    [0, 5],
    [5, 10],
  ]);
  ledger.exclude(i, 5, 10, [6, 8], [reason, { ...reason, message: 'row 8: its own refusal' }]);
  ledger.settle(i, 0, 5, 'done');
  const back = Ledger.fromJson(JSON.parse(JSON.stringify(ledger.toJson())) as ReturnType<Ledger['toJson']>);
  const read = back.intents[0];
  assert.deepEqual(read?.schemas, ['s1', 's2']);
  assert.deepEqual(read?.parts, [
    { from: 0, to: 5, state: 'done' },
    { from: 5, to: 10, state: 'pending', excluded: [6, 8], excludedReasons: [reason, { ...reason, message: 'row 8: its own refusal' }] },
  ]);
});

test('excluding rows of a batch never split makes it one part; a later exclusion keeps its own reason', () => {
  const ledger = new Ledger();
  const i = intent(4);
  ledger.add(i);
  ledger.exclude(i, 0, 4, [3], [reason]);
  ledger.exclude(i, 0, 4, [1, 3], [{ ...reason, message: 'another' }, reason]);
  assert.deepEqual(i.parts, [{ from: 0, to: 4, state: 'pending', excluded: [1, 3], excludedReasons: [{ ...reason, message: 'another' }, reason] }]);
  assert.throws(() => ledger.exclude(i, 0, 4, [1, 2, 3], [reason]), /3 rows excluded with 1 reasons/);
  ledger.settle(i, 0, 4, 'done');
  assert.equal(i.parts?.[0]?.state, 'done');
});

test('a ledger written with one reason for all excluded rows (before per-row reasons) reads as that reason for each', () => {
  const ledger = new Ledger();
  const i = intent(4);
  ledger.add(i);
  ledger.exclude(i, 0, 4, [1, 3], [reason, reason]);
  const written = JSON.parse(JSON.stringify(ledger.toJson())) as ReturnType<Ledger['toJson']>;
  const part = written.intents[0]?.parts?.[0] as unknown[];
  part[5] = reason; // the old layout: one reason object
  assert.deepEqual(Ledger.fromJson(written).intents[0]?.parts, [{ from: 0, to: 4, state: 'pending', excluded: [1, 3], excludedReasons: [reason, reason] }]);
  // A list short of the rows (never written so): the row without a reason still gets one, marked.
  part[5] = [reason];
  const short = Ledger.fromJson(written).intents[0]?.parts?.[0]?.excludedReasons ?? [];
  assert.equal(short.length, 2);
  assert.deepEqual(short[0], reason);
  assert.equal(short[1]?.mayHaveLanded, true);
  assert.equal(short[1]?.code, 'INSERTER_DELIVERY_IN_DOUBT');
});

test('an intent written before schemas were recorded was sent under an unknown schema (never equal to a real one); no schema read is written as none', () => {
  const ledger = Ledger.fromJson({ v: 2, intents: [{ route: 'events', destination: 'd1', token: 'tok', records: OffsetSet.fromSorted([0n, 1n]).encode(), rows: 2 }] });
  assert.deepEqual(ledger.intents[0]?.schemas, [UNKNOWN_SCHEMA]);
  const fresh = new Ledger();
  fresh.add({ ...intent(2), schemas: [] });
  assert.deepEqual(Ledger.fromJson(fresh.toJson()).intents[0]?.schemas, []);
});

test('pruning below a commit is not saved on its own: the stored ledger says the same of those records, and the next save carries the prune', () => {
  const ledger = new Ledger();
  const done = intent(4); // offsets 0-3
  const open = { ...intent(2), token: 'later', records: OffsetSet.fromSorted([4n, 5n]) };
  ledger.add(done);
  ledger.add(open);
  ledger.complete(done);
  ledger.markResolved('events', 6n);
  const stored = JSON.parse(JSON.stringify(ledger.toJson())) as ReturnType<Ledger['toJson']>;
  ledger.markClean();
  ledger.prune(4n); // the commit passed 0-3
  assert.equal(ledger.dirty, false, 'a prune alone triggers no save');
  const before = Ledger.fromJson(stored);
  const after = Ledger.fromJson(JSON.parse(JSON.stringify(ledger.toJson())) as ReturnType<Ledger['toJson']>);
  // Read again after the position went back, the records are judged alike by either form.
  for (let offset = 0n; offset < 8n; offset++) assert.equal(before.isResolved('events', offset), after.isResolved('events', offset), `offset ${offset}`);
  assert.deepEqual(
    after.intents.map((i) => i.token),
    before.intents.map((i) => i.token),
  );
  ledger.markResolved('events', 7n);
  assert.equal(ledger.dirty, true);
  assert.equal(ledger.toJson().resolvedBelow, '4', 'the next save carries the prune');
});
