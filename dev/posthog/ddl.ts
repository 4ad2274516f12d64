// DDL of PostHog's ClickHouse destination tables, one file per table under ./ddl/.
// Each file uses a literal `{database}` placeholder that loadDdl() substitutes.
import { readFile } from 'node:fs/promises';

export const posthogTables: readonly string[] = ['events', 'session_recording_events', 'plugin_log_entries', 'person', 'person_distinct_id2', 'groups', 'app_metrics', 'events_dead_letter_queue'];

export const posthogTopics: readonly string[] = [
  'clickhouse_events_json',
  'clickhouse_session_recording_events',
  'plugin_log_entries',
  'clickhouse_person',
  'clickhouse_person_distinct_id',
  'clickhouse_groups',
  'clickhouse_app_metrics',
  'events_dead_letter_queue',
];

/** Kafka topic → destination table. */
export const tableForTopic: Readonly<Record<string, string>> = {
  clickhouse_events_json: 'events',
  clickhouse_session_recording_events: 'session_recording_events',
  plugin_log_entries: 'plugin_log_entries',
  clickhouse_person: 'person',
  clickhouse_person_distinct_id: 'person_distinct_id2',
  clickhouse_groups: 'groups',
  clickhouse_app_metrics: 'app_metrics',
  events_dead_letter_queue: 'events_dead_letter_queue',
};

/** Destination table → Kafka topic. */
export const topicForTable: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(tableForTopic).map(([topic, table]) => [table, topic]));

const DATABASE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The CREATE TABLE statement for `table`, with `{database}` replaced by `database`. */
export async function loadDdl(table: string, database: string): Promise<string> {
  if (!posthogTables.includes(table)) throw new Error(`unknown PostHog table: ${table}`);
  if (!DATABASE_NAME.test(database)) throw new Error(`invalid database name: ${database}`);
  const text = await readFile(new URL(`./ddl/${table}.sql`, import.meta.url), 'utf8');
  return text.replaceAll('{database}', database);
}
