// Owns the one configuration schema. Every option is validated here, up front, with all problems
// reported at once naming the field; the result is deeply frozen by load.ts.
import { z } from 'zod';
import { encodingSchema, protobufRouteSchema, schemaRegistrySchema } from './typed-schema.ts';
import { errorPolicySchema } from '../errors/policy-schema.ts';

/** A secret may be written inline (discouraged), or read from an environment variable or a file. */
export const secretSchema = z.union([z.string(), z.object({ env: z.string().min(1) }).strict(), z.object({ file: z.string().min(1) }).strict()]);

/**
 * An http(s) URL without `user:password@`: credentials go in their own (secret) fields, never in a
 * URL that logs, metrics and `check-config` may print. Messages name the field, never the value.
 */
export const httpUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
  .refine((url) => !URL.canParse(url) || (new URL(url).username === '' && new URL(url).password === ''), 'must not carry credentials (user:password@): give them in their own secret fields');

/** The URL as it may be printed: any user or password cut out (belt and braces, validation refuses them). */
export function printableUrl(url: string): string {
  if (!URL.canParse(url)) return '<invalid URL>';
  const parsed = new URL(url);
  if (parsed.username === '' && parsed.password === '') return url;
  parsed.username = '';
  parsed.password = '';
  return parsed.toString();
}

export interface DestinationTlsFiles {
  readonly caFile?: string | undefined;
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
}

/**
 * What is wrong with a destination's TLS files, by field: a client certificate and its key come
 * together, and only with the CA that verifies the server (the ClickHouse client takes mTLS only so;
 * without a CA they would be silently ignored).
 */
export function destinationTlsIssues(tls: DestinationTlsFiles): { field: 'caFile' | 'certFile' | 'keyFile'; message: string }[] {
  const out: { field: 'caFile' | 'certFile' | 'keyFile'; message: string }[] = [];
  if (tls.certFile !== undefined && tls.keyFile === undefined) out.push({ field: 'keyFile', message: 'a client certificate (certFile) needs its private key (keyFile)' });
  if (tls.keyFile !== undefined && tls.certFile === undefined) out.push({ field: 'certFile', message: 'a private key (keyFile) needs its client certificate (certFile)' });
  if ((tls.certFile !== undefined || tls.keyFile !== undefined) && tls.caFile === undefined)
    out.push({ field: 'caFile', message: 'a client certificate (certFile, keyFile) needs the CA that verifies the server (caFile); it is not ignored' });
  return out;
}

const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain identifier (letters, digits, _)');
/** Kafka's rule for a topic name: 1 to 249 of letters, digits, '.', '_' and '-', and not '.' or '..'. */
const kafkaTopicName = z
  .string()
  .min(1)
  .max(249, 'a Kafka topic name has at most 249 characters')
  .regex(/^[A-Za-z0-9._-]+$/, "must be a Kafka topic name (letters, digits, '.', '_', '-')")
  .refine((name) => name !== '.' && name !== '..', "must be a Kafka topic name, not '.' or '..'");

/** Where a `kind: bigquery` destination loads: the project its load jobs run in, and how it signs in. */
export const bigQueryDestinationSchema = z
  .object({
    project: z
      .string()
      .min(1)
      .max(63)
      .regex(/^[a-z][a-z0-9.:-]*$/, 'must be a Google Cloud project id'),
    /** The datasets' location (US, EU, a region): where load jobs run and are looked up; unset: each dataset's, read by datasets.get. */
    location: z.string().min(1).optional(),
    /**
     * A service-account key file. Unset: the destination's `password` is the OAuth access token
     * when set (an emulator, a token minted elsewhere), else Application Default Credentials.
     */
    credentialsFile: z.string().min(1).optional(),
  })
  .strict();

export const destinationSchema = z
  .object({
    id: z.string().min(1),
    /**
     * The warehouse: `clickhouse` (the default), or `bigquery` (`url` is the BigQuery API's root,
     * `database` the dataset; sink/bigquery/). Each kind has its own sink adapter.
     */
    kind: z.enum(['clickhouse', 'bigquery']).default('clickhouse'),
    /** With `kind: bigquery`. */
    bigquery: bigQueryDestinationSchema.optional(),
    url: httpUrl,
    user: z.string().default('default'),
    password: secretSchema.default(''),
    database: identifier.default('default'),
    tls: z.object({ caFile: z.string().optional(), certFile: z.string().optional(), keyFile: z.string().optional() }).strict().optional(),
    /** Bytes of rows held in memory for this destination (open batches plus inserts in flight, and the bodies being sent). */
    maxBufferedBytes: z
      .number()
      .int()
      .positive()
      .default(256 * 1024 * 1024),
    /** Inserts in flight at once to this destination. */
    concurrency: z.number().int().min(1).max(64).default(4),
    requestTimeoutMs: z.number().int().positive().default(120_000),
    /**
     * A request on the wire for longer than this makes the destination stuck, like a failed one: it
     * is parked when it holds more than its budget or the shared budget is full (delivery.md §9).
     */
    stalledAfterMs: z.number().int().positive().default(30_000),
    compression: z.enum(['none', 'gzip', 'zstd']).default('zstd'),
    /**
     * The ClickHouse cluster whose replicas answer at `url` behind a load balancer: a table's
     * definition version is then read from every replica (clusterAllReplicas), so a replica lagging
     * behind an ALTER cannot make a retry's refusal look like the first attempt's (docs/design/
     * delivery.md §11). Unset: ClickHouse Cloud's `default` for its Shared engines, else one server.
     */
    cluster: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only')
      .optional(),
    /**
     * A destination parked (down, over its budget) for longer than this has its rows dead-lettered
     * (class destination_down) instead of waiting in Kafka, so they survive the topic's retention;
     * replay them with `inserter dlq replay --to destination`. Unset: they wait in Kafka (alerted).
     */
    deadLetterAfterParkedMs: z.number().int().positive().optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    for (const issue of d.tls === undefined ? [] : destinationTlsIssues(d.tls)) ctx.addIssue({ code: 'custom', path: ['tls', issue.field], message: issue.message });
    if (d.kind === 'bigquery' && d.bigquery === undefined) ctx.addIssue({ code: 'custom', path: ['bigquery'], message: 'a bigquery destination needs bigquery.project' });
    if (d.kind !== 'bigquery' && d.bigquery !== undefined) ctx.addIssue({ code: 'custom', path: ['bigquery'], message: 'only a destination of kind bigquery takes bigquery settings' });
  });

const teamIdSchema = z.discriminatedUnion('from', [
  z.object({ from: z.literal('field'), field: z.string().min(1).default('team_id') }).strict(),
  z.object({ from: z.literal('header'), header: z.string().min(1) }).strict(),
  z.object({ from: z.literal('key') }).strict(),
]);

export const routeSchema = z
  .object({
    /** A stable name for metrics, logs and pause scopes; defaults to `topic->table`. */
    name: z.string().min(1).optional(),
    topic: z.string().min(1),
    table: identifier,
    /** Overrides the destination's database. */
    database: identifier.optional(),
    format: z.enum(['json', 'protobuf']).default('json'),
    /** With `format: protobuf`: the message type and where its descriptor comes from. */
    protobuf: protobufRouteSchema.optional(),
    /** How rows are encoded for the warehouse (config/typed-schema.ts). */
    encoding: encodingSchema.default('passthrough'),
    teamId: teamIdSchema.default({ from: 'field', field: 'team_id' }),
    /** `team`: each row goes to the destination mapped for its team; otherwise a fixed destination id. */
    destination: z.string().min(1).default('team'),
    /** Default `<topic>.dlq`. */
    deadLetterTopic: kafkaTopicName.optional(),
    createTable: z
      .object({
        enabled: z.boolean().default(true),
        /** A DDL file with `{database}` and `{table}` placeholders; without it a default table is made. */
        ddlFile: z.string().min(1).optional(),
      })
      .strict()
      .default({ enabled: true }),
    /**
     * With `exactlyOnce.enabled`, a table that cannot deduplicate inserts by token is refused (class
     * no_deduplication). `false` accepts it: the route is then at-least-once (a replay may duplicate).
     */
    exactlyOnce: z.boolean().default(true),
  })
  .strict();

const pulsarName = z.string().regex(/^[A-Za-z0-9_.=:%-]+$/, 'must be a Pulsar name (letters, digits, _ . = : % -)');

/** Apache Pulsar as the bus: its web service (admin and WebSocket APIs), where the topics are, who reads. */
export const pulsarSchema = z
  .object({
    /** The broker's web service, e.g. http://pulsar:8080 (the WebSocket API must be enabled). */
    url: httpUrl,
    tenant: pulsarName.default('public'),
    namespace: pulsarName.default('default'),
    /** The subscription all replicas share (Pulsar's consumer group); names the ledger and control topics too. */
    subscription: pulsarName.default('inserter'),
    /** A JWT for the broker's token authentication; none: no authentication. */
    token: secretSchema.optional(),
    /** Messages the broker may send ahead per partition (the WebSocket API allows 1–1000). */
    receiverQueueSize: z.number().int().min(1).max(1000).default(1000),
    /** Creates missing dead-letter topics (non-partitioned). */
    createDeadLetterTopics: z.boolean().default(true),
  })
  .strict();

export const configSchema = z
  .object({
    kafka: z
      .object({
        brokers: z.array(z.string().regex(/^[^:\s]+:\d+$/, 'must be host:port')).min(1),
        clientId: z.string().default('inserter'),
        groupId: z.string().min(1).default('inserter'),
        /**
         * SASL login: a user and password (PLAIN, SCRAM-SHA-256/512), or an OAuth bearer token
         * (OAUTHBEARER; `{file: path}` is re-read at every (re)authentication, so a sidecar can refresh it).
         */
        sasl: z
          .discriminatedUnion('mechanism', [
            z.object({ mechanism: z.enum(['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']), username: z.string().min(1), password: secretSchema }).strict(),
            z.object({ mechanism: z.literal('OAUTHBEARER'), token: secretSchema, extensions: z.record(z.string(), z.string()).optional() }).strict(),
          ])
          .optional(),
        /**
         * `true`: TLS trusting the system CAs (Confluent Cloud, MSK); an object: a private CA, a client
         * certificate and key for mTLS (Aiven), the name to expect on the broker's certificate.
         * Paths are relative to the config file and must exist.
         */
        tls: z
          .union([
            z.boolean(),
            z
              .object({ caFile: z.string().min(1).optional(), certFile: z.string().min(1).optional(), keyFile: z.string().min(1).optional(), serverName: z.string().min(1).optional() })
              .strict()
              .superRefine((tls, ctx) => {
                if (tls.certFile !== undefined && tls.keyFile === undefined)
                  ctx.addIssue({ code: 'custom', path: ['keyFile'], message: 'a client certificate (certFile) needs its private key (keyFile)' });
                if (tls.keyFile !== undefined && tls.certFile === undefined)
                  ctx.addIssue({ code: 'custom', path: ['certFile'], message: 'a private key (keyFile) needs its client certificate (certFile)' });
              }),
          ])
          .default(false),
        /**
         * Bytes one fetch may return (the consumer reads ahead about one fetch and its decompressed
         * batches, outside maxBufferedBytes): 8 MiB cost no CPU and ~100 MiB less peak RSS than 32 MiB
         * (docs/benchmarks.md). A record batch larger than this is still returned whole.
         */
        fetchMaxBytes: z
          .number()
          .int()
          .positive()
          .default(8 * 1024 * 1024),
        fetchMaxWaitMs: z.number().int().positive().default(500),
        /**
         * How records are read: `fetch` (Fetch requests of our own, one loop per leader broker, no
         * per-message objects; docs/design/kafka-fetch.md) or `stream` (the Kafka client's message
         * stream, as before). Unset: `fetch` with the classic group protocol, `stream` with `consumer`,
         * which the fetch path does not support.
         */
        readPath: z.enum(['fetch', 'stream']).optional(),
        sessionTimeoutMs: z.number().int().positive().default(30_000),
        /**
         * `classic` (eager rebalances, every member rejoins) or `consumer` (KIP-848: the broker assigns
         * incrementally; a member's partitions move without stopping the others).
         */
        groupProtocol: z.enum(['classic', 'consumer']).default('classic'),
        /** How long a rebalance waits for members; a member killed mid-rebalance holds the group this long. */
        rebalanceTimeoutMs: z.number().int().positive().default(60_000),
        /** Creates missing dead-letter topics with this many partitions (0 disables). */
        createDeadLetterTopics: z.number().int().min(0).default(1),
      })
      .strict()
      .superRefine((k, ctx) => {
        if (k.readPath === 'fetch' && k.groupProtocol === 'consumer')
          ctx.addIssue({ code: 'custom', path: ['readPath'], message: 'fetch supports the classic group protocol only: use stream with groupProtocol consumer' });
      })
      .optional(),
    /** The bus when it is Apache Pulsar instead of Kafka (docs/design/pulsar.md); exactly one of the two. */
    pulsar: pulsarSchema.optional(),
    destinations: z.array(destinationSchema).default([]),
    /** Team → destination mapping served by an HTTP API (docs/api/destinations.md); none: the YAML only. */
    destinationsApi: z
      .object({
        /** Base URL: `<url>/v1/destinations` and `<url>/v1/teams/{id}` are requested. */
        url: httpUrl,
        /** Bearer token for the API. */
        token: secretSchema,
        pollIntervalMs: z.number().int().positive().default(30_000),
        timeoutMs: z.number().int().positive().default(5_000),
        teamCacheTtlMs: z.number().int().positive().default(300_000),
        negativeCacheTtlMs: z.number().int().positive().default(30_000),
        /**
         * Hosts a destination served by the API may point at, besides loopback and the hosts of the
         * YAML destinations (always allowed): exact names or IPs, or `*.domain` for any name below
         * it. Empty (default): only those. A destination outside is rejected (docs/operations.md).
         */
        allowedHosts: z.array(z.string().regex(/^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$|^\[[0-9A-Fa-f:.]+\]$/, 'must be a host, an IP or *.domain (no scheme, port or path)')).default([]),
        /** Plain HTTP to API destinations that are not loopback; default: HTTPS only. */
        allowHttp: z.boolean().default(false),
        /** Folder TLS files named by the API must be in (relative to the config file); none: the API may name none. */
        tlsDir: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    teams: z
      .object({
        /** Static team → destination id map (the HTTP provider has its own issue). */
        map: z.record(z.string().regex(/^\d+$/, 'team ids are integers'), z.string()).default({}),
        /** What to do with a row whose team has no destination: never guess. */
        unknown: z
          .discriminatedUnion('action', [
            z.object({ action: z.literal('hold') }).strict(),
            z.object({ action: z.literal('deadLetter') }).strict(),
            z.object({ action: z.literal('destination'), destination: z.string().min(1) }).strict(),
          ])
          .default({ action: 'hold' }),
      })
      .strict()
      .default({ map: {}, unknown: { action: 'hold' } }),
    routes: z.array(routeSchema).min(1),
    /** Where `format: protobuf` routes fetch schemas named by id in the Confluent wire format. */
    schemaRegistry: schemaRegistrySchema.optional(),
    /**
     * Every insert is a part ClickHouse writes and merges, a ledger transaction on the broker and an
     * HTTP request: fewer, larger batches cost ClickHouse and the broker less. In a backlog the age
     * is what ends a lane's batch (at 1 s, 6 partitions at ~30k rows/s made ~5k-row inserts); 2 s and
     * 32 MiB halved the inserts, cut ClickHouse CPU including merges by ~9 % and at a steady rate by
     * ~16 %, for ~0.6 s more p50 latency and ~90 MiB more peak RSS (docs/benchmarks.md, Session 5).
     */
    batch: z
      .object({
        maxRows: z.number().int().positive().default(100_000),
        /**
         * Per lane (partition × route × destination); the memory budget (maxBufferedBytes) bounds the
         * sum. Unset: 32 MiB or a sixteenth of maxBufferedBytes, whichever is smaller (load.ts,
         * defaultBatchBytes).
         */
        maxBytes: z.number().int().positive().optional(),
        maxAgeMs: z.number().int().positive().default(2_000),
      })
      .strict()
      .default({ maxRows: 100_000, maxAgeMs: 2_000 }),
    /** Messages larger than this are dead-lettered as oversized. */
    maxMessageBytes: z
      .number()
      .int()
      .positive()
      .default(4 * 1024 * 1024),
    /**
     * Bytes of consumed rows held in memory across all destinations, plus the bodies of the inserts
     * being sent (a second copy of their rows); the source waits above it.
     */
    maxBufferedBytes: z
      .number()
      .int()
      .positive()
      .default(256 * 1024 * 1024),
    /**
     * How often positions are committed. With exactly-once on, every ledger write (each batch's
     * intent) carries its partition's position, and the interval writes only the partitions no
     * write carried one for in the last half interval (docs/design/delivery.md §4).
     */
    commitIntervalMs: z.number().int().positive().default(5_000),
    exactlyOnce: z
      .object({
        /** Record each batch's intent durably before inserting it (docs/design/delivery.md). */
        enabled: z.boolean().default(true),
        /** Compacted topic holding the ledgers; default `<groupId>.inserter-ledger`. */
        ledgerTopic: z.string().min(1).optional(),
      })
      .strict()
      .default({ enabled: true }),
    schemaRefreshMs: z.number().int().positive().default(30_000),
    /** Per error class overrides of the built-in error policy (docs/errors.md). */
    errorPolicy: errorPolicySchema,
    retry: z
      .object({
        baseMs: z.number().int().positive().default(200),
        factor: z.number().min(1).default(2),
        capMs: z.number().int().positive().default(30_000),
      })
      .strict()
      .default({ baseMs: 200, factor: 2, capMs: 30_000 }),
    /** The admin HTTP API: status, pauses, metrics and probes (docs/operations.md); none: no admin listener. */
    admin: z
      .object({
        listen: z.string().regex(/^[^:\s]*:\d+$/, 'must be host:port (an empty host listens on all interfaces)'),
        /** Bearer token every mutating call must present. */
        token: secretSchema,
      })
      .strict()
      .optional(),
    /** Cluster-wide pauses: the compacted control topic every replica follows (docs/operations.md). */
    control: z
      .object({
        /** Default `<groupId>.inserter-control`. */
        topic: z.string().min(1).optional(),
        heartbeatMs: z.number().int().positive().default(500),
        /** A replica silent for longer is not waited for when confirming a pause. */
        replicaTimeoutMs: z.number().int().positive().default(5_000),
        /** A replica silent for longer is forgotten and its heartbeat tombstoned; default max(60 s, 12 × replicaTimeoutMs). */
        replicaExpireMs: z.number().int().positive().optional(),
      })
      .strict()
      .default({ heartbeatMs: 500, replicaTimeoutMs: 5_000 }),
    /** On SIGTERM: how long inserts in flight may finish before they are abandoned (re-read after restart). */
    shutdownTimeoutMs: z.number().int().positive().default(30_000),
    telemetry: z
      .object({
        logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
        metricsListen: z
          .string()
          .regex(/^[^:\s]*:\d+$/)
          .optional(),
        /** Sentry DSN for error reports (src/telemetry/sentry.ts); none: no reports. */
        sentryDsn: z.url({ protocol: /^https?$/, error: 'must be a Sentry DSN URL (https://KEY@HOST/PROJECT)' }).optional(),
      })
      .strict()
      .default({ logLevel: 'info' }),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.kafka === undefined) === (c.pulsar === undefined)) ctx.addIssue({ code: 'custom', path: c.kafka === undefined ? ['kafka'] : ['pulsar'], message: 'give exactly one bus: kafka or pulsar' });
  });

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type SecretRef = z.output<typeof secretSchema>;
