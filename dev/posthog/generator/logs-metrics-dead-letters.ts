// Owns the topics PostHog's plugin server writes about its own work: plugin_log_entries,
// clickhouse_app_metrics and events_dead_letter_queue.
import type { GeneratedMessage } from './topics.ts';
import { TOPICS } from './topics.ts';
import { at } from './random.ts';
import { stableUuid, ts6, uuid4, uuid7 } from './ids-and-times.ts';
import { CUSTOM_KEYS, DLQ_ERRORS, DLQ_LOCATIONS, ERROR_TYPES, HOSTS, LOG_MESSAGES, LOG_SOURCES, LOG_TYPES, METRIC_CATEGORIES, PATHS, WORDS, eventName } from './vocabulary.ts';
import type { World } from './world.ts';

// plugin_log_entries

export function* pluginLogEntries(w: World, count: number): Generator<GeneratedMessage> {
  const rng = w.rng;
  for (let i = 0; i < count; i++, w.index++) {
    const now = w.now();
    const team = w.team();
    const id = uuid4(rng);
    const pluginId = 1 + rng.int(w.plugins);
    const value = JSON.stringify({
      source: rng.pick(LOG_SOURCES),
      type: rng.pick(LOG_TYPES),
      id,
      team_id: team,
      plugin_id: pluginId,
      plugin_config_id: pluginId * 1000 + (team % 997),
      timestamp: ts6(now, rng.int(1000)),
      message: rng.pick(LOG_MESSAGES),
      instance_id: stableUuid(pluginId, 0, 0x1f),
    });
    yield w.message(TOPICS.pluginLogEntries, id, value, team, id);
  }
}

// app_metrics and the events dead letter queue

export function* appMetrics(w: World, count: number): Generator<GeneratedMessage> {
  const rng = w.rng;
  for (let i = 0; i < count; i++, w.index++) {
    const now = w.now();
    const team = w.team();
    const pluginConfigId = (1 + rng.int(w.plugins)) * 1000 + (team % 997);
    const failures = rng.chance(0.15) ? rng.range(1, 50) : 0;
    const timestamp = ts6(now, rng.int(1000));
    const category = rng.pick(METRIC_CATEGORIES);
    const row: Record<string, string | number | null> = {
      timestamp,
      team_id: team,
      plugin_config_id: pluginConfigId,
      job_id: null,
      category,
      successes: rng.int(5000),
      successes_on_retry: rng.chance(0.1) ? rng.range(1, 20) : 0,
      failures,
    };
    // PostHog omits the error fields when there was no error (JSON.stringify drops undefined).
    if (failures > 0) {
      const errorType = rng.pick(ERROR_TYPES);
      row.error_uuid = uuid4(rng);
      row.error_type = errorType;
      row.error_details = JSON.stringify({
        error: { name: errorType, message: rng.pick(DLQ_ERRORS), stack: `${errorType}: failed\n    at plugin.js:${rng.range(1, 400)}:${rng.range(1, 80)}` },
        eventCount: rng.range(1, 500),
      });
    }
    yield w.message(TOPICS.appMetrics, null, JSON.stringify(row), team, `${team}/${pluginConfigId}/${category}/${timestamp}/${i}`);
  }
}

export function* deadLetterQueue(w: World, count: number): Generator<GeneratedMessage> {
  const rng = w.rng;
  for (let i = 0; i < count; i++, w.index++) {
    const now = w.now();
    const team = w.team();
    const user = rng.int(w.usersOf(team));
    const id = uuid4(rng);
    const eventUuid = uuid7(now - rng.int(60_000), rng);
    const event = eventName(rng);
    const distinctId = w.distinctId(team, user);
    const properties = JSON.stringify({
      $current_url: `https://${at(HOSTS, team % HOSTS.length)}${rng.pick(PATHS)}`,
      $lib: 'web',
      $session_id: stableUuid(team, user, 0x5e),
      [rng.pick(CUSTOM_KEYS)]: rng.pick(WORDS),
    });
    const createdAt = ts6(now - rng.int(10_000), rng.int(1000));
    const rawPayload = JSON.stringify({ event, distinct_id: distinctId, properties: JSON.parse(properties) as unknown, uuid: eventUuid, team_id: team, now: createdAt });
    const value = JSON.stringify({
      id,
      event_uuid: eventUuid,
      event,
      properties,
      distinct_id: distinctId,
      team_id: team,
      elements_chain: '',
      created_at: createdAt,
      ip: rng.chance(0.5) ? '' : `203.0.113.${rng.range(1, 254)}`,
      site_url: rng.chance(0.5) ? '' : `https://${at(HOSTS, team % HOSTS.length)}`,
      now: ts6(now, rng.int(1000)),
      raw_payload: rawPayload,
      error_timestamp: ts6(now + rng.int(2000), rng.int(1000)),
      error_location: rng.pick(DLQ_LOCATIONS),
      error: rng.pick(DLQ_ERRORS),
      tags: rng.chance(0.8) ? ['plugin_server', 'ingest_event'] : ['plugin_server'],
    });
    yield w.message(TOPICS.deadLetterQueue, null, value, team, id);
  }
}
