// Owns the generator's public vocabulary: the eight PostHog topic names, the message it yields and
// the options it takes. Every other part of the generator builds on these shapes.

export const TOPICS = {
  events: 'clickhouse_events_json',
  sessionRecordingEvents: 'clickhouse_session_recording_events',
  pluginLogEntries: 'plugin_log_entries',
  person: 'clickhouse_person',
  personDistinctId: 'clickhouse_person_distinct_id',
  groups: 'clickhouse_groups',
  appMetrics: 'clickhouse_app_metrics',
  deadLetterQueue: 'events_dead_letter_queue',
} as const;

export type PosthogTopic = (typeof TOPICS)[keyof typeof TOPICS];

export const ALL_TOPICS: readonly PosthogTopic[] = Object.values(TOPICS);

export function isPosthogTopic(topic: string): topic is PosthogTopic {
  return (ALL_TOPICS as readonly string[]).includes(topic);
}

export interface GeneratedMessage {
  topic: PosthogTopic;
  /** Event uuid for events, id for plugin_log_entries, null for the other topics (as PostHog does). */
  key: Buffer | null;
  value: Buffer;
  headers?: Record<string, Buffer>;
  /** team_id written in the message (0 for corrupt messages without one). */
  teamId: number;
  /** Unique per generated message: the row's uuid, or entity id plus version for versioned rows. */
  id: string;
}

export interface GenerateOptions {
  seed: number;
  count: number;
  /** Number of teams (ids 1..teams, team 1 the busiest). Default 1000. */
  teams?: number;
  /** Zipf exponent of the team distribution. Default 1.2 (top team ~25%, top 10 ~60% with 1000 teams). */
  zipfExponent?: number;
  /**
   * Start of the simulated timeline, ms since the epoch. Default 2030-01-01: fixed for determinism and
   * in the future so the TTLs of session_recording_events (3 weeks) and plugin_log_entries (1 week)
   * don't delete freshly inserted rows. A timestamp in the past beyond those TTLs makes rows vanish.
   */
  baseTime?: number;
  /** Simulated messages per second of the timeline (timestamps advance by 1/rate). Default 1000. */
  ratePerSecond?: number;
  /** Share of session recordings that are large (900–990 KB; always under 1,000,000 bytes). Default 0.02. */
  bigRecordingFraction?: number;
  /** Number of distinct plugin_ids in plugin_log_entries (and plugin_config ids in app_metrics). Default 30. */
  plugins?: number;
  /** Attach Kafka headers (`source`, `team_id`). Default false: PostHog's producers send none here. */
  headers?: boolean;
}
