// `inserter dlq` against the real broker and a chlocal endpoint, through bin/inserter child processes:
// six poison rows (a UUID ClickHouse rejects, teams 1 and 2) and one non-JSON message among 200 good
// rows are dead-lettered by a running inserter; `list` shows exactly them and filters them; `inspect`
// shows the headers; after the column is fixed, `replay --to destination` (twice) inserts team 1's
// rows once with their original metadata; `replay --to original` (twice, inserter running) re-produces
// team 2's rows once and they land once through the pipeline, the non-JSON one is dead-lettered again
// (and already-replayed ones are skipped); `inserter verify` then holds, counting each replayed dead
// letter where it was replayed to; `purge` removes everything below an offset.
import assert from 'node:assert/strict';
import type { VerifyReport } from '../../src/cli/verify.ts';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Producer } from '@platformatic/kafka';
import { readTopic, type OutRecord } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { scenarioConfig } from '../helpers/error-scenarios.ts';
import { REPO_ROOT, startInserter, waitFor, writeConfig, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const topic = uniqueTopic('dlq-cli');
const dlqTopic = `${topic}.dlq`;
const group = `${topic}-g`;
let bootstrap: string;
let ch: ClickHouseInstance;
let inserter: InserterProcess | undefined;
let configFile: string;
let config: Record<string, unknown>;

const uuid = (i: number): string => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const good = (id: number): Buffer => Buffer.from(JSON.stringify({ id, team_id: 1 + (id % 2), uuid: uuid(id), s: 'ok' }));
const poison = (id: number, team: number): Buffer => Buffer.from(JSON.stringify({ id, team_id: team, uuid: 'not-a-uuid', s: 'poison' }));
const POISON = [
  { id: 1001, team: 1, partition: 0 },
  { id: 1002, team: 2, partition: 1 },
  { id: 1003, team: 1, partition: 1 },
  { id: 1004, team: 2, partition: 0 },
  { id: 1005, team: 1, partition: 0 },
  { id: 1006, team: 2, partition: 1 },
];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(join(REPO_ROOT, 'bin', 'inserter'), ['dlq', ...args, '--config', configFile], { timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

interface Listed {
  id: string;
  class: string;
  team: number | null;
  table: string | null;
  dlq: { partition: number; offset: string };
  original: { topic: string; partition: number; offset: string } | null;
}

async function list(...filters: string[]): Promise<Listed[]> {
  const run = await cli('list', '--json', ...filters);
  assert.equal(run.code, 0, `dlq list ${filters.join(' ')} failed: ${run.stderr}`);
  return run.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Listed);
}

async function rows(where = '1'): Promise<{ rows: number; distinct: number }> {
  const [count, distinct] = (await ch.query(`SELECT count(), uniqExact(id) FROM e.t WHERE ${where} FORMAT TSV`)).trim().split('\t').map(Number);
  return { rows: count ?? -1, distinct: distinct ?? -1 };
}

/** Idempotent: a retried produce request must not duplicate records (the counts below are exact). */
async function produceOnce(records: OutRecord[]): Promise<void> {
  const producer = new Producer({ clientId: 'dlq-test', bootstrapBrokers: [bootstrap], idempotent: true, acks: -1 });
  try {
    const messages = records.map((r) => ({
      topic,
      value: r.value,
      ...(r.key ? { key: r.key } : {}),
      ...(r.partition === undefined ? {} : { partition: r.partition }),
      headers: new Map(Object.entries(r.headers ?? {}).map(([k, v]) => [Buffer.from(k), v] as const)),
    }));
    await producer.send({ messages });
  } finally {
    await producer.close();
  }
}

before(async () => {
  bootstrap = await sharedKafka();
  ch = await startClickHouse();
  await ch.query('CREATE DATABASE e');
  await ch.query(
    'CREATE TABLE e.t (id UInt64, team_id Int64, uuid UUID, s String, _topic String, _partition UInt64, _offset UInt64, _timestamp_ms DateTime64(3)) ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 1000',
  );
  await createTopic(bootstrap, topic, 2);
  config = scenarioConfig({ bootstrap, group, topic, url: ch.url, database: 'e', table: 't', deadLetterTopic: dlqTopic });
  configFile = await writeConfig(config);
  const records = [];
  for (let id = 0; id < 200; id++) {
    records.push({ key: Buffer.from(String(id)), value: good(id), partition: id % 2 });
    const p = POISON[(id - 15) / 30]; // among the good ones, at ids 15, 45, … 165
    if (p !== undefined) records.push({ key: Buffer.from(String(p.id)), value: poison(p.id, p.team), partition: p.partition });
  }
  records.push({ key: Buffer.from('junk'), value: Buffer.from('this is not json'), partition: 0, headers: { trace: Buffer.from('t-1') } });
  await produceOnce(records);
  inserter = await startInserter(config);
  await waitFor(async () => (await rows()).distinct >= 200 && (await readTopic(bootstrap, dlqTopic, 7, 2_000).catch(() => [])).length >= 7, '200 rows and 7 dead letters', 60_000).catch(
    async (error: unknown) => {
      throw new Error(`${String(error)}\n${(await inserter?.log())?.slice(-3000)}`);
    },
  );
  assert.equal(await inserter.stop(), 0);
  inserter = undefined;
});

after(async () => {
  await inserter?.kill();
  await ch?.stop();
});

test('list shows exactly the dead letters, and the filters select them', async () => {
  const all = await list();
  assert.equal(all.length, 7);
  const rowData = await list('--class', 'row_data');
  assert.deepEqual(rowData.map((l) => l.original?.offset !== undefined && l.class === 'row_data' && l.table === 'e.t').filter(Boolean).length, 6);
  const produced = await readTopic(bootstrap, topic, 207, 10_000);
  const poisonAt = new Set(produced.filter((r) => r.value?.includes('not-a-uuid')).map((r) => `${r.partition}/${r.offset}`));
  assert.deepEqual(new Set(rowData.map((l) => `${l.original?.partition}/${l.original?.offset}`)), poisonAt, 'exactly the poison rows');
  assert.deepEqual(
    (await list('--class', 'decode')).map((l) => l.team),
    [null],
  );
  assert.equal((await list('--class', 'row_data,decode')).length, 7);
  assert.deepEqual(
    (await list('--team', '1')).map((l) => l.team),
    [1, 1, 1],
  );
  assert.equal((await list('--table', 'e.t')).length, 6);
  assert.equal((await list('--table', 't', '--team', '2')).length, 3);
  assert.equal((await list('--route', `${topic}->t`, '--limit', '2')).length, 2);
  assert.equal((await list('--since', new Date(Date.now() + 60_000).toISOString())).length, 0);
  assert.equal((await list('--until', new Date(Date.now() + 60_000).toISOString())).length, 7);
  const text = await cli('list', '--class', 'row_data');
  assert.equal(text.stdout.trim().split('\n').length, 6);
  assert.match(text.stdout, new RegExp(`^${dlqTopic}/0/\\d+  row_data  .*  e\\.t  team=[12]  from ${topic}/[01]/\\d+  \\d+B  `, 'm'));
  const bad = await cli('list', '--team', 'x', '--since', 'soon');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--team.*--since/);
});

test('inspect prints one dead letter whole', async () => {
  const [first] = await list('--class', 'decode');
  assert.ok(first);
  const run = await cli('inspect', '--topic', dlqTopic, '--partition', String(first.dlq.partition), '--offset', first.dlq.offset);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^ {2}trace: t-1$/m);
  assert.match(run.stdout, /^ {2}x-inserter-error-class: decode$/m);
  assert.match(run.stdout, new RegExp(`^ {2}x-inserter-original-topic: ${topic}$`, 'm'));
  assert.match(run.stdout, /^key: junk$/m);
  assert.match(run.stdout, /^value \(16 bytes\): this is not json$/m);
  const json = await cli('inspect', '--json', '--topic', dlqTopic, '--partition', '0', '--offset', first.dlq.offset);
  const parsed = JSON.parse(json.stdout) as { headers: Array<{ name: string; text: string }>; value: { encoding: string; text: string } };
  assert.equal(parsed.value.text, 'this is not json');
  assert.ok(parsed.headers.some((h) => h.name === 'x-inserter-original-offset'));
  const missing = await cli('inspect', '--topic', dlqTopic, '--partition', '0', '--offset', '999999');
  assert.equal(missing.code, 1);
});

test('replay --to destination twice inserts each row once, with its original metadata', async () => {
  const team1 = await list('--team', '1');
  const before = await cli('replay', '--to', 'destination', '--team', '1');
  assert.equal(before.code, 1, 'the column still rejects them: they fail again and stay');
  assert.match(before.stdout, /failed 3/);
  assert.equal((await rows('id > 1000')).rows, 0);
  await ch.query('ALTER TABLE e.t MODIFY COLUMN uuid String');
  const dry = await cli('replay', '--to', 'destination', '--team', '1', '--dry-run');
  assert.match(dry.stdout, /would replay 3 to destination/);
  assert.equal((await rows('id > 1000')).rows, 0, 'a dry run inserts nothing');
  for (let i = 0; i < 2; i++) {
    const run = await cli('replay', '--to', 'destination', '--team', '1', '--json');
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const report = JSON.parse(run.stdout) as { replayed: unknown[]; skipped: unknown[]; failed: unknown[] };
    assert.equal(report.replayed.length, i === 0 ? 3 : 0, `run ${i + 1}: ${run.stdout}`);
    assert.equal(report.skipped.length, i === 0 ? 0 : 3);
  }
  assert.deepEqual(await rows('id > 1000'), { rows: 3, distinct: 3 });
  const metadata = (await ch.query('SELECT id, _topic, _partition, _offset FROM e.t WHERE id > 1000 ORDER BY id FORMAT TSV')).trim().split('\n');
  const expected = team1.map((l) => `${l.original?.topic}\t${l.original?.partition}\t${l.original?.offset}`).sort();
  assert.deepEqual(metadata.map((line) => line.split('\t').slice(1).join('\t')).sort(), expected, 'the original record’s topic, partition and offset');
  const skipped = await cli('replay', '--to', 'destination', '--class', 'decode');
  assert.match(skipped.stdout, /skipped 1.*\n.*no destination\/table headers/);
});

test('replay --to original twice re-produces each dead letter once; the pipeline lands it once', async () => {
  inserter = await startInserter(config);
  // The non-JSON one will be dead-lettered again while this runs: --until keeps the selection fixed.
  const until = new Date().toISOString();
  for (let i = 0; i < 2; i++) {
    const run = await cli('replay', '--to', 'original', '--until', until, '--json');
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const report = JSON.parse(run.stdout) as { replayed: unknown[]; skipped: Array<{ detail: string }> };
    // Team 1's rows went to the destination already; team 2's rows and the non-JSON one go now.
    assert.equal(report.replayed.length, i === 0 ? 4 : 0, `run ${i + 1}: ${run.stdout}`);
    assert.equal(report.skipped.length, i === 0 ? 3 : 7);
  }
  const republished = (await readTopic(bootstrap, topic, 211, 10_000)).filter((r) => r.headers.has('x-inserter-replayed-from'));
  assert.equal(republished.length, 4, 're-produced once each');
  assert.ok(
    republished.every((r) => !r.headers.has('x-inserter-error-class')),
    'without the writer’s headers',
  );
  assert.equal(republished.find((r) => r.key?.toString() === 'junk')?.headers.get('trace'), 't-1', 'with the original headers');
  await waitFor(async () => (await rows('id > 1000')).distinct === 6, 'team 2’s rows through the pipeline', 30_000);
  await waitFor(async () => (await list('--class', 'decode')).length === 2, 'the non-JSON one dead-lettered again', 30_000);
  await new Promise((r) => setTimeout(r, 1_500));
  assert.deepEqual(await rows('id > 1000'), { rows: 6, distinct: 6 });
  assert.deepEqual(await rows(), { rows: 206, distinct: 206 });
  const again = (await list('--class', 'decode'))[1];
  assert.ok(again);
  const shown = await cli('inspect', '--topic', dlqTopic, '--partition', '0', '--offset', again.dlq.offset);
  assert.match(shown.stdout, new RegExp(`^ {2}x-inserter-replayed-from: ${dlqTopic}/0/\\d+$`, 'm'));
  assert.equal(await inserter.stop(), 0);
  inserter = undefined;
});

test('verify holds after the replays: a replayed dead letter counts where it was replayed to', async () => {
  const run = await new Promise<Run>((resolve) => {
    execFile(join(REPO_ROOT, 'bin', 'inserter'), ['verify', '--config', configFile, '--id-field', 'id', '--json'], { timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
  const report = JSON.parse(run.stdout) as VerifyReport;
  assert.equal(run.code, 0, `${report.failures.join('\n')}${run.stderr}`);
  assert.deepEqual(report.routes[0]?.deadLetters.replayed, { toDestination: 3, toOriginal: 4 });
});

test('purge deletes the records below an offset', async () => {
  const before = await list();
  const cut = before[3];
  assert.ok(cut);
  const run = await cli('purge', '--topic', dlqTopic, '--partition', '0', '--before-offset', cut.dlq.offset);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, new RegExp(`records below ${cut.dlq.offset} deleted`));
  const afterPurge = await list();
  assert.deepEqual(
    afterPurge.map((l) => l.id),
    before.slice(3).map((l) => l.id),
  );
  const wrong = await cli('purge', '--topic', topic, '--partition', '0', '--before-offset', '1');
  assert.equal(wrong.code, 2, 'only dead-letter topics of the config');
});
