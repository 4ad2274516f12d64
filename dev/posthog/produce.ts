// Produce generated PostHog traffic to Kafka.
//
//   node dev/posthog/produce.ts --bootstrap HOST:PORT --topic T --count N [--seed S] [--teams K]
//                               [--partitions P] [--rate R] [--all] [--create-topics P] ...
//
// --topic T          one of the eight PostHog topics (see dev/posthog/generator.ts)
// --all              mixed traffic to all eight topics instead; --count is the total, split by MIXED_SHARES
// --count N          messages to produce (default 1000)
// --seed S           generator seed (default 1); same seed and options => same messages
// --teams K          number of teams (default 1000)
// --plugins N        plugin ids in plugin_log_entries / app_metrics (default 30)
// --big-recordings F share of ~1 MB session recordings (default 0.02)
// --base-time ISO    start of the simulated timeline (default: the generator's fixed 2030-01-01)
// --partitions P     spread messages explicitly over partitions 0..P-1 (unkeyed: round-robin,
//                    keyed: murmur2 of the key); default: let the client choose
// --rate R           throttle to R messages/s overall (default: as fast as possible)
// --batch N          messages per send (default 500; large messages go alone, batches stay <= 900 KB)
// --inflight N       concurrent sends (default 4; 1 keeps produce order across batches)
// --compression C    none|gzip|snappy|lz4|zstd (default lz4)
// --acks A           -1 (all), 1 or 0 (default -1)
// --headers          attach Kafka headers (source, team_id)
// --create-topics P  create missing topics with P partitions first (replication factor 1)
// --format F         json (default) or protobuf: the same rows as posthog.v1 messages in the
//                    Confluent wire format (dev/posthog/protobuf.ts), schemas registered first
// --registry URL     the schema registry for --format protobuf (basic auth: SCHEMA_REGISTRY_USER,
//                    SCHEMA_REGISTRY_PASSWORD in the environment)
//
// Progress goes to stderr once a second; a JSON summary goes to stdout at the end.
import { parseArgs } from 'node:util';
import { Admin, Producer, murmur2 } from '@platformatic/kafka';
import type { CompressionAlgorithmValue, MessageToProduce } from '@platformatic/kafka';

import type { GeneratedMessage, PosthogTopic } from './generator.ts';
import { ALL_TOPICS, generate, isPosthogTopic, mixedCounts, mixedTraffic } from './generator.ts';
import { registerSchemas, toWireMessages } from './protobuf.ts';

const COMPRESSIONS: readonly string[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];
const MAX_BATCH_BYTES = 900 * 1024;
const ALONE_BYTES = 256 * 1024;

interface Options {
  bootstrap: string[];
  topics: PosthogTopic[];
  all: boolean;
  count: number;
  seed: number;
  teams: number;
  plugins: number;
  bigRecordingFraction: number;
  baseTime: number | undefined;
  partitions: number | undefined;
  rate: number | undefined;
  batch: number;
  inflight: number;
  compression: CompressionAlgorithmValue;
  acks: number;
  headers: boolean;
  createTopics: number | undefined;
  format: 'json' | 'protobuf';
  registry: string | undefined;
}

function fail(message: string): never {
  process.stderr.write(`produce: ${message}\n`);
  process.exit(2);
}

function num(value: string | undefined, name: string, fallback: number | undefined): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) fail(`--${name} must be a number, got ${value}`);
  return n;
}

function req(value: number | undefined, name: string): number {
  if (value === undefined) fail(`--${name} is required`);
  return value;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      bootstrap: { type: 'string' },
      topic: { type: 'string' },
      all: { type: 'boolean', default: false },
      count: { type: 'string' },
      seed: { type: 'string' },
      teams: { type: 'string' },
      plugins: { type: 'string' },
      'big-recordings': { type: 'string' },
      'base-time': { type: 'string' },
      partitions: { type: 'string' },
      rate: { type: 'string' },
      batch: { type: 'string' },
      inflight: { type: 'string' },
      compression: { type: 'string' },
      acks: { type: 'string' },
      headers: { type: 'boolean', default: false },
      'create-topics': { type: 'string' },
      format: { type: 'string', default: 'json' },
      registry: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stderr.write('usage: node dev/posthog/produce.ts --bootstrap HOST:PORT (--topic T | --all) --count N [options]; see the header of dev/posthog/produce.ts\n');
    process.exit(0);
  }
  if (values.bootstrap === undefined) fail('--bootstrap HOST:PORT is required');
  let topics: PosthogTopic[];
  if (values.all) topics = [...ALL_TOPICS];
  else if (values.topic !== undefined && isPosthogTopic(values.topic)) topics = [values.topic];
  else fail(`--topic must be one of ${ALL_TOPICS.join(', ')} (or use --all), got ${String(values.topic)}`);
  const compression = values.compression ?? 'lz4';
  if (!COMPRESSIONS.includes(compression)) fail(`--compression must be one of ${COMPRESSIONS.join(', ')}`);
  let baseTime: number | undefined;
  if (values['base-time'] !== undefined) {
    baseTime = values['base-time'] === 'now' ? Date.now() : Date.parse(values['base-time']);
    if (!Number.isFinite(baseTime)) fail(`--base-time must be an ISO date or "now", got ${values['base-time']}`);
  }
  const partitions = num(values.partitions, 'partitions', undefined);
  const createTopics = num(values['create-topics'], 'create-topics', undefined);
  const rate = num(values.rate, 'rate', undefined);
  if (values.format !== 'json' && values.format !== 'protobuf') fail(`--format must be json or protobuf, got ${values.format}`);
  if (values.format === 'protobuf' && values.registry === undefined) fail('--format protobuf needs --registry URL');
  return {
    bootstrap: values.bootstrap
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
    topics,
    all: values.all,
    count: Math.floor(req(num(values.count, 'count', 1000), 'count')),
    seed: req(num(values.seed, 'seed', 1), 'seed'),
    teams: Math.floor(req(num(values.teams, 'teams', 1000), 'teams')),
    plugins: Math.floor(req(num(values.plugins, 'plugins', 30), 'plugins')),
    bigRecordingFraction: req(num(values['big-recordings'], 'big-recordings', 0.02), 'big-recordings'),
    baseTime,
    partitions: partitions === undefined ? undefined : Math.max(1, Math.floor(partitions)),
    rate: rate === undefined || rate <= 0 ? undefined : rate,
    batch: Math.max(1, Math.floor(req(num(values.batch, 'batch', 500), 'batch'))),
    inflight: Math.max(1, Math.floor(req(num(values.inflight, 'inflight', 4), 'inflight'))),
    compression: compression as CompressionAlgorithmValue,
    acks: req(num(values.acks, 'acks', -1), 'acks'),
    headers: values.headers,
    createTopics: createTopics === undefined ? undefined : Math.max(1, Math.floor(createTopics)),
    format: values.format,
    registry: values.registry,
  };
}

async function ensureTopics(options: Options, partitions: number): Promise<string[]> {
  const admin = new Admin({ clientId: 'posthog-produce-admin', bootstrapBrokers: options.bootstrap });
  try {
    const existing = new Set(await admin.listTopics());
    const missing = options.topics.filter((t) => !existing.has(t));
    if (missing.length > 0) await admin.createTopics({ topics: missing, partitions, replicas: 1 });
    return missing;
  } finally {
    await admin.close();
  }
}

function messages(options: Options): Iterator<GeneratedMessage> {
  const common = {
    seed: options.seed,
    teams: options.teams,
    plugins: options.plugins,
    bigRecordingFraction: options.bigRecordingFraction,
    headers: options.headers,
    ...(options.baseTime === undefined ? {} : { baseTime: options.baseTime }),
  };
  if (options.all) return mixedTraffic({ ...common, perTopicCounts: mixedCounts(options.count) });
  const topic = options.topics[0];
  if (topic === undefined) fail('no topic');
  return generate(topic, { ...common, count: options.count });
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return typeof error === 'string' ? error : JSON.stringify(error);
  const first: unknown = error instanceof AggregateError ? (error.errors as unknown[])[0] : undefined;
  const inner = first ?? error.cause;
  const cause = inner === undefined ? '' : ` (cause: ${describeError(inner)})`;
  return `${error.name}: ${error.message}${cause}`;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface TopicStats {
  messages: number;
  bytes: number;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  let created: string[] = [];
  if (options.createTopics !== undefined) created = await ensureTopics(options, options.createTopics);

  const producer = new Producer({
    clientId: 'posthog-produce',
    bootstrapBrokers: options.bootstrap,
    acks: options.acks,
    compression: options.compression,
    // Retry transient broker errors rather than dying mid-run.
    retries: 10,
    retryDelay: 250,
  });

  const registry =
    options.format !== 'protobuf' || options.registry === undefined ? undefined : { url: options.registry, username: process.env.SCHEMA_REGISTRY_USER, password: process.env.SCHEMA_REGISTRY_PASSWORD };
  const source = registry === undefined ? messages(options) : toWireMessages(messages(options), await registerSchemas(registry, options.topics));
  const perTopic = new Map<string, TopicStats>();
  const roundRobin = new Map<string, number>();
  let sent = 0;
  let bytes = 0;
  let queued = 0;
  let sends = 0;
  let firstError: unknown;
  const inflight = new Set<Promise<void>>();
  const start = performance.now();
  let lastReport = start;
  let lastSent = 0;
  let lastBytes = 0;

  const report = (final: boolean): void => {
    const now = performance.now();
    const dt = (now - lastReport) / 1000;
    if (!final && dt < 1) return;
    const elapsed = (now - start) / 1000;
    process.stderr.write(
      `produce: ${sent}/${options.all ? options.count : options.count} sent, ` +
        `${((sent - lastSent) / Math.max(dt, 1e-9)).toFixed(0)} msg/s, ` +
        `${((bytes - lastBytes) / Math.max(dt, 1e-9) / 1e6).toFixed(1)} MB/s, ${elapsed.toFixed(1)} s\n`,
    );
    lastReport = now;
    lastSent = sent;
    lastBytes = bytes;
  };

  const partitionFor = (m: GeneratedMessage): number | undefined => {
    const p = options.partitions;
    if (p === undefined) return undefined;
    if (m.key !== null) return (murmur2(m.key) >>> 0) % p;
    const next = roundRobin.get(m.topic) ?? 0;
    roundRobin.set(m.topic, next + 1);
    return next % p;
  };

  const send = (batch: GeneratedMessage[]): Promise<void> => {
    const out: MessageToProduce[] = batch.map((m) => {
      const record: MessageToProduce = { topic: m.topic, value: m.value };
      if (m.key !== null) record.key = m.key;
      if (m.headers !== undefined) record.headers = m.headers;
      const partition = partitionFor(m);
      if (partition !== undefined) record.partition = partition;
      return record;
    });
    let batchBytes = 0;
    for (const m of batch) batchBytes += m.value.length + (m.key?.length ?? 0);
    sends++;
    const p = producer
      .send({ messages: out })
      .then(() => {
        sent += batch.length;
        bytes += batchBytes;
        for (const m of batch) {
          const stats = perTopic.get(m.topic) ?? { messages: 0, bytes: 0 };
          stats.messages++;
          stats.bytes += m.value.length;
          perTopic.set(m.topic, stats);
        }
      })
      .catch((error: unknown) => {
        firstError ??= error;
      })
      .finally(() => {
        inflight.delete(p);
      });
    inflight.add(p);
    return p;
  };

  const dispatch = async (batch: GeneratedMessage[]): Promise<void> => {
    while (inflight.size >= options.inflight) await Promise.race(inflight);
    if (firstError !== undefined) return;
    if (options.rate !== undefined) {
      // Hold each batch until the schedule says its first message is due.
      const due = start + (queued / options.rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
    }
    queued += batch.length;
    void send(batch);
    report(false);
  };

  // With a rate, keep batches to about a tenth of a second of traffic so the pace stays smooth.
  const batchLimit = options.rate === undefined ? options.batch : Math.max(1, Math.min(options.batch, Math.floor(options.rate / 10)));
  let batch: GeneratedMessage[] = [];
  let batchBytes = 0;
  for (let next = source.next(); !next.done; next = source.next()) {
    const m = next.value;
    if (firstError !== undefined) break;
    if (m.value.length >= ALONE_BYTES) {
      await dispatch([m]);
      continue;
    }
    if (batch.length > 0 && batchBytes + m.value.length > MAX_BATCH_BYTES) {
      await dispatch(batch);
      batch = [];
      batchBytes = 0;
    }
    batch.push(m);
    batchBytes += m.value.length;
    if (batch.length >= batchLimit) {
      await dispatch(batch);
      batch = [];
      batchBytes = 0;
    }
  }
  if (batch.length > 0 && firstError === undefined) await dispatch(batch);
  await Promise.allSettled([...inflight]);
  await producer.close();
  report(true);

  const seconds = (performance.now() - start) / 1000;
  const summary = {
    ok: firstError === undefined,
    error: firstError === undefined ? undefined : describeError(firstError),
    bootstrap: options.bootstrap.join(','),
    topics: options.topics,
    createdTopics: created,
    seed: options.seed,
    teams: options.teams,
    requested: options.count,
    messages: sent,
    bytes,
    sends,
    seconds: Number(seconds.toFixed(3)),
    messagesPerSecond: Math.round(sent / seconds),
    megabytesPerSecond: Number((bytes / seconds / 1e6).toFixed(2)),
    compression: options.compression,
    acks: options.acks,
    perTopic: Object.fromEntries(perTopic),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (firstError !== undefined) process.exitCode = 1;
}

await main();
