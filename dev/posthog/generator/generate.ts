// Owns generate(): which builder makes each topic's messages, each call with a World of its own.
import type { GeneratedMessage, GenerateOptions, PosthogTopic } from './topics.ts';
import { isPosthogTopic } from './topics.ts';
import { World } from './world.ts';
import { events } from './events.ts';
import { sessionRecordingEvents } from './session-recordings.ts';
import { groups, person, personDistinctId } from './versioned-entities.ts';
import { appMetrics, deadLetterQueue, pluginLogEntries } from './logs-metrics-dead-letters.ts';

const BUILDERS: Record<PosthogTopic, (w: World, count: number) => Generator<GeneratedMessage>> = {
  clickhouse_events_json: events,
  clickhouse_session_recording_events: sessionRecordingEvents,
  plugin_log_entries: pluginLogEntries,
  clickhouse_person: person,
  clickhouse_person_distinct_id: personDistinctId,
  clickhouse_groups: groups,
  clickhouse_app_metrics: appMetrics,
  events_dead_letter_queue: deadLetterQueue,
};

/**
 * `count` messages for `topic`. Values and keys are views into shared 4 MiB slabs (cheap to make,
 * keep the slab alive while referenced); copy them if you keep a few out of millions.
 */
export function* generate(topic: string, options: GenerateOptions): Generator<GeneratedMessage> {
  if (!isPosthogTopic(topic)) throw new Error(`unknown PostHog topic: ${topic}`);
  yield* BUILDERS[topic](new World(topic, options), options.count);
}

/** Fast path: just the values (e.g. 2 million events for a benchmark). */
export function* generateValues(topic: string, options: GenerateOptions): Generator<Buffer> {
  for (const message of generate(topic, options)) yield message.value;
}
