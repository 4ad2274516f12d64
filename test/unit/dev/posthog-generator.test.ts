import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { posthogTables, tableForTopic, topicForTable } from '../../../dev/posthog/ddl.ts';
import type { GeneratedMessage, PosthogTopic } from '../../../dev/posthog/generator.ts';
import { ALL_TOPICS, TOPICS, corrupt, generate, mixedCounts, mixedTraffic } from '../../../dev/posthog/generator.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TS6 = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/;
const TS3 = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/;
const TS0 = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

type Kind = 'uuid' | 'ts6' | 'ts3' | 'ts0' | 'int' | 'string' | 'json' | 'null' | 'strings';

// Required fields per topic and what each must look like. `json` = a string holding a JSON object.
const SHAPES: Record<PosthogTopic, Record<string, Kind>> = {
  clickhouse_events_json: {
    uuid: 'uuid',
    event: 'string',
    properties: 'json',
    timestamp: 'ts6',
    team_id: 'int',
    distinct_id: 'string',
    elements_chain: 'string',
    created_at: 'ts6',
    person_id: 'uuid',
    person_properties: 'json',
    person_created_at: 'ts0',
    person_mode: 'string',
    project_id: 'int',
    captured_at: 'ts6',
  },
  clickhouse_session_recording_events: {
    uuid: 'uuid',
    team_id: 'int',
    distinct_id: 'string',
    session_id: 'uuid',
    window_id: 'uuid',
    snapshot_data: 'json',
    timestamp: 'ts6',
    created_at: 'ts6',
  },
  plugin_log_entries: {
    source: 'string',
    type: 'string',
    id: 'uuid',
    team_id: 'int',
    plugin_id: 'int',
    plugin_config_id: 'int',
    timestamp: 'ts6',
    message: 'string',
    instance_id: 'uuid',
  },
  clickhouse_person: {
    id: 'uuid',
    created_at: 'ts0',
    properties: 'json',
    team_id: 'int',
    is_identified: 'int',
    is_deleted: 'int',
    version: 'int',
  },
  clickhouse_person_distinct_id: { person_id: 'uuid', team_id: 'int', distinct_id: 'string', version: 'int', is_deleted: 'int' },
  clickhouse_groups: {
    group_type_index: 'int',
    group_key: 'string',
    team_id: 'int',
    group_properties: 'json',
    created_at: 'ts0',
    version: 'int',
  },
  clickhouse_app_metrics: {
    timestamp: 'ts6',
    team_id: 'int',
    plugin_config_id: 'int',
    job_id: 'null',
    category: 'string',
    successes: 'int',
    successes_on_retry: 'int',
    failures: 'int',
  },
  events_dead_letter_queue: {
    id: 'uuid',
    event_uuid: 'uuid',
    event: 'string',
    properties: 'json',
    distinct_id: 'string',
    team_id: 'int',
    elements_chain: 'string',
    created_at: 'ts6',
    ip: 'string',
    site_url: 'string',
    now: 'ts6',
    raw_payload: 'json',
    error_timestamp: 'ts6',
    error_location: 'string',
    error: 'string',
    tags: 'strings',
  },
};

function parse(message: GeneratedMessage): Record<string, unknown> {
  const row: unknown = JSON.parse(message.value.toString('utf8'));
  assert.ok(row !== null && typeof row === 'object' && !Array.isArray(row), 'value is a JSON object');
  return row as Record<string, unknown>;
}

function check(kind: Kind, value: unknown, where: string): void {
  switch (kind) {
    case 'uuid':
      assert.match(String(value), UUID, where);
      break;
    case 'ts6':
      assert.match(String(value), TS6, where);
      break;
    case 'ts3':
      assert.match(String(value), TS3, where);
      break;
    case 'ts0':
      assert.match(String(value), TS0, where);
      break;
    case 'int':
      assert.ok(Number.isInteger(value), `${where}: integer`);
      break;
    case 'string':
      assert.equal(typeof value, 'string', where);
      break;
    case 'null':
      assert.equal(value, null, where);
      break;
    case 'strings':
      assert.ok(Array.isArray(value) && value.every((v) => typeof v === 'string'), `${where}: array of strings`);
      break;
    case 'json': {
      assert.equal(typeof value, 'string', `${where}: a JSON string`);
      const inner: unknown = JSON.parse(String(value));
      assert.ok(inner !== null && typeof inner === 'object' && !Array.isArray(inner), `${where}: holds an object`);
      break;
    }
  }
}

function collect(topic: PosthogTopic, count: number, seed = 42): GeneratedMessage[] {
  return [...generate(topic, { seed, count, teams: 200, bigRecordingFraction: 0.01 })];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

void describe('posthog generator', () => {
  void it('is deterministic: same seed, same bytes; other seed, other bytes', () => {
    for (const topic of ALL_TOPICS) {
      const a = collect(topic, 50, 7);
      const b = collect(topic, 50, 7);
      const c = collect(topic, 50, 8);
      assert.deepEqual(
        a.map((m) => m.value.toString('hex')),
        b.map((m) => m.value.toString('hex')),
        topic,
      );
      assert.deepEqual(
        a.map((m) => m.key?.toString('hex')),
        b.map((m) => m.key?.toString('hex')),
        topic,
      );
      assert.notDeepEqual(
        a.map((m) => m.value.toString('hex')),
        c.map((m) => m.value.toString('hex')),
        topic,
      );
    }
  });

  for (const topic of ALL_TOPICS) {
    void it(`${topic}: every message is a JSON object with the reference fields and types`, () => {
      const messages = collect(topic, 300);
      assert.equal(messages.length, 300);
      const ids = new Set<string>();
      for (const [i, message] of messages.entries()) {
        assert.equal(message.topic, topic);
        const row = parse(message);
        for (const [field, kind] of Object.entries(SHAPES[topic])) {
          assert.ok(field in row, `${topic}#${i}: has ${field}`);
          check(kind, row[field], `${topic}#${i}.${field}`);
        }
        assert.ok(Number.isInteger(row.team_id) && Number(row.team_id) > 0, 'positive team_id');
        assert.equal(message.teamId, row.team_id);
        ids.add(message.id);
      }
      assert.equal(ids.size, messages.length, 'ids are unique');
    });
  }

  void it('events carry optional group fields, materialisable properties and PostHog value sets', () => {
    let groups = 0;
    let elements = 0;
    for (const message of collect(TOPICS.events, 1000)) {
      const row = parse(message);
      const props = JSON.parse(String(row.properties)) as Record<string, unknown>;
      assert.match(String(props.$session_id), UUID);
      assert.ok(['full', 'propertyless', 'force_upgrade'].includes(String(row.person_mode)));
      assert.equal(row.project_id, row.team_id);
      if ('group0_properties' in row) {
        groups++;
        check('json', row.group0_properties, 'group0_properties');
        check('ts3', row.group0_created_at, 'group0_created_at');
        assert.equal(typeof props.$group_0, 'string');
      }
      if (row.elements_chain !== '') elements++;
    }
    assert.ok(groups > 100, `some events have groups (${groups})`);
    assert.ok(elements > 50, `some events have an elements_chain (${elements})`);
  });

  void it('event sizes: median 1.2–1.8 KB over 2,000 events, all within 0.4–2.2 KB', () => {
    const sizes = [...generate(TOPICS.events, { seed: 1, count: 2000 })].map((m) => m.value.length);
    const mid = median(sizes);
    assert.ok(mid >= 1200 && mid <= 1800, `median ${mid}`);
    assert.ok(Math.min(...sizes) >= 400, `min ${Math.min(...sizes)}`);
    assert.ok(Math.max(...sizes) <= 2200, `max ${Math.max(...sizes)}`);
    // Sizes vary: not one fixed template.
    assert.ok(new Set(sizes).size > 300);
  });

  void it('teams are skewed: the top team carries a large share, with a long tail', () => {
    const perTeam = new Map<number, number>();
    const count = 5000;
    for (const m of generate(TOPICS.events, { seed: 3, count, teams: 1000 })) perTeam.set(m.teamId, (perTeam.get(m.teamId) ?? 0) + 1);
    const shares = [...perTeam.values()].sort((a, b) => b - a);
    const top = (shares[0] ?? 0) / count;
    const top10 = shares.slice(0, 10).reduce((a, b) => a + b, 0) / count;
    assert.ok(top > 0.15, `top team share ${top}`);
    assert.ok(top10 > 0.5, `top 10 share ${top10}`);
    assert.ok(perTeam.size > 200, `long tail: ${perTeam.size} teams`);
    for (const team of perTeam.keys()) assert.ok(team >= 1 && team <= 1000);
  });

  void it('session recordings stay under 1 MB; the big fraction is configurable', () => {
    const none = [...generate(TOPICS.sessionRecordingEvents, { seed: 5, count: 200, bigRecordingFraction: 0 })];
    assert.ok(none.every((m) => m.value.length < 64 * 1024));
    const all = [...generate(TOPICS.sessionRecordingEvents, { seed: 5, count: 4, bigRecordingFraction: 1 })];
    for (const m of all) {
      assert.ok(m.value.length > 850_000 && m.value.length < 1_000_000, `big recording ${m.value.length} bytes`);
      const snapshot = JSON.parse(String(parse(m).snapshot_data)) as Record<string, unknown>;
      assert.equal(snapshot.compression, 'gzip-base64');
      assert.match(String(snapshot.data), /^H4sI/);
      assert.equal(typeof snapshot.has_full_snapshot, 'boolean');
    }
  });

  void it('plugin_log_entries span the configured number of plugin_ids', () => {
    const ids = new Set<unknown>();
    for (const m of generate(TOPICS.pluginLogEntries, { seed: 9, count: 2000, plugins: 150 })) ids.add(parse(m).plugin_id);
    assert.ok(ids.size > 120, `${ids.size} plugin ids`);
    assert.ok([...ids].every((id) => Number(id) >= 1 && Number(id) <= 150));
  });

  void it('keys follow the reference: event uuid, plugin log id, null elsewhere', () => {
    for (const topic of ALL_TOPICS) {
      for (const m of collect(topic, 20)) {
        const row = parse(m);
        if (topic === TOPICS.events) assert.equal(m.key?.toString(), row.uuid);
        else if (topic === TOPICS.pluginLogEntries) assert.equal(m.key?.toString(), row.id);
        else assert.equal(m.key, null, topic);
      }
    }
  });

  void it('versioned entities come back with higher versions', () => {
    const versions = new Map<string, number[]>();
    for (const m of generate(TOPICS.person, { seed: 4, count: 500, teams: 5 })) {
      const row = parse(m);
      const id = String(row.id);
      versions.set(id, [...(versions.get(id) ?? []), Number(row.version)]);
    }
    const updated = [...versions.values()].filter((v) => v.length > 1);
    assert.ok(updated.length > 10);
    for (const v of updated)
      assert.deepEqual(
        v,
        [...v].sort((a, b) => a - b),
      );
  });

  void it('headers are opt-in', () => {
    const [plain] = collect(TOPICS.events, 1);
    assert.equal(plain?.headers, undefined);
    const [withHeaders] = [...generate(TOPICS.events, { seed: 1, count: 1, headers: true })];
    assert.equal(withHeaders?.headers?.team_id?.toString(), String(withHeaders?.teamId));
  });

  void it('mixedTraffic interleaves topics deterministically with the requested counts', () => {
    const perTopicCounts = { clickhouse_events_json: 300, clickhouse_groups: 40, plugin_log_entries: 60 };
    const run = (): GeneratedMessage[] => [...mixedTraffic({ seed: 11, perTopicCounts, bigRecordingFraction: 0 })];
    const a = run();
    assert.equal(a.length, 400);
    assert.deepEqual(
      a.map((m) => m.value.toString('hex')),
      run().map((m) => m.value.toString('hex')),
    );
    const counts = new Map<string, number>();
    for (const m of a) counts.set(m.topic, (counts.get(m.topic) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(counts), perTopicCounts);
    // Interleaved, not grouped: the first 50 messages already include more than one topic.
    assert.ok(new Set(a.slice(0, 50).map((m) => m.topic)).size > 1);
    // Each topic's sequence equals the standalone generator's.
    const groups = a.filter((m) => m.topic === TOPICS.groups).map((m) => m.value.toString());
    assert.deepEqual(
      groups,
      [...generate(TOPICS.groups, { seed: 11, count: 40, bigRecordingFraction: 0 })].map((m) => m.value.toString()),
    );
    const split = mixedCounts(1000);
    assert.equal(
      Object.values(split).reduce((x, y) => x + y, 0),
      1000,
    );
    assert.ok(split.clickhouse_events_json > 500);
  });

  void it('corrupt helpers produce the promised kinds of broken messages', () => {
    for (const topic of ALL_TOPICS) {
      assert.throws(() => JSON.parse(corrupt.notJson(topic).value.toString()) as unknown);
      assert.throws(() => JSON.parse(corrupt.truncated(topic).value.toString()) as unknown);
      assert.equal(corrupt.emptyValue(topic).value.length, 0);
      assert.ok(Array.isArray(JSON.parse(corrupt.jsonArray(topic).value.toString())));
      const missing = corrupt.missingTeamId(topic);
      assert.ok(!('team_id' in parse(missing)));
      assert.equal(missing.teamId, 0);
      const bad = parse(corrupt.badColumnValue(topic));
      assert.ok(Object.values(bad).some((v) => v === 'not-a-uuid' || v === 'garbage' || v === 'zero'));
      const badTs = parse(corrupt.badTimestamp(topic));
      if (topic === TOPICS.personDistinctId) assert.equal(badTs.person_id, 'not-a-uuid');
      else assert.ok(badTs.timestamp === 'garbage' || badTs.created_at === 'garbage');
    }
    assert.equal(parse(corrupt.badColumnValue(TOPICS.events)).uuid, 'not-a-uuid');
  });

  void it('ddl maps every topic to a table and back', () => {
    assert.equal(posthogTables.length, 8);
    for (const topic of ALL_TOPICS) {
      const table = tableForTopic[topic];
      assert.ok(table !== undefined && posthogTables.includes(table), topic);
      assert.equal(topicForTable[table], topic);
    }
  });
});
