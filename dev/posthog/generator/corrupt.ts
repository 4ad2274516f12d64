// Owns the corrupt messages tests feed the inserter: a generated message with its value broken in one
// known way (not JSON, truncated, empty, an array, a bad column value or timestamp, no team_id).
import type { GeneratedMessage, PosthogTopic } from './topics.ts';
import { generate } from './generate.ts';

function firstMessage(topic: string, seed: number): GeneratedMessage {
  const first = generate(topic, { seed, count: 1, bigRecordingFraction: 0 }).next();
  if (first.done) throw new Error('generator produced nothing');
  return first.value;
}

function withValue(message: GeneratedMessage, value: string | Buffer, teamId = message.teamId): GeneratedMessage {
  return { ...message, value: Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'), teamId, id: `${message.id}!corrupt` };
}

function parseObject(message: GeneratedMessage): Record<string, unknown> {
  return JSON.parse(message.value.toString('utf8')) as Record<string, unknown>;
}

const BAD_VALUE_FIELD: Record<PosthogTopic, [string, unknown]> = {
  clickhouse_events_json: ['uuid', 'not-a-uuid'],
  clickhouse_session_recording_events: ['timestamp', 'garbage'],
  plugin_log_entries: ['timestamp', 'garbage'],
  clickhouse_person: ['id', 'not-a-uuid'],
  clickhouse_person_distinct_id: ['person_id', 'not-a-uuid'],
  clickhouse_groups: ['group_type_index', 'zero'],
  clickhouse_app_metrics: ['timestamp', 'garbage'],
  events_dead_letter_queue: ['event_uuid', 'not-a-uuid'],
};

export const corrupt = {
  /** Not JSON at all. */
  notJson(topic: string, seed = 1): GeneratedMessage {
    return withValue(firstMessage(topic, seed), 'this is {not json');
  },
  /** Valid JSON, truncated mid-object. */
  truncated(topic: string, seed = 1): GeneratedMessage {
    const m = firstMessage(topic, seed);
    return withValue(m, m.value.subarray(0, Math.floor(m.value.length / 2)));
  },
  /** An empty value (what a tombstone or a broken producer sends). */
  emptyValue(topic: string, seed = 1): GeneratedMessage {
    return withValue(firstMessage(topic, seed), '');
  },
  /** A JSON array (containing the real row) instead of an object. */
  jsonArray(topic: string, seed = 1): GeneratedMessage {
    const m = firstMessage(topic, seed);
    return withValue(m, `[${m.value.toString('utf8')}]`);
  },
  /** A well-formed object with a value its column can't take (e.g. events `"uuid":"not-a-uuid"`). */
  badColumnValue(topic: string, seed = 1): GeneratedMessage {
    const m = firstMessage(topic, seed);
    const [field, bad] = BAD_VALUE_FIELD[m.topic];
    return withValue(m, JSON.stringify({ ...parseObject(m), [field]: bad }));
  },
  /**
   * A well-formed object whose `timestamp` (or created_at) is garbage. person_distinct_id has no
   * time field: there it is badColumnValue.
   */
  badTimestamp(topic: string, seed = 1): GeneratedMessage {
    const m = firstMessage(topic, seed);
    const row = parseObject(m);
    const field = 'timestamp' in row ? 'timestamp' : 'created_at' in row ? 'created_at' : undefined;
    if (field === undefined) return corrupt.badColumnValue(topic, seed);
    return withValue(m, JSON.stringify({ ...row, [field]: 'garbage' }));
  },
  /** A well-formed object without team_id. */
  missingTeamId(topic: string, seed = 1): GeneratedMessage {
    const m = firstMessage(topic, seed);
    const { team_id: _teamId, ...rest } = parseObject(m);
    return withValue(m, JSON.stringify(rest), 0);
  },
};
