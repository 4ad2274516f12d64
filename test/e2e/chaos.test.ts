// Chaos: three inserter processes in one consumer group drain a 6-partition topic of ~30 teams into
// three ClickHouse endpoints ("clusters") while a producer writes the events and a random process is
// kill -9'd every few seconds and restarted with another batch size, or frozen with SIGSTOP past its
// session timeout and woken up again (a stalled owner that must be fenced). A few poison rows (uuid
// "not-a-uuid") are rejected by ClickHouse. At the end `bin/inserter verify` must find every invariant
// of docs/design/delivery.md §1 holding; after one duplicate row is slipped into an endpoint it must
// fail and name it.
//
// Knobs (environment):
//   CHAOS_EVENTS=N        events produced (default 30,000)
//   CHAOS_FAULTS=N        faults injected, kill -9 or SIGSTOP/SIGCONT (default 16); the producer is
//                         paced by the fault schedule, so the faults are spread over the whole stream
//   CHAOS_DURATION_S=S    instead of CHAOS_FAULTS: inject faults for S seconds, producing over them
//   CHAOS_SEED=N          replay a seed's schedule and data (the interleaving is the machine's)
//   CHAOS_GROUP_PROTOCOL=consumer   KIP-848 groups instead of classic
//   CHAOS_ENCODING=passthrough|typed|auto   the route's encoding (default typed: RowBinaryWithDefaults;
//                         the test checks in each server's query log that no insert fell back)
// `make soak` runs it with ≥ 100 faults (scripts/soak.sh).
//
// Expected rows are derived from what the topic holds (read back after the run), not from what the
// producer meant to send — the same source `inserter verify` uses — and the test's own check tells
// duplicate records in the topic (one uuid at two offsets: the producer) from duplicate inserts (one
// partition:offset twice in a table: inserter). The producer is idempotent (test/helpers/bus.ts).
// On a failure the evidence (seed, knobs, fault timeline, verify report, the topic-derived check,
// where the duplicated/lost rows came from, every process's log) is kept in a folder named in the
// message. The helpers (knobs, events, verify, the topic-derived check, the evidence) are in
// test/helpers/chaos.ts.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { VerifyReport } from '../../src/cli/verify.ts';
import { committedOffsets, endOffsets, produce, readTopic, readTopicToEnd, type OutRecord, type ReadRecord } from '../helpers/bus.ts';
import { chaosEvents, checkDeliveryIn, groupMembersOf, knob, runVerify, SAMPLE, topicTruthOf, whereaboutsIn, type Delivery, type TopicTruth } from '../helpers/chaos.ts';
import { insertFormats, startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { startInserter, waitFor, writeConfig, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';
import { Rng } from '../sim/rng.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const SEED = knob('CHAOS_SEED', 0) ?? Math.floor(Math.random() * 2 ** 31);
const TOTAL = knob('CHAOS_EVENTS', 100) ?? 30_000;
const DURATION_S = knob('CHAOS_DURATION_S', 10);
if (DURATION_S !== undefined && knob('CHAOS_FAULTS', 1) !== undefined) throw new Error('set CHAOS_FAULTS or CHAOS_DURATION_S, not both');
/** Faults to inject (undefined: as many as fit in DURATION_S). CI's default run has 16. */
const ENCODING = process.env.CHAOS_ENCODING ?? 'typed';
const FAULTS = DURATION_S === undefined ? (knob('CHAOS_FAULTS', 1) ?? 16) : undefined;
/** Produced in chunks released as the fault schedule advances: ~3 chunks per fault, or one per 500 ms. */
const CHUNKS = Math.min(TOTAL, Math.max(40, FAULTS !== undefined ? FAULTS * 3 : (DURATION_S ?? 0) * 2));
/** Setup, catching up (a classic rebalance may wait 60 s for a killed member), two verifies; plus the faults (~4 s each). */
const TIMEOUT_MS = 240_000 + (FAULTS !== undefined ? FAULTS * 8_000 : (DURATION_S ?? 0) * 1_500);
const PARTITIONS = 6;
const TEAMS = 30;
const POISON = 7;
const IDS = ['a', 'b', 'c'] as const;
const DDL =
  'CREATE TABLE app.events (uuid UUID, team_id Int64, n UInt32, s String, _partition UInt64, _offset UInt64) ENGINE = MergeTree ORDER BY (team_id, uuid) SETTINGS non_replicated_deduplication_window = 1000';

const topic = uniqueTopic('chaos');
const group = `${topic}-group`;
const dlq = `${topic}.dlq`;
const teamMap = Object.fromEntries(Array.from({ length: TEAMS }, (_, i) => [String(i + 1), IDS[(i + 1) % 3] ?? 'a']));
let bootstrap: string;
let chs: ClickHouseInstance[] = [];
const processes: Array<{ slot: number; maxRows: number; process: InserterProcess }> = [];

before(async () => {
  bootstrap = await sharedKafka();
  // No merges and no collapsing inside an insert: a duplicate row must stay visible.
  chs = await Promise.all(IDS.map(() => startClickHouse({ users: [{ name: 'default', password: '', settings: { optimize_on_insert: '0' } }] })));
  for (const ch of chs) {
    await ch.query('CREATE DATABASE app');
    await ch.query(DDL);
    await ch.query('SYSTEM STOP MERGES app.events');
  }
  await createTopic(bootstrap, topic, PARTITIONS);
});

after(async () => {
  await Promise.all(processes.map((p) => p.process.kill()));
  await Promise.all(chs.map((ch) => ch.stop()));
});

const config = (maxRows: number): Record<string, unknown> => ({
  kafka: { brokers: [bootstrap], groupId: group, fetchMaxWaitMs: 100, sessionTimeoutMs: 6_000, groupProtocol: process.env.CHAOS_GROUP_PROTOCOL === 'consumer' ? 'consumer' : 'classic' },
  destinations: IDS.map((id, i) => ({ id, url: chs[i]?.url, database: 'app' })),
  teams: { map: teamMap },
  routes: [{ topic, table: 'events', deadLetterTopic: dlq, createTable: { enabled: false }, encoding: ENCODING }],
  batch: { maxRows, maxAgeMs: 200 },
  commitIntervalMs: 1_000,
  retry: { baseMs: 100, factor: 2, capMs: 1_000 },
});

// The helpers of test/helpers/chaos.ts over this run's events, topic, group and endpoints.
const events = (rng: Rng): OutRecord[] => chaosEvents(rng, { total: TOTAL, teams: TEAMS, poison: POISON, partitions: PARTITIONS });
const topicTruth = (records: readonly ReadRecord[]): TopicTruth => topicTruthOf(records, teamMap, IDS);
const checkDelivery = (truth: TopicTruth): Promise<Delivery> => checkDeliveryIn(chs, IDS, truth);
const groupMembers = (): Promise<string> => groupMembersOf(bootstrap, group);
const whereabouts = (report: VerifyReport): Promise<Record<string, string>> => whereaboutsIn(chs, IDS, report);

// Seed 29949592 once found ~3.7% of the rows twice: a ledger loaded stale behind a killed process's
// open transaction (docs/design/delivery.md §5; test/e2e/ledger-store.test.ts reproduces it).
const budget = FAULTS !== undefined ? `${FAULTS} faults` : `faults for ${DURATION_S} s`;
test(`chaos: three processes, ${budget} (kill -9, SIGSTOP), ${TOTAL} events, verify holds (seed ${SEED})`, { timeout: TIMEOUT_MS }, async (t) => {
  t.diagnostic(
    `CHAOS_SEED=${SEED} CHAOS_EVENTS=${TOTAL} ${FAULTS !== undefined ? `CHAOS_FAULTS=${FAULTS}` : `CHAOS_DURATION_S=${DURATION_S}`} CHAOS_GROUP_PROTOCOL=${process.env.CHAOS_GROUP_PROTOCOL === 'consumer' ? 'consumer' : 'classic'} CHAOS_ENCODING=${ENCODING}`,
  );
  const rng = new Rng(SEED);
  const records = events(rng.fork());
  const chaos = rng.fork();
  const evidenceDir = await tempDir(`inserter-chaos-${SEED}-`);
  const t0 = Date.now();
  const timeline: string[] = [];
  const note = (line: string): void => {
    const now = Date.now();
    timeline.push(`${((now - t0) / 1000).toFixed(1)}s (${now}) ${line}`);
  };
  const slots: InserterProcess[] = [];
  let stopping = false; // set before the graceful stops at the end
  const launch = async (slot: number): Promise<void> => {
    const maxRows = chaos.int(150, 1_500);
    const proc = await startInserter(config(maxRows));
    slots[slot] = proc;
    processes.push({ slot, maxRows, process: proc });
    note(`start slot ${slot} pid ${proc.child.pid} maxRows ${maxRows} log ${proc.logFile}`);
    // A process that ends without the test's kill -9 or SIGTERM (a crash at start-up, say) is evidence.
    void proc.exited.then((code) => {
      if (!stopping && proc.child.signalCode === null) note(`slot ${slot} pid ${proc.child.pid} exited by itself with code ${code} (log ${proc.logFile})`);
    });
  };
  for (const slot of [0, 1, 2]) await launch(slot);

  // The schedule's progress in [0, 1]: faults injected (plus the part of the current gap elapsed), or
  // time elapsed of CHAOS_DURATION_S. The producer releases chunk k once progress reaches k/CHUNKS, so
  // the stream spans the whole schedule however many faults it has.
  let kills = 0;
  let stalls = 0;
  const faultsStart = Date.now();
  let gap = { from: Date.now(), ms: 1 };
  const progress = (): number =>
    FAULTS !== undefined ? Math.min(1, (kills + stalls + Math.min(1, (Date.now() - gap.from) / gap.ms)) / FAULTS) : Math.min(1, (Date.now() - faultsStart) / ((DURATION_S ?? 0) * 1_000));
  const scheduleDone = (): boolean => (FAULTS !== undefined ? kills + stalls >= FAULTS : Date.now() - faultsStart >= (DURATION_S ?? 0) * 1_000);

  let scheduleEnded = false;
  let producerError: Error | undefined;
  const producing = (async () => {
    const size = Math.ceil(TOTAL / CHUNKS);
    for (let k = 0; k * size < TOTAL; k++) {
      while (!scheduleEnded && progress() < k / CHUNKS) await sleep(50);
      await produce(bootstrap, topic, records.slice(k * size, (k + 1) * size), size);
    }
    note('producer done');
  })().catch((error: unknown) => {
    producerError = error instanceof Error ? error : new Error(String(error));
    note(`producer failed: ${producerError.message}`);
  });

  // A stalled process (SIGSTOP past the session timeout, like a long GC pause) loses its partitions
  // without knowing; woken up, it must be fenced, never insert what its successor cut differently.
  const stalled = new Map<number, { until: Promise<void>; wake: () => void }>();
  const stall = (slot: number, victim: InserterProcess, ms: number): void => {
    victim.child.kill('SIGSTOP');
    let wake = (): void => undefined;
    const until = new Promise<void>((resolve) => {
      const timer = setTimeout(() => wake(), ms);
      wake = () => {
        clearTimeout(timer);
        if (stalled.get(slot)?.until === until) stalled.delete(slot);
        victim.child.kill('SIGCONT');
        note(`SIGCONT slot ${slot} pid ${victim.child.pid}`);
        resolve();
      };
    });
    stalled.set(slot, { until, wake });
  };
  try {
    while (!scheduleDone() && producerError === undefined) {
      gap = { from: Date.now(), ms: chaos.int(2_000, 4_500) };
      await sleep(gap.ms);
      if (scheduleDone()) break;
      const slot = chaos.int(0, 2);
      const victim = slots[slot];
      if (victim === undefined) continue;
      if (!stalled.has(slot) && chaos.chance(0.3)) {
        const ms = chaos.int(6_500, 9_000);
        stall(slot, victim, ms);
        stalls++;
        note(`SIGSTOP slot ${slot} pid ${victim.child.pid} for ${ms} ms (fault ${kills + stalls})`);
        continue;
      }
      stalled.get(slot)?.wake();
      await victim.kill();
      kills++;
      note(`kill -9 slot ${slot} pid ${victim.child.pid} (fault ${kills + stalls})`);
      await sleep(chaos.int(0, 1_500));
      await launch(slot);
    }
  } finally {
    scheduleEnded = true;
    await producing;
    await Promise.all([...stalled.values()].map((s) => s.until));
  }
  note(`schedule done: ${kills + stalls} faults (${kills} kill -9, ${stalls} SIGSTOP/SIGCONT)`);
  t.diagnostic(`faults injected: ${kills + stalls} (kill -9: ${kills}, SIGSTOP/SIGCONT stall: ${stalls}) in ${((Date.now() - faultsStart) / 1000).toFixed(0)} s`);
  if (producerError !== undefined) throw producerError;

  const configFile = await writeConfig(config(500), evidenceDir);
  // All three running: each has joined and been given partitions (a SIGTERM before start-up ends is not a graceful stop).
  const joined = await waitFor(async () => (await Promise.all(slots.map((p) => p.log()))).every((log) => log.includes('partitions assigned')), 'all three processes assigned', 60_000).then(
    () => 'all three assigned',
    (error: unknown) => String(error),
  );
  note(joined);
  // A classic-group member killed during a rebalance holds the whole group until the rebalance
  // timeout (KafkaSource: max(sessionTimeoutMs, 60 s)), hence the long wait.
  const quiet = await waitFor(
    async () => {
      const [committed, end] = await Promise.all([committedOffsets(bootstrap, group, topic, PARTITIONS), endOffsets(bootstrap, topic)]);
      return committed.every((c, p) => c === end[p]);
    },
    'committed offsets at the log end',
    120_000,
  ).then(
    () => 'quiet',
    (error: unknown) => String(error),
  );
  note(`wait: ${quiet}`);
  const members = await groupMembers();
  note(`group members: ${members}`);
  stopping = true;
  const exits = await Promise.all(slots.map((p) => p.stop()));
  note(`graceful stops: exit codes ${exits.join(',')}`);

  const result = await runVerify(configFile);
  let report: VerifyReport | undefined;
  try {
    report = JSON.parse(result.stdout) as VerifyReport;
  } catch {
    report = undefined;
  }
  // The test's own expectation: what the topic holds (the same source verify reads), checked by position.
  const read = await readTopicToEnd(bootstrap, topic, 120_000);
  const truth = topicTruth(read);
  const delivery = await checkDelivery(truth);
  const topicSummary = {
    produced: TOTAL,
    records: truth.records,
    good: truth.good.size,
    poison: truth.poison.size,
    expected: Object.fromEntries(truth.expected),
    duplicateRecords: { count: truth.duplicates.length, sample: truth.duplicates.slice(0, SAMPLE) },
  };
  const evidence = {
    seed: SEED,
    knobs: { events: TOTAL, faults: FAULTS ?? null, durationS: DURATION_S ?? null, groupProtocol: process.env.CHAOS_GROUP_PROTOCOL ?? 'classic' },
    kills,
    stalls,
    timeline,
    verifyExit: result.code,
    verifyStderr: result.stderr,
    topic: topicSummary,
    delivery,
    whereabouts: report ? await whereabouts(report) : {},
    logs: processes.map((p) => ({ slot: p.slot, pid: p.process.child.pid, maxRows: p.maxRows, log: p.process.logFile })),
    report,
  };
  await writeFile(join(evidenceDir, 'evidence.json'), JSON.stringify(evidence, null, 2));
  const classified =
    `topic: ${truth.records} records for ${TOTAL} produced, ${truth.duplicates.length} duplicate record(s) in the topic (one uuid at two offsets: the producer, not inserts)${
      truth.duplicates.length > 0
        ? `: ${truth.duplicates
            .slice(0, 10)
            .map((d) => `${d.uuid} at ${d.positions.join(' and ')}`)
            .join(', ')}`
        : ''
    }\n` +
    `tables by partition:offset: ${delivery.duplicateInserts.count} duplicate insert(s) ${delivery.duplicateInserts.sample.slice(0, 10).join(', ')}; ${delivery.lost.count} lost ${JSON.stringify(delivery.lost.perPartition).slice(0, 2000)}; ${delivery.misrouted.count} misrouted; ${delivery.unknown.count} unknown`;
  const failure = `seed ${SEED}, evidence in ${evidenceDir}/evidence.json:\n${report?.failures.join('\n') ?? result.stdout + result.stderr}\n${classified}\n${timeline.join('\n')}`;
  t.diagnostic(
    `${truth.records} records in the topic (${truth.good.size} good, ${truth.poison.size} poison, ${truth.duplicates.length} duplicate), rows ${JSON.stringify(delivery.rows)}; evidence ${evidenceDir}/evidence.json`,
  );
  if (FAULTS !== undefined) assert.equal(kills + stalls, FAULTS, `every scheduled fault injected (${kills} + ${stalls})`);
  else assert.ok(kills + stalls >= Math.floor((DURATION_S ?? 0) / 10), `a fault every few seconds over ${DURATION_S} s (${kills} + ${stalls})`);

  // The idempotent producer writes each event once: a duplicate record in the topic is not inserter's,
  // and verify (which counts by id) would report it as a duplicated id — say so before anything else.
  assert.equal(truth.duplicates.length, 0, `duplicate records in the topic (the producer's, not duplicate inserts) — ${failure}`);
  assert.equal(truth.records, TOTAL, `the topic holds what was produced — ${failure}`);
  assert.equal(result.code, 0, `verify exits 0 — ${failure}`);
  assert.ok(report !== undefined);
  assert.equal(quiet, 'quiet', failure);
  assert.deepEqual(exits, [0, 0, 0], `graceful exits — ${failure}`);
  assert.equal(delivery.duplicateInserts.count, 0, `duplicate inserts — ${failure}`);
  assert.equal(delivery.lost.count, 0, `lost records — ${failure}`);
  assert.equal(delivery.misrouted.count, 0, `misrouted rows — ${failure}`);
  assert.equal(delivery.unknown.count, 0, `rows naming no record of the topic — ${failure}`);
  const route = report.routes[0];
  assert.ok(route !== undefined);
  // verify reads the topic too: its counts and expectations must be the topic's.
  assert.equal(route.produced.records, truth.records);
  assert.equal(route.good, truth.good.size);
  assert.deepEqual(route.deadLetters.byClass, { row_data: truth.poison.size }, 'only the poison rows are dead-lettered');
  for (const d of route.destinations) {
    assert.equal(d.expected, truth.expected.get(d.destination), `verify's expected rows in ${d.destination} = the topic's`);
    assert.equal(d.count, d.expected, `count() = expected in ${d.destination} — ${failure}`);
    assert.equal(d.count, delivery.rows[d.destination], `verify's count() in ${d.destination} = the rows the test read`);
    assert.equal(d.uniqExact, d.count, `uniqExact = count() in ${d.destination} — ${failure}`);
    assert.equal(d.misrouted.count, 0, `nothing misrouted into ${d.destination}`);
  }
  if (ENCODING === 'typed') {
    // The rows went in typed: every insert into app.events on every server was RowBinaryWithDefaults.
    for (const ch of chs) {
      const formats = await insertFormats(ch, 'app.events');
      assert.deepEqual([...formats.keys()], ['RowBinaryWithDefaults'], `only typed inserts into app.events: ${JSON.stringify([...formats])}`);
    }
  }
  assert.deepEqual(route.invariants, { counts: true, noDuplicates: true, noMisrouted: true, nothingLost: true, noRowDeadLettered: true, committedAtLogEnd: true });
  const letters = await readTopic(bootstrap, dlq, route.deadLetters.records, 30_000);
  const positions = new Set(letters.map((l) => `${l.headers.get('x-inserter-original-partition')}:${l.headers.get('x-inserter-original-offset')}`));
  assert.deepEqual([...positions].sort(), [...truth.poison].sort(), 'one dead letter position per poison record of the topic (a dead letter may be written twice)');
  assert.ok(
    letters.every((l) => l.value?.toString().includes('"uuid":"not-a-uuid"')),
    'every dead letter is a poison row',
  );

  // Negative control: one duplicate slipped into endpoint a must be caught and named.
  const victim = (await chs[0]?.query('SELECT toString(uuid) FROM app.events ORDER BY uuid LIMIT 1'))?.trim() ?? '';
  await chs[0]?.query(`INSERT INTO app.events SELECT * FROM app.events WHERE uuid = '${victim}' SETTINGS insert_deduplicate = 0`);
  const again = await runVerify(configFile);
  assert.equal(again.code, 1, `verify must fail on a duplicate:\n${again.stdout.slice(0, 2000)}${again.stderr}`);
  const broken = JSON.parse(again.stdout) as VerifyReport;
  assert.equal(broken.ok, false);
  assert.deepEqual(broken.routes[0]?.destinations.find((d) => d.destination === 'a')?.duplicates.sample, [{ id: victim, times: 2 }]);
  assert.equal(broken.routes[0]?.invariants.noDuplicates, false);
  assert.ok(
    broken.failures.some((f) => f.includes(victim) && f.includes('destination a')),
    `the failure names ${victim}: ${broken.failures.join('\n')}`,
  );
  // The test's own check calls the planted copy what it is: the same partition:offset twice, an insert.
  const planted = await checkDelivery(truth);
  assert.equal(planted.duplicateInserts.count, 1, `the planted copy is one duplicate insert: ${planted.duplicateInserts.sample.join(', ')}`);
  assert.ok(planted.duplicateInserts.sample[0]?.startsWith(victim), planted.duplicateInserts.sample.join(', '));
  // And a uuid at a second offset of the topic is a duplicate record, never a duplicate insert.
  const first = read.find((r) => truth.good.has(`${r.partition}:${r.offset}`));
  assert.ok(first !== undefined);
  const twice = topicTruth([...read, { ...first, offset: first.offset + 1_000_000n }]);
  assert.deepEqual(twice.duplicates, [
    { uuid: truth.good.get(`${first.partition}:${first.offset}`)?.uuid, positions: [`${first.partition}:${first.offset}`, `${first.partition}:${first.offset + 1_000_000n}`] },
  ]);
  const recheck = await checkDelivery(twice);
  assert.deepEqual([recheck.duplicateInserts.count, recheck.lost.count], [1, 1], 'the second offset is a record not delivered; the planted copy stays the only duplicate insert');
});
