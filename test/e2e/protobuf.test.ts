// End to end with Protobuf on the bus: the eight PostHog topics produced as posthog.v1 messages in
// the Confluent wire format (dev/posthog/protobuf.ts), schemas in a fake schema registry (the REST
// calls of Confluent's API; no real registry runs here), a real broker, a real ClickHouse server and
// `bin/inserter run` with `format: protobuf` routes (pass-through: object rows rendered as
// JSONEachRow). Every good row lands once with the same column values as the JSON messages give
// through ClickHouse's own JSONEachRow (the JSON path); a record naming an unknown schema id, an
// Avro schema, garbage after a valid header, and a value without the magic byte are dead-lettered
// with their reason; offsets are committed to the end.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { createClient } from '@clickhouse/client';
import { loadDdl, tableForTopic } from '../../dev/posthog/ddl.ts';
import { ALL_TOPICS, generate, type GeneratedMessage } from '../../dev/posthog/generator.ts';
import { frame, registerSchemas, toProtobuf, toWireMessage } from '../../dev/posthog/protobuf.ts';
import { committedOffsets, endOffsets, produce, readTopic } from '../helpers/bus.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { startInserter, waitFor, writeConfig, REPO_ROOT, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from '../helpers/kafka.ts';
import { FakeSchemaRegistry } from '../helpers/schema-registry.ts';

const PARTITIONS = 2;
const COUNTS: Record<string, number> = {
  clickhouse_events_json: 400,
  clickhouse_session_recording_events: 30,
  plugin_log_entries: 150,
  clickhouse_person: 100,
  clickhouse_person_distinct_id: 100,
  clickhouse_groups: 50,
  clickhouse_app_metrics: 100,
  events_dead_letter_queue: 30,
};
const TEAMS = 10;
const REGISTRY_FAILURES = 3;
const EVENTS = 'clickhouse_events_json';
const prefix = uniqueTopic('pb');
const topicName = (t: string): string => `${prefix}.${t}`;

let bootstrap: string;
let ch: ClickHouseInstance;
let inserter: InserterProcess | undefined;
const registry = new FakeSchemaRegistry({ username: 'inserter', password: 'registry-secret' });
let registryUrl = '';
/** The JSON message of every good record, by its wire value (base64). */
const jsonOf = new Map<string, GeneratedMessage>();
const good = new Map<string, GeneratedMessage[]>();
const broken: { value: Buffer; code: string }[] = [];

before(async () => {
  bootstrap = await sharedKafka();
  registryUrl = await registry.start();
  const users = [{ name: 'default', password: '', settings: { optimize_on_insert: '0' } }];
  ch = await startClickHouse({ users });
  await ch.query('CREATE DATABASE posthog');
  await ch.query('CREATE DATABASE ref');
  for (const table of Object.values(tableForTopic)) {
    for (const db of ['posthog', 'ref']) {
      await ch.query(await loadDdl(table, db));
      await ch.query(`SYSTEM STOP MERGES ${db}.${table}`);
    }
  }
  // The producer's side: schemas registered as a Confluent serializer does (TopicNameStrategy).
  const ids = await registerSchemas({ url: registryUrl, username: 'inserter', password: 'registry-secret' }, ALL_TOPICS, topicName);
  const avroId = registry.register(`${topicName(EVENTS)}-avro-value`, '{"type":"string"}', { schemaType: 'AVRO' });
  for (const topic of ALL_TOPICS) {
    await createTopic(bootstrap, topicName(topic), PARTITIONS);
    const messages = [...generate(topic, { seed: 11, count: COUNTS[topic] ?? 10, teams: TEAMS, bigRecordingFraction: 0.05 })];
    good.set(topic, messages);
    const wire = messages.map((m) => toWireMessage(m, ids));
    wire.forEach((w, i) => jsonOf.set(w.value.toString('base64'), messages[i] as GeneratedMessage));
    const records = wire.map((m) => ({ key: m.key, value: m.value }));
    if (topic === EVENTS) {
      const payload = toProtobuf(messages[0] as GeneratedMessage);
      broken.push(
        { value: frame(987_654, payload), code: 'INSERTER_DECODE_UNKNOWN_SCHEMA' },
        { value: frame(avroId, payload), code: 'INSERTER_DECODE_NOT_PROTOBUF' },
        { value: frame(ids[EVENTS] ?? 0, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01])), code: 'INSERTER_DECODE_BAD_PROTOBUF' },
        { value: (messages[1] as GeneratedMessage).value, code: 'INSERTER_DECODE_BAD_MAGIC' },
      );
      // Broken records sit between good ones: the good ones around them must still land.
      records.splice(50, 0, ...broken.map((b) => ({ key: null, value: b.value })));
    }
    await produce(bootstrap, topicName(topic), records);
  }
});

after(async () => {
  await inserter?.stop();
  await ch?.stop();
  await registry.stop();
});

function config(): unknown {
  const teams: Record<string, string> = {};
  for (let t = 1; t <= TEAMS; t++) teams[String(t)] = 'a';
  return {
    kafka: { brokers: [bootstrap], groupId: `${prefix}-group`, fetchMaxWaitMs: 100 },
    destinations: [{ id: 'a', url: ch.url, database: 'posthog' }],
    teams: { map: teams, unknown: { action: 'deadLetter' } },
    schemaRegistry: { url: registryUrl, username: 'inserter', password: { env: 'TEST_REGISTRY_PASSWORD' }, timeoutMs: 5_000 },
    routes: ALL_TOPICS.map((topic) => ({
      topic: topicName(topic),
      table: tableForTopic[topic],
      format: 'protobuf',
      createTable: { ddlFile: `${REPO_ROOT}/dev/posthog/ddl/${tableForTopic[topic]}.sql` },
      deadLetterTopic: `${topicName(topic)}.dlq`,
    })),
    batch: { maxRows: 200, maxAgeMs: 300 },
    commitIntervalMs: 200,
    telemetry: { logLevel: 'debug' },
  };
}

async function count(table: string): Promise<number> {
  return Number((await ch.query(`SELECT count() FROM posthog.${table}`)).trim());
}

test('the eight topics as Protobuf land once each, with the values the JSON messages give (the registry failing at first)', async () => {
  // The registry's first answers are errors: the records wait for it, none is dead-lettered.
  registry.failNext(REGISTRY_FAILURES, 'error');
  inserter = await startInserter(config(), { TEST_REGISTRY_PASSWORD: 'registry-secret' });
  await waitFor(
    async () => {
      for (const topic of ALL_TOPICS) if ((await count(tableForTopic[topic] as string)) < (good.get(topic)?.length ?? 0)) return false;
      return true;
    },
    'every row landed',
    120_000,
  ).catch(async (error: unknown) => {
    throw new Error(`${String(error)}\n--- inserter log tail ---\n${(await inserter?.log())?.slice(-4000)}`);
  });

  // The JSON path: the same rows as the producers' JSON, with the Kafka metadata of the records
  // read back, through ClickHouse's own JSONEachRow into twin tables.
  for (const topic of ALL_TOPICS) {
    const table = tableForTopic[topic] as string;
    const expected = (good.get(topic)?.length ?? 0) + (topic === EVENTS ? broken.length : 0);
    const records = await readTopic(bootstrap, topicName(topic), expected);
    const rows: Record<string, unknown>[] = [];
    for (const r of records) {
      const json = jsonOf.get(r.value?.toString('base64') ?? '');
      if (json === undefined) continue; // a broken record
      rows.push({ ...(JSON.parse(json.value.toString('utf8')) as Record<string, unknown>), _offset: Number(r.offset), _timestamp: Number(r.timestamp / 1000n), _partition: r.partition });
    }
    assert.equal(rows.length, good.get(topic)?.length, `${topic}: every good record read back`);
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
    assert.equal(await count(table), rows.length, `${table}: each row once`);
    assert.equal(await diff('posthog', 'ref'), 0, `${table}: rows not as the JSON path gives them`);
    assert.equal(await diff('ref', 'posthog'), 0, `${table}: rows of the JSON path missing`);
  }
  // Absent optional fields took their column defaults; enums arrived by name.
  assert.ok(Number((await ch.query("SELECT countIf(group4_properties = '') FROM posthog.events")).trim()) > 0);
  assert.ok(Number((await ch.query("SELECT countIf(person_mode != 'full') FROM posthog.events")).trim()) > 0);
  assert.ok(Number((await ch.query("SELECT countIf(error_type = '') FROM posthog.app_metrics")).trim()) > 0);
});

test('records that are not good Protobuf are dead-lettered with their reason; offsets committed; each schema fetched once', async () => {
  const dlq = await readTopic(bootstrap, `${topicName(EVENTS)}.dlq`, broken.length);
  assert.equal(dlq.length, broken.length);
  for (const b of broken) {
    const letter = dlq.find((r) => r.value?.equals(b.value) === true);
    assert.ok(letter, `dead letter for ${b.code}`);
    assert.equal(letter.headers.get('x-inserter-error-class'), 'decode');
    assert.equal(letter.headers.get('x-inserter-error-code'), b.code);
    assert.ok(letter.headers.get('x-inserter-error-message'));
  }
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
  const byId = new Map<string, number>();
  for (const r of registry.requestsTo('/schemas/ids/')) byId.set(r.path, (byId.get(r.path) ?? 0) + 1);
  assert.equal(byId.size, ALL_TOPICS.length + 2, 'the eight schemas, the unknown id and the Avro one');
  const asked = [...byId.values()].reduce((a, b) => a + b, 0);
  assert.equal(asked, byId.size + REGISTRY_FAILURES, `each id asked once once answered (cached, an unknown one too): ${JSON.stringify([...byId])}`);
  assert.ok(
    registry.requestsTo('/subjects/').some((r) => r.method === 'GET' && r.path.includes('person_mode.proto')),
    'the events schema reference fetched',
  );
  assert.ok(
    registry.requestsTo('/schemas/ids/').every((r) => r.authorization === `Basic ${Buffer.from('inserter:registry-secret').toString('base64')}`),
    'basic auth with the secret from the environment',
  );
  assert.doesNotMatch(await (inserter as InserterProcess).log(), /registry-secret/, 'the secret is never logged');
  assert.equal(await inserter?.stop(), 0, 'graceful shutdown exits 0');
});

test('inserter verify reads a protobuf route with its decoder: every event once, the broken ones dead-lettered', async () => {
  const all = config() as { routes: { topic: string }[] };
  const file = await writeConfig({ ...all, routes: all.routes.filter((r) => r.topic === topicName(EVENTS)) });
  const run = await promisify(execFile)(`${REPO_ROOT}/bin/inserter`, ['verify', '--config', file, '--id-field', 'uuid', '--json'], {
    env: { ...process.env, TEST_REGISTRY_PASSWORD: 'registry-secret' },
  }).catch((error: { stdout?: string; stderr?: string; code?: number }) => {
    throw new Error(`verify exited ${error.code}: ${error.stderr ?? ''}${error.stdout ?? ''}`);
  });
  const report = JSON.parse(run.stdout) as { ok: boolean; failures: string[] };
  assert.deepEqual(report.failures, []);
  assert.equal(report.ok, true);
});
