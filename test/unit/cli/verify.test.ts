// The invariants `inserter verify` checks, on in-memory inputs: a clean run holds every one; a
// duplicate, a misrouted row, a lost row, a row that is also a dead letter and an uncommitted
// partition are each flagged and named; dead letters written twice are allowed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRoute, RowTally, type DeadLetterRef, type ProducedRecord, type RouteInputs } from '../../../src/cli/verify-check.ts';
import { normalizeId } from '../../../src/cli/verify-read.ts';
import { formatReport } from '../../../src/cli/verify-print.ts';

const teams = new Map([
  [1, 'a'],
  [2, 'a'],
  [3, 'b'],
]);

/** 3 partitions × 10 records; teams 1..3 round robin; record p:7 is poison (dead-lettered). */
function world(): { produced: ProducedRecord[]; deadLetters: DeadLetterRef[]; a: RowTally; b: RowTally } {
  const produced: ProducedRecord[] = [];
  const deadLetters: DeadLetterRef[] = [];
  const a = new RowTally();
  const b = new RowTally();
  for (let p = 0; p < 3; p++) {
    for (let o = 0; o < 10; o++) {
      const team = ((p * 10 + o) % 3) + 1;
      const id = `id-${p}-${o}`;
      produced.push({ partition: p, offset: BigInt(o), decodable: true, id, team });
      if (o === 7) {
        deadLetters.push({ partition: p, offset: 7n, errorClass: 'row_data' });
        continue;
      }
      (teams.get(team) === 'a' ? a : b).add(id, team);
    }
  }
  // An undecodable record, dead-lettered (twice: dead letters are at least once).
  produced.push({ partition: 0, offset: 10n, decodable: false, id: undefined, team: undefined });
  deadLetters.push({ partition: 0, offset: 10n, errorClass: 'decode' }, { partition: 0, offset: 10n, errorClass: 'decode' });
  return { produced, deadLetters, a, b };
}

function inputs(w: ReturnType<typeof world>, committed: bigint[] = [11n, 10n, 10n]): RouteInputs {
  return {
    route: 'events',
    topic: 't',
    deadLetterTopic: 't.dlq',
    destinationOf: (team) => (team === undefined ? undefined : teams.get(team)),
    produced: w.produced,
    deadLetters: w.deadLetters,
    destinations: [
      { id: 'a', database: 'db', table: 'events', rows: w.a },
      { id: 'b', database: 'db', table: 'events', rows: w.b },
    ],
    partitions: [11n, 10n, 10n].map((logEnd, partition) => ({ partition, logEnd, committed: committed[partition] ?? -1n })),
  };
}

test('a clean run holds every invariant', () => {
  const report = checkRoute(inputs(world()));
  assert.deepEqual(report.failures, []);
  assert.equal(report.ok, true);
  assert.equal(report.produced.records, 31);
  assert.equal(report.good, 27);
  assert.deepEqual(report.deadLetters, { records: 5, repeated: 1, notInTopic: 0, byClass: { row_data: 3, decode: 1 } });
  const [a, b] = report.destinations;
  assert.equal(a?.expected, 18);
  assert.equal(a?.count, 18);
  assert.equal(a?.uniqExact, 18);
  assert.equal(b?.expected, 9);
  assert.equal(b?.count, 9);
  assert.ok(Object.values(report.invariants).every(Boolean));
  assert.match(formatReport({ ok: true, groupId: 'g', idField: 'uuid', routes: [report], failures: [] }), /verify: OK/);
});

test('negative control: a duplicate, a misrouted row, a lost row and an uncommitted partition are each flagged', () => {
  const w = world();
  w.a.add('id-0-0', 1); // duplicate of a row of team 1 in a
  w.b.add('id-0-3', 1); // team 1 belongs in a (and id-0-3 is also in a: the copy in b is misrouted)
  // lost: id-2-2 (team 2 → a) never arrives
  const lost = new RowTally();
  for (const [id, { times, team }] of w.a.byId) for (let i = 0; i < times; i++) if (id !== 'id-2-2') lost.add(id, team);
  const report = checkRoute({ ...inputs({ ...w, a: lost }, [11n, 10n, 8n]) });
  assert.equal(report.ok, false);
  const [a, b] = report.destinations;
  assert.equal(a?.duplicates.count, 1);
  assert.deepEqual(a?.duplicates.sample, [{ id: 'id-0-0', times: 2 }]);
  assert.equal(a?.count, 18, 'one duplicate and one lost row: count() alone would not tell');
  assert.equal(a?.uniqExact, 17);
  assert.deepEqual(a?.missing.sample, [{ id: 'id-2-2', partition: 2, offset: '2', team: 2 }]);
  assert.deepEqual(b?.misrouted.sample, [{ id: 'id-0-3', team: 1, mappedTo: 'a' }]);
  assert.equal(b?.count, 10);
  assert.deepEqual(
    report.partitions.map((p) => p.ok),
    [true, true, false],
  );
  assert.deepEqual(report.invariants, { counts: false, noDuplicates: false, noMisrouted: false, nothingLost: false, noRowDeadLettered: true, committedAtLogEnd: false });
  const text = report.failures.join('\n');
  assert.match(text, /destination a .*uniqExact 17 ≠ count\(\) 18: 1 duplicated id\(s\): id-0-0 ×2/);
  assert.match(text, /destination b .*count\(\) 10 ≠ expected 9/);
  assert.match(text, /destination b .*1 misrouted row\(s\): id-0-3 \(team 1 → a\)/);
  assert.match(text, /destination a .*1 lost record\(s\).*id-2-2 \(partition 2 offset 2 team 2\)/);
  assert.match(text, /partition 2: committed 8 ≠ log end 10/);
  assert.match(formatReport({ ok: false, groupId: 'g', idField: 'uuid', routes: [report], failures: report.failures }), /FAILED — 5 broken invariant/);
});

test('a row that is also dead-lettered, a row nobody produced, and records nothing holds', () => {
  const w = world();
  w.a.add('id-0-7', 2); // p0:7 is dead-lettered (team 2 → a)
  w.a.add('stranger', 1);
  w.produced.push({ partition: 1, offset: 10n, decodable: true, id: 'orphan', team: 9 }); // no destination, not dead-lettered
  w.produced.push({ partition: 2, offset: 10n, decodable: false, id: undefined, team: undefined }); // not JSON, not dead-lettered
  const report = checkRoute({ ...inputs(w), partitions: [0, 1, 2].map((partition) => ({ partition, logEnd: 11n, committed: 11n })) });
  const a = report.destinations[0];
  assert.deepEqual(a?.deadLettered.sample, [{ id: 'id-0-7', partition: 0, offset: '7' }]);
  assert.deepEqual(a?.unknown.sample, [{ id: 'stranger' }]);
  assert.deepEqual(report.unrouted.sample, [{ partition: 1, offset: '10', team: 9 }]);
  assert.deepEqual(report.lostUndecodable.sample, [{ partition: 2, offset: '10' }]);
  assert.equal(report.invariants.noRowDeadLettered, false);
  assert.equal(report.invariants.nothingLost, false);
  assert.equal(report.invariants.committedAtLogEnd, true);
  assert.equal(report.failures.length, 5, 'count, dead-lettered, unknown, unrouted, undecodable');
});

test('replayed dead letters: into a table they are expected rows there; back to the topic their copy is checked as a record of its own', () => {
  const w = world();
  // p0:7 (team 2 → a) replayed into a; p1:7 (team 3 → b) replayed back to the topic as p1:10.
  const replayed = w.deadLetters.map((d): DeadLetterRef => {
    if (d.partition === 0 && d.offset === 7n) return { ...d, replayed: { to: 'destination', destination: 'a' } };
    if (d.partition === 1 && d.offset === 7n) return { ...d, replayed: { to: 'original' } };
    return d;
  });
  w.produced.push({ partition: 1, offset: 10n, decodable: true, id: 'id-1-7', team: 3 });
  w.b.add('id-1-7', 3);
  const partitions = [11n, 11n, 10n].map((logEnd, partition) => ({ partition, logEnd, committed: logEnd }));
  const missingReplay = checkRoute({ ...inputs(w), deadLetters: replayed, partitions });
  assert.deepEqual(missingReplay.destinations[0]?.missing.sample, [{ id: 'id-0-7', partition: 0, offset: '7', team: 2 }], 'a replay marked done whose row is not there is lost');

  w.a.add('id-0-7', 2);
  const report = checkRoute({ ...inputs(w), deadLetters: replayed, partitions });
  assert.deepEqual(report.failures, []);
  assert.deepEqual(report.deadLetters.replayed, { toDestination: 1, toOriginal: 1 });
  assert.equal(report.good, 29);
  // Without the replay ledger's word the row replayed into a is a row that is also a dead letter
  // (the copy re-produced to the topic is a record of its own either way).
  const unreplayed = checkRoute({ ...inputs(w), partitions });
  assert.equal(unreplayed.invariants.noRowDeadLettered, false);
  assert.deepEqual(
    unreplayed.destinations.map((d) => d.deadLettered.count),
    [1, 0],
  );
});

test('a position past the last record but short of the log end (transaction markers) is at the end', () => {
  const w = world();
  const at = (committed: bigint): boolean | undefined => checkRoute({ ...inputs(w), partitions: [{ partition: 0, logEnd: 13n, committed, lastRecord: 10n }] }).partitions[0]?.ok;
  assert.equal(at(11n), true, 'markers at 11 and 12');
  assert.equal(at(13n), true);
  assert.equal(at(10n), false, 'the last record is not committed');
});

test('an empty partition with nothing committed is fine; ids compare as ClickHouse prints them', () => {
  const report = checkRoute({
    route: 'r',
    topic: 't',
    deadLetterTopic: 't.dlq',
    destinationOf: () => 'a',
    produced: [],
    deadLetters: [],
    destinations: [{ id: 'a', database: 'db', table: 't', rows: new RowTally() }],
    partitions: [{ partition: 0, logEnd: 0n, committed: -1n }],
  });
  assert.equal(report.ok, true);
  assert.equal(normalizeId('0F8FAD5B-D9CB-469F-A165-70867728950E'), '0f8fad5b-d9cb-469f-a165-70867728950e');
  assert.equal(normalizeId(42), '42');
  assert.equal(normalizeId(undefined), undefined);
});
