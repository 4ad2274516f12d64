// End to end on the real broker and two chlocal endpoints: all eight PostHog topics, routed by team
// to two "clusters", land with exact values — every column of every row compared with what
// ClickHouse itself makes of the same messages (the Kafka engine's semantics: unknown fields
// skipped, missing fields defaulted, metadata columns from the Kafka record) — and broken messages
// land in the dead-letter topic with their reason, while every good one lands.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createClient } from '@clickhouse/client';
import { loadDdl, tableForTopic } from '../../dev/posthog/ddl.ts';
import { ALL_TOPICS, corrupt, generate, type GeneratedMessage } from '../../dev/posthog/generator.ts';
import { produce, readTopic, committedOffsets, endOffsets, type ReadRecord } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { startInserter, waitFor, REPO_ROOT, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

const PARTITIONS = 3;
const COUNTS: Record<string, number> = {
  clickhouse_events_json: 600,
  clickhouse_session_recording_events: 40,
  plugin_log_entries: 300,
  clickhouse_person: 150,
  clickhouse_person_distinct_id: 150,
  clickhouse_groups: 60,
  clickhouse_app_metrics: 120,
  events_dead_letter_queue: 40,
};
const TEAMS = 12;
const prefix = uniqueTopic('ph');
const topicName = (t: string): string => `${prefix}.${t}`;
const dest = (team: number): 'a' | 'b' => (team % 2 === 1 ? 'a' : 'b');

let bootstrap: string;
let a: ClickHouseInstance;
let b: ClickHouseInstance;
let inserter: InserterProcess | undefined;
const produced = new Map<string, GeneratedMessage[]>();
const broken: GeneratedMessage[] = [];

before(async () => {
  bootstrap = await sharedKafka();
  // optimize_on_insert=0: rows with equal sorting keys inside one insert must not collapse differently
  // in the inserter's batches and the reference insert.
  const users = [{ name: 'default', password: '', settings: { optimize_on_insert: '0' } }];
  [a, b] = await Promise.all([startClickHouse({ users }), startClickHouse({ users })]);
  for (const ch of [a, b]) {
    await ch.query('CREATE DATABASE posthog');
    await ch.query('CREATE DATABASE ref');
    // Replacing/Aggregating merges would collapse rows differently in the two tables; stop them.
    // SYSTEM STOP MERGES acts on existing tables only, so the tables are made here (inserter's
    // CREATE TABLE from a DDL template is proven in live-schema.test.ts).
    for (const table of Object.values(tableForTopic)) {
      for (const db of ['posthog', 'ref']) {
        await ch.query(await loadDdl(table, db));
        await ch.query(`SYSTEM STOP MERGES ${db}.${table}`);
      }
    }
  }
  for (const topic of ALL_TOPICS) {
    await createTopic(bootstrap, topicName(topic), PARTITIONS);
    const messages = [...generate(topic, { seed: 7, count: COUNTS[topic] ?? 10, teams: TEAMS, bigRecordingFraction: 0.05, headers: topic === 'plugin_log_entries' })];
    produced.set(topic, messages);
  }
  broken.push(
    corrupt.notJson('clickhouse_events_json', 3),
    corrupt.jsonArray('clickhouse_events_json', 4),
    corrupt.missingTeamId('clickhouse_events_json', 5),
    corrupt.badColumnValue('clickhouse_events_json', 6),
  );
  // Broken messages sit between good ones: the good ones around them must still land.
  const events = produced.get('clickhouse_events_json') ?? [];
  const mixed = [...events.slice(0, 100), ...broken, ...events.slice(100)];
  for (const topic of ALL_TOPICS) {
    const list = topic === 'clickhouse_events_json' ? mixed : (produced.get(topic) ?? []);
    await produce(
      bootstrap,
      topicName(topic),
      list.map((m) => ({ key: m.key, value: m.value, ...(m.headers ? { headers: m.headers } : {}) })),
    );
  }
});

after(async () => {
  await inserter?.stop();
  await Promise.all([a?.stop(), b?.stop()]);
});

function config(): unknown {
  const teams: Record<string, string> = {};
  for (let t = 1; t <= TEAMS; t++) teams[String(t)] = dest(t);
  return {
    kafka: { brokers: [bootstrap], groupId: `${prefix}-group`, fetchMaxWaitMs: 100 },
    destinations: [
      { id: 'a', url: a.url, database: 'posthog' },
      { id: 'b', url: b.url, database: 'posthog' },
    ],
    teams: { map: teams, unknown: { action: 'deadLetter' } },
    routes: ALL_TOPICS.map((topic) => ({
      topic: topicName(topic),
      table: tableForTopic[topic],
      createTable: { ddlFile: `${REPO_ROOT}/dev/posthog/ddl/${tableForTopic[topic]}.sql` },
      deadLetterTopic: `${topicName(topic)}.dlq`,
    })),
    batch: { maxRows: 250, maxAgeMs: 300 },
    commitIntervalMs: 200,
    telemetry: { logLevel: 'debug' },
  };
}

async function count(ch: ClickHouseInstance, table: string): Promise<number> {
  return Number((await ch.query(`SELECT count() FROM posthog.${table}`)).trim());
}

function expectedCount(topic: string, d: 'a' | 'b'): number {
  return (produced.get(topic) ?? []).filter((m) => dest(m.teamId) === d).length;
}

test('all eight topics land in the clusters of their teams, with exact values', async () => {
  inserter = await startInserter(config());
  await waitFor(
    async () => {
      for (const topic of ALL_TOPICS) {
        const table = tableForTopic[topic] as string;
        if ((await count(a, table)) < expectedCount(topic, 'a') || (await count(b, table)) < expectedCount(topic, 'b')) return false;
      }
      return true;
    },
    'every row in its cluster',
    120_000,
  ).catch(async (error: unknown) => {
    throw new Error(`${String(error)}\n--- inserter log tail ---\n${(await inserter?.log())?.slice(-4000)}`);
  });

  // Reference rows: what ClickHouse itself makes of each message plus the Kafka metadata the engine
  // would add, computed here from the records read back from Kafka (an independent path).
  for (const topic of ALL_TOPICS) {
    const table = tableForTopic[topic] as string;
    const records = await readTopic(bootstrap, topicName(topic), topic === 'clickhouse_events_json' ? (COUNTS[topic] ?? 0) + broken.length : (COUNTS[topic] ?? 0));
    for (const [d, ch] of [
      ['a', a],
      ['b', b],
    ] as const) {
      const rows = referenceRows(records, d);
      const client = createClient({ url: ch.url });
      try {
        await client.insert({ table: `ref.${table}`, values: rows, format: 'JSONEachRow', clickhouse_settings: { input_format_skip_unknown_fields: 1, async_insert: 0 } });
      } finally {
        await client.close();
      }
      const columns = (
        await ch.query(`SELECT name FROM system.columns WHERE database='ref' AND table='${table}' AND default_kind NOT IN ('MATERIALIZED','ALIAS') AND name != 'inserted_at' ORDER BY position`)
      )
        .trim()
        .split('\n')
        .map((c) => `\`${c}\``)
        .join(', ');
      const diff = async (x: string, y: string): Promise<number> =>
        Number((await ch.query(`SELECT count() FROM (SELECT ${columns} FROM ${x}.${table} EXCEPT ALL SELECT ${columns} FROM ${y}.${table})`)).trim());
      assert.equal(await count(ch, table), expectedCount(topic, d), `${d}.${table} count`);
      assert.equal(await diff('posthog', 'ref'), 0, `${d}.${table}: rows not in the reference`);
      assert.equal(await diff('ref', 'posthog'), 0, `${d}.${table}: reference rows missing`);
    }
  }
  // A row never lands in a cluster not mapped for its team.
  for (const [d, ch] of [
    ['a', a],
    ['b', b],
  ] as const) {
    const wrong = Number((await ch.query(`SELECT count() FROM posthog.events WHERE team_id % 2 ${d === 'a' ? '= 0' : '= 1'}`)).trim());
    assert.equal(wrong, 0);
  }
  // Missing fields took their column defaults (events without group1 data).
  assert.ok(Number((await a.query("SELECT countIf(group4_properties = '') FROM posthog.events")).trim()) > 0);
});

test('broken messages are in the dead-letter topic with their reason; offsets are committed to the end', async () => {
  const dlq = await readTopic(bootstrap, `${topicName('clickhouse_events_json')}.dlq`, broken.length);
  assert.equal(dlq.length, broken.length);
  const byValue = new Map(dlq.map((r) => [r.value?.toString('utf8') ?? '', r]));
  const expectClass = ['decode', 'decode', 'decode', 'row_data'];
  broken.forEach((m, i) => {
    const r = byValue.get(m.value.toString('utf8'));
    assert.ok(r, `dead letter for broken message ${i}`);
    assert.equal(r.headers.get('x-inserter-error-class'), expectClass[i], `class of broken message ${i}`);
    assert.equal(r.headers.get('x-inserter-original-topic'), topicName('clickhouse_events_json'));
    assert.ok(r.headers.get('x-inserter-error-message'));
  });
  assert.equal(byValue.get(broken[3]?.value.toString('utf8') ?? '')?.headers.get('x-inserter-clickhouse-code') !== undefined, true);
  // Every partition of every topic is committed to its end: nothing left unresolved.
  await waitFor(
    async () => {
      for (const topic of ALL_TOPICS) {
        const [committed, end] = await Promise.all([committedOffsets(bootstrap, `${prefix}-group`, topicName(topic), PARTITIONS), endOffsets(bootstrap, topicName(topic))]);
        if (committed.some((c, p) => c !== end[p])) return false;
      }
      return true;
    },
    'committed offsets at the log end',
    30_000,
  );
  const code = await inserter?.stop();
  assert.equal(code, 0, 'graceful shutdown exits 0');
});

function referenceRows(records: ReadRecord[], d: 'a' | 'b'): Array<Record<string, unknown>> {
  const rows: Array<Record<string, unknown>> = [];
  for (const r of records) {
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(r.value?.toString('utf8') ?? '') as Record<string, unknown>;
    } catch {
      continue;
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row) || typeof row.team_id !== 'number') continue;
    if (broken.some((m) => m.value.equals(r.value ?? Buffer.alloc(0)))) continue;
    if (dest(row.team_id) !== d) continue;
    rows.push({ ...row, _offset: Number(r.offset), _timestamp: Number(r.timestamp / 1000n), _partition: r.partition });
  }
  return rows;
}
