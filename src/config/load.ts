// Owns turning a YAML file (or object) into a validated, secret-resolved, frozen Config. Every
// problem is collected and reported at once, each naming its field; secrets are resolved here and
// wrapped so they never print.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors/inserter-error.ts';
import { errorPolicyIssues } from '../errors/policy-schema.ts';
import { configSchema, type ParsedConfig, type SecretRef } from './schema.ts';
import { hasFixedSchema } from './typed-schema.ts';
import { Secret } from './secret.ts';

type Destination = ParsedConfig['destinations'][number];
export type DestinationConfig = Readonly<Omit<Destination, 'password'> & { password: Secret }>;
export type RouteConfig = Readonly<ParsedConfig['routes'][number] & { name: string }>;
export type DestinationsApiConfig = Readonly<Omit<NonNullable<ParsedConfig['destinationsApi']>, 'token'> & { token: Secret }>;
export type AdminConfig = Readonly<Omit<NonNullable<ParsedConfig['admin']>, 'token'> & { token: Secret }>;
/** A SASL login with its secret resolved; an OAUTHBEARER token given as a file keeps its path (re-read at each login). */
export type KafkaSaslConfig =
  | { mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; username: string; password: Secret }
  | { mechanism: 'OAUTHBEARER'; token: Secret; tokenFile?: string | undefined; extensions?: Readonly<Record<string, string>> | undefined };
export type KafkaConfig = Readonly<Omit<NonNullable<ParsedConfig['kafka']>, 'sasl'> & { sasl?: KafkaSaslConfig }>;
export type PulsarConfig = Readonly<Omit<NonNullable<ParsedConfig['pulsar']>, 'token'> & { token?: Secret | undefined }>;
export type Config = Readonly<
  Omit<ParsedConfig, 'destinations' | 'routes' | 'kafka' | 'pulsar' | 'destinationsApi' | 'admin' | 'schemaRegistry' | 'batch'> & {
    batch: Readonly<{ maxRows: number; maxBytes: number; maxAgeMs: number }>;
    schemaRegistry?: Readonly<Omit<NonNullable<ParsedConfig['schemaRegistry']>, 'password'> & { password?: Secret | undefined }>;
    /** The bus: exactly one of kafka and pulsar is set. */
    kafka?: KafkaConfig | undefined;
    pulsar?: PulsarConfig | undefined;
    destinations: readonly DestinationConfig[];
    destinationsApi?: DestinationsApiConfig;
    admin?: AdminConfig;
    routes: readonly RouteConfig[];
    /** Folder of the config file: relative paths in it resolve from here. */
    baseDir: string;
  }
>;

/** A configuration whose bus is Kafka. */
export type KafkaBusConfig = Config & { readonly kafka: KafkaConfig };

/** The configuration, for what only Kafka has (the `dlq` and `verify` commands read Kafka topics). */
export function kafkaBusConfig(config: Config, what: string): KafkaBusConfig {
  if (config.kafka === undefined) throw new ConfigError([`pulsar: ${what} reads the dead-letter and ledger topics on Kafka; with a Pulsar bus it is not available yet`]);
  return config as KafkaBusConfig;
}

export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError([`cannot read ${path}: ${(cause as Error).message}`], { cause });
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (cause) {
    // The parser's message quotes the lines around the fault, which can hold a password: only its first line (what and where).
    const what = ((cause as Error).message.split('\n')[0] ?? '').replace(/:$/, '');
    throw new ConfigError([`${path} is not valid YAML: ${what}`]);
  }
  return buildConfig(raw, dirname(resolve(path)), env);
}

/**
 * A lane's batch size when the config sets none: 32 MiB, or a sixteenth of the memory budget when
 * that is smaller. A batch's body is a second copy of its rows while it is sent, and a destination
 * sends `concurrency` (4) of them at once: at a sixteenth, the bodies in flight stay within a quarter
 * of the budget. With 32 MiB batches a 128 MiB budget peaked at ~510 MiB RSS in a 2M-event backlog
 * against ~400 with 8 MiB, for ~10 % more ClickHouse CPU (more, smaller parts; docs/benchmarks.md,
 * session 17). From 512 MiB up the default stays 32 MiB.
 */
export function defaultBatchBytes(maxBufferedBytes: number): number {
  return Math.min(32 * 1024 * 1024, Math.max(1, Math.floor(maxBufferedBytes / 16)));
}

export function buildConfig(raw: unknown, baseDir: string, env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => withoutCredentials(`${issue.path.join('.') || '(root)'}: ${issue.message}`)));
  }
  const cfg = parsed.data;
  const issues: string[] = [];
  const secret = (ref: SecretRef, field: string): Secret => resolveSecret(ref, field, baseDir, env, issues);

  const destinations = cfg.destinations.map((d, i) => ({ ...d, password: secret(d.password, `destinations.${i}.password`) }));
  const ids = new Set<string>();
  destinations.forEach((d, i) => {
    if (ids.has(d.id)) issues.push(`destinations.${i}.id: duplicate destination id "${d.id}"`);
    ids.add(d.id);
  });
  const routes = cfg.routes.map((r) => ({ ...r, name: r.name ?? `${r.topic}->${r.table}` }));
  const names = new Set<string>();
  routes.forEach((r, i) => {
    if (names.has(r.name)) issues.push(`routes.${i}.name: duplicate route name "${r.name}"`);
    names.add(r.name);
    if (r.destination !== 'team' && !ids.has(r.destination)) {
      issues.push(`routes.${i}.destination: unknown destination "${r.destination}"`);
    }
  });
  for (const [team, dest] of Object.entries(cfg.teams.map)) {
    if (!ids.has(dest)) issues.push(`teams.map.${team}: unknown destination "${dest}"`);
  }
  if (cfg.teams.unknown.action === 'destination' && !ids.has(cfg.teams.unknown.destination)) {
    issues.push(`teams.unknown.destination: unknown destination "${cfg.teams.unknown.destination}"`);
  }
  issues.push(
    ...errorPolicyIssues(
      cfg.errorPolicy,
      destinations.map((d) => d.id),
      routes.map((r) => r.name),
    ),
  );
  const kafkaTls = cfg.kafka?.tls;
  if (typeof kafkaTls === 'object') {
    const before = issues.length;
    for (const field of ['caFile', 'certFile', 'keyFile'] as const) {
      const file = kafkaTls[field];
      if (file !== undefined) readableFile(file, `kafka.tls.${field}`, baseDir, issues);
    }
    if (issues.length === before) issues.push(...tlsMaterialIssues(kafkaTls, 'kafka.tls', baseDir));
  }
  const sasl = cfg.kafka?.sasl;
  const kafkaSasl: KafkaSaslConfig | undefined =
    sasl === undefined
      ? undefined
      : sasl.mechanism === 'OAUTHBEARER'
        ? { ...sasl, token: secret(sasl.token, 'kafka.sasl.token'), tokenFile: typeof sasl.token === 'object' && 'file' in sasl.token ? resolve(baseDir, sasl.token.file) : undefined }
        : { ...sasl, password: secret(sasl.password, 'kafka.sasl.password') };
  const kafka = cfg.kafka === undefined ? undefined : { ...cfg.kafka, sasl: kafkaSasl };
  const pulsar = cfg.pulsar === undefined ? undefined : { ...cfg.pulsar, token: cfg.pulsar.token === undefined ? undefined : secret(cfg.pulsar.token, 'pulsar.token') };
  const api = cfg.destinationsApi;
  const destinationsApi = api
    ? { ...api, token: secret(api.token, 'destinationsApi.token'), ...(api.tlsDir === undefined ? {} : { tlsDir: readableDir(api.tlsDir, 'destinationsApi.tlsDir', baseDir, issues) }) }
    : undefined;
  const admin = cfg.admin ? { ...cfg.admin, token: secret(cfg.admin.token, 'admin.token') } : undefined;
  const registry = cfg.schemaRegistry;
  const schemaRegistry = registry === undefined ? undefined : { ...registry, password: registry.password === undefined ? undefined : secret(registry.password, 'schemaRegistry.password') };
  routes.forEach((r, i) => {
    if (r.format === 'protobuf' && !hasFixedSchema(r.protobuf) && registry === undefined)
      issues.push(`routes.${i}.protobuf: format protobuf without protobuf.descriptorSet or protobuf.proto reads schema ids: it needs the top-level schemaRegistry`);
    if (r.format === 'protobuf' && r.protobuf?.descriptorSet !== undefined) readableFile(r.protobuf.descriptorSet, `routes.${i}.protobuf.descriptorSet`, baseDir, issues);
    const proto = r.format === 'protobuf' ? r.protobuf?.proto : undefined;
    if (proto !== undefined) {
      const root = readableDir(proto.root, `routes.${i}.protobuf.proto.root`, baseDir, issues);
      (proto.files ?? []).forEach((file, j) => readableFile(file, `routes.${i}.protobuf.proto.files.${j}`, root, issues));
    }
  });
  if (admin !== undefined && !issues.some((i) => i.startsWith('admin.token')) && admin.token.reveal().length < 16) issues.push('admin.token: must be at least 16 characters');
  if (issues.length > 0) throw new ConfigError(issues.map(withoutCredentials));
  const batch = { ...cfg.batch, maxBytes: cfg.batch.maxBytes ?? defaultBatchBytes(cfg.maxBufferedBytes) };
  return deepFreeze({ ...cfg, batch, kafka, pulsar, destinations, destinationsApi, admin, schemaRegistry, routes, baseDir });
}

/** A message quoting a value (an unknown destination, a duplicate id) never carries a URL's `user:password@`. */
function withoutCredentials(issue: string): string {
  return issue.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@"]*@/gi, '$1[credentials removed]@');
}

/** The folder as an absolute path; an issue when it is not a readable folder. */
function readableDir(dir: string, field: string, baseDir: string, issues: string[]): string {
  const path = resolve(baseDir, dir);
  try {
    accessSync(path, constants.R_OK | constants.X_OK);
    if (!statSync(path).isDirectory()) issues.push(`${field}: ${dir} is not a folder`);
  } catch (cause) {
    issues.push(`${field}: cannot read folder ${dir}: ${(cause as Error).message}`);
  }
  return path;
}

function readableFile(file: string, field: string, baseDir: string, issues: string[]): void {
  try {
    accessSync(resolve(baseDir, file), constants.R_OK);
  } catch (cause) {
    issues.push(`${field}: cannot read ${file}: ${(cause as Error).message}`);
  }
}

/** PEM a TLS client can use: a CA file holding certificates, a client key that belongs to its certificate. */
function tlsMaterialIssues(tls: { caFile?: string | undefined; certFile?: string | undefined; keyFile?: string | undefined }, field: string, baseDir: string): string[] {
  const read = (file: string): string => readFileSync(resolve(baseDir, file), 'utf8');
  const out: string[] = [];
  if (tls.caFile !== undefined && !read(tls.caFile).includes('-----BEGIN CERTIFICATE-----')) out.push(`${field}.caFile: ${tls.caFile} holds no PEM certificate`);
  if (tls.certFile !== undefined && tls.keyFile !== undefined) {
    try {
      createSecureContext({ cert: read(tls.certFile), key: read(tls.keyFile) });
    } catch (cause) {
      out.push(`${field}.keyFile: ${tls.keyFile} and ${tls.certFile} are not an unencrypted PEM private key and its certificate (${(cause as Error).message})`);
    }
  }
  return out;
}

function resolveSecret(ref: SecretRef, field: string, baseDir: string, env: NodeJS.ProcessEnv, issues: string[]): Secret {
  if (typeof ref === 'string') return new Secret(ref);
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined) issues.push(`${field}: environment variable ${ref.env} is not set`);
    return new Secret(value ?? '');
  }
  try {
    return new Secret(readFileSync(resolve(baseDir, ref.file), 'utf8').replace(/\r?\n$/, ''));
  } catch (cause) {
    issues.push(`${field}: cannot read secret file ${ref.file}: ${(cause as Error).message}`);
    return new Secret('');
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !(value instanceof Secret) && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
