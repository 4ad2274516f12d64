// The PostHog traffic as Protobuf: the generator's messages (generator.ts) turned into the
// posthog.v1 messages of proto/posthog/v1 (same rows: every field of the JSON message, timestamps
// as google.protobuf.Timestamp, null and absent fields left unset), framed in the Confluent wire
// format (magic 0, schema id, message indexes) with ids registered in a schema registry under
// `<topic>-value` (TopicNameStrategy); person_mode.proto, which events.proto imports, is registered
// as its reference. Keys, headers, team ids and ids stay those of the JSON message.
import { ScalarType, create, toBinary, type DescField, type DescFile, type DescMessage } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import type { GeneratedMessage, PosthogTopic } from './generator.ts';
import { AppMetricSchema, file_posthog_v1_app_metrics } from './gen/posthog/v1/app_metrics_pb.ts';
import { EventDeadLetterSchema, file_posthog_v1_events_dead_letter_queue } from './gen/posthog/v1/events_dead_letter_queue_pb.ts';
import { EventSchema, file_posthog_v1_events } from './gen/posthog/v1/events_pb.ts';
import { GroupSchema, file_posthog_v1_groups } from './gen/posthog/v1/groups_pb.ts';
import { PersonDistinctIdSchema, file_posthog_v1_person_distinct_id } from './gen/posthog/v1/person_distinct_id_pb.ts';
import { PersonSchema, file_posthog_v1_person } from './gen/posthog/v1/person_pb.ts';
import { PluginLogEntrySchema, file_posthog_v1_plugin_log_entries } from './gen/posthog/v1/plugin_log_entries_pb.ts';
import { SessionRecordingEventSchema, file_posthog_v1_session_recording_events } from './gen/posthog/v1/session_recording_events_pb.ts';

/** The message type of each topic and the file that declares it. */
export const PROTOBUF_TYPES: Readonly<Record<PosthogTopic, { readonly desc: DescMessage; readonly file: DescFile }>> = {
  clickhouse_events_json: { desc: EventSchema, file: file_posthog_v1_events },
  clickhouse_session_recording_events: { desc: SessionRecordingEventSchema, file: file_posthog_v1_session_recording_events },
  plugin_log_entries: { desc: PluginLogEntrySchema, file: file_posthog_v1_plugin_log_entries },
  clickhouse_person: { desc: PersonSchema, file: file_posthog_v1_person },
  clickhouse_person_distinct_id: { desc: PersonDistinctIdSchema, file: file_posthog_v1_person_distinct_id },
  clickhouse_groups: { desc: GroupSchema, file: file_posthog_v1_groups },
  clickhouse_app_metrics: { desc: AppMetricSchema, file: file_posthog_v1_app_metrics },
  events_dead_letter_queue: { desc: EventDeadLetterSchema, file: file_posthog_v1_events_dead_letter_queue },
};

/** A binary FileDescriptorSet of the topics' files and their imports (what `buf build -o x.binpb` makes). */
export function descriptorSet(topics: readonly PosthogTopic[]): Buffer {
  const files: DescFile[] = [];
  const add = (file: DescFile): void => {
    if (files.includes(file)) return;
    for (const dependency of file.dependencies) add(dependency);
    files.push(file);
  };
  for (const topic of topics) add(PROTOBUF_TYPES[topic].file);
  return Buffer.from(toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: files.map((f) => f.proto) })));
}

/** The Protobuf message of one generated JSON message (its topic's type). */
export function toProtobuf(message: GeneratedMessage): Buffer {
  const { desc } = PROTOBUF_TYPES[message.topic];
  const json = JSON.parse(message.value.toString('utf8')) as Record<string, unknown>;
  const init: Record<string, unknown> = {};
  for (const field of desc.fields) {
    const value = json[field.name];
    if (value !== undefined && value !== null) init[field.localName] = fieldValue(field, value);
  }
  return Buffer.from(toBinary(desc, create(desc, init as never)));
}

function fieldValue(field: DescField, value: unknown): unknown {
  switch (field.fieldKind) {
    case 'message':
      if (field.message.typeName !== 'google.protobuf.Timestamp') throw new Error(`${field.name}: no conversion to ${field.message.typeName}`);
      return timestamp(value as string);
    case 'enum': {
      const number = field.enum.values.find((v) => v.name === value)?.number;
      if (number === undefined) throw new Error(`${field.name}: ${String(value)} is not a ${field.enum.typeName}`);
      return number;
    }
    case 'list':
      return value;
    case 'scalar':
      return typeof value === 'number' && INT64.has(field.scalar) ? BigInt(value) : value;
    default:
      throw new Error(`${field.name}: no conversion of ${field.fieldKind} fields`);
  }
}

const INT64: ReadonlySet<ScalarType> = new Set([ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64]);

/** `YYYY-MM-DD HH:MM:SS[.fffffffff]` (UTC) as a google.protobuf.Timestamp's fields. */
export function timestamp(text: string): { seconds: bigint; nanos: number } {
  const [date = '', time = ''] = text.split(' ');
  const [y = 0, mo = 1, d = 1] = date.split('-').map(Number);
  const [hms = '', fraction = ''] = time.split('.');
  const [h = 0, mi = 0, s = 0] = hms.split(':').map(Number);
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  if (!Number.isFinite(ms)) throw new Error(`not a timestamp: ${text}`);
  return { seconds: BigInt(ms / 1000), nanos: Number(fraction.padEnd(9, '0').slice(0, 9)) };
}

/** The Confluent wire format of a payload: magic 0, the schema id (4 bytes big-endian), [0] (the file's first message), the payload. */
export function frame(schemaId: number, payload: Uint8Array): Buffer {
  const header = Buffer.from([0, 0, 0, 0, 0, 0]);
  header.writeUInt32BE(schemaId >>> 0, 1);
  return Buffer.concat([header, payload]);
}

/** The message with its value as framed Protobuf; everything else unchanged. */
export function toWireMessage(message: GeneratedMessage, ids: Readonly<Record<string, number>>): GeneratedMessage {
  const id = ids[message.topic];
  if (id === undefined) throw new Error(`no schema id for ${message.topic}`);
  return { ...message, value: frame(id, toProtobuf(message)) };
}

export function* toWireMessages(messages: Iterator<GeneratedMessage>, ids: Readonly<Record<string, number>>): Generator<GeneratedMessage> {
  for (let next = messages.next(); next.done !== true; next = messages.next()) yield toWireMessage(next.value, ids);
}

export interface RegistryAccess {
  readonly url: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

/**
 * Registers each topic's schema as `<subject(topic)>-value` (and the files it imports as their own
 * subjects, named by import path, referenced by version); the schema id of each topic.
 */
export async function registerSchemas(registry: RegistryAccess, topics: readonly PosthogTopic[], subject: (topic: PosthogTopic) => string = (t) => t): Promise<Record<string, number>> {
  const ids: Record<string, number> = {};
  for (const topic of topics) ids[topic] = (await registerFile(registry, PROTOBUF_TYPES[topic].file, `${subject(topic)}-value`)).id;
  return ids;
}

async function registerFile(registry: RegistryAccess, file: DescFile, subject: string): Promise<{ id: number; version: number }> {
  const references: { name: string; subject: string; version: number }[] = [];
  for (const dependency of file.dependencies) {
    const name = `${dependency.name}.proto`;
    if (name.startsWith('google/protobuf/')) continue; // built in: never a reference
    references.push({ name, subject: name, version: (await registerFile(registry, dependency, name)).version });
  }
  const schema = Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)).toString('base64');
  const { id } = (await call(registry, 'POST', `subjects/${encodeURIComponent(subject)}/versions`, { schemaType: 'PROTOBUF', schema, references })) as { id: number };
  const { version } = (await call(registry, 'GET', `subjects/${encodeURIComponent(subject)}/versions/latest`)) as { version: number };
  return { id, version };
}

async function call(registry: RegistryAccess, method: string, path: string, body?: unknown): Promise<unknown> {
  const headers: Record<string, string> = { 'content-type': 'application/vnd.schemaregistry.v1+json' };
  if (registry.username !== undefined) headers.authorization = `Basic ${Buffer.from(`${registry.username}:${registry.password ?? ''}`).toString('base64')}`;
  const response = await fetch(new URL(path, registry.url.endsWith('/') ? registry.url : `${registry.url}/`), {
    method,
    headers,
    signal: AbortSignal.timeout(10_000),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`schema registry: ${method} /${path}: HTTP ${response.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as unknown;
}
