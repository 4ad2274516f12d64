// Owns the command line: `inserter run --config FILE`, `check-config FILE`, `version`. It wires the
// configured bus (Kafka or Pulsar: bus-kafka.ts, bus-pulsar.ts), the sinks of the destinations and
// the dead-letter writer into the pipeline and handles signals.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { ConfigError } from '../errors/inserter-error.ts';
import { Operations } from '../control/operations.ts';
import { ctl } from './ctl.ts';
import { dlq } from './dlq.ts';
import { verify } from './verify.ts';
import { kafkaBusConfig, loadConfigFile, type Config, type DestinationConfig, type RouteConfig } from '../config/load.ts';
import { decoderFor } from '../decode/types.ts';
import { wasmJsonLoaded } from '../decode/json-wasm.ts';
import { printableUrl } from '../config/schema.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import { exactlyOnceFor } from '../pipeline/table-schemas.ts';
import { createSink } from '../sink/create.ts';
import { createDestinationProvider } from '../route/providers/create.ts';
import { describeKafkaSecurity } from '../source/kafka-connection.ts';
import { checkKafkaBus, openKafkaBus } from './bus-kafka.ts';
import { createLogger } from '../telemetry/logger.ts';
import { Metrics } from '../telemetry/metrics.ts';
import { loadSentry } from '../telemetry/sentry.ts';

const usage = `usage:
  inserter run --config FILE          consume the configured routes and insert them
  inserter check-config FILE          validate a configuration and explain what it does
  inserter version                    print the version
  inserter verify --config FILE [--id-field uuid] [--json]   check delivery end to end: Kafka vs ClickHouse (exit 1: an invariant broke)
  inserter ctl status|pauses|pause|resume --admin URL …   operate through a replica's admin API (docs/operations.md)
  inserter dlq list|inspect|replay|purge --config FILE …   dead letters: list, show, replay exactly once, delete (inserter dlq help)`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'version':
      process.stdout.write(`${version()}\n`);
      return 0;
    case 'check-config':
      return checkConfig(rest);
    case 'run':
      return run(rest);
    case 'verify':
      return verify(rest);
    case 'ctl':
      return ctl(rest);
    case 'dlq':
      return dlq(rest);
    default:
      process.stderr.write(`${usage}\n`);
      return command === undefined || command === 'help' || command === '--help' ? 0 : 2;
  }
}

/** bin/inserter's INSERTER_MEMORY_MODE as the process runs it (the V8 flag it adds). */
function memoryMode(): 'lean' | 'throughput' {
  return process.execArgv.includes('--external-memory-accounted-in-global-limit') ? 'throughput' : 'lean';
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  // What bin/inserter set for the memory mode: V8 flags, and glibc's mmap threshold.
  const settings = process.execArgv.filter((a) => a.startsWith('--max-semi-space-size') || a.startsWith('--external-memory'));
  const mmapThreshold = process.env.MALLOC_MMAP_THRESHOLD_;
  if (mmapThreshold !== undefined) settings.push(`MALLOC_MMAP_THRESHOLD_=${mmapThreshold}`);
  return `inserter ${pkg.version} (node ${process.version}, memory mode ${memoryMode()}${settings.length === 0 ? '' : `: ${settings.join(', ')}`})`;
}

function checkConfig(args: string[]): number {
  const file = args[0];
  if (file === undefined) {
    process.stderr.write('check-config: name a config file\n');
    return 2;
  }
  try {
    const config = loadConfigFile(file);
    // Each route's decoder is built as `run` builds it: a descriptor set that does not load or lacks
    // the message type is a config error here, not at start.
    for (const route of config.routes) decoderFor(route, config);
    process.stdout.write(explain(config));
    return 0;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${file}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

/** One line per destination for check-config: where it is and whether a secret is set, never the secret. */
function describeDestination(d: DestinationConfig): string {
  if (d.kind === 'bigquery') {
    const auth = d.bigquery?.credentialsFile !== undefined ? `key file ${d.bigquery.credentialsFile}` : d.password.reveal() !== '' ? 'access token set' : 'application default credentials';
    return `destination ${d.id}: BigQuery ${printableUrl(d.url)} project ${d.bigquery?.project ?? '?'} dataset ${d.database}${d.bigquery?.location === undefined ? '' : ` in ${d.bigquery.location}`} (${auth})`;
  }
  return `destination ${d.id}: ${printableUrl(d.url)} user ${d.user} database ${d.database} (password ${d.password.reveal() === '' ? 'empty' : 'set'})`;
}

function explain(config: Config): string {
  const lines = [`configuration OK: ${config.routes.length} route(s), ${config.destinations.length} destination(s)`];
  if (config.kafka !== undefined) {
    lines.push(`kafka: ${config.kafka.brokers.join(',')} group ${config.kafka.groupId}`);
    lines.push(`kafka security: ${describeKafkaSecurity(config.kafka)}`);
  }
  if (config.pulsar !== undefined) {
    const p = config.pulsar;
    lines.push(`pulsar: ${printableUrl(p.url)} topics in ${p.tenant}/${p.namespace}, subscription ${p.subscription} (token ${p.token === undefined ? 'none' : 'set'})`);
  }
  for (const d of config.destinations) lines.push(describeDestination(d));
  const api = config.destinationsApi;
  if (api !== undefined) {
    lines.push(`destinations API: ${printableUrl(api.url)} (token set, polled every ${api.pollIntervalMs} ms)`);
    const yamlHosts = [...new Set(config.destinations.map((d) => new URL(d.url).hostname))];
    lines.push(
      `  its destinations are trusted only on: loopback${yamlHosts.length > 0 ? `, the YAML destinations' hosts (${yamlHosts.join(', ')})` : ''}${api.allowedHosts.length > 0 ? `, destinationsApi.allowedHosts (${api.allowedHosts.join(', ')})` : ' (destinationsApi.allowedHosts is empty)'}`,
    );
    lines.push(`  schemes: ${api.allowHttp ? 'https, and plain http anywhere (destinationsApi.allowHttp: true)' : 'https; plain http to loopback only'}`);
    lines.push(`  TLS files they name: ${api.tlsDir === undefined ? 'refused (destinationsApi.tlsDir is not set)' : `only inside ${api.tlsDir}`}; a client certificate needs its key and CA`);
    lines.push('  a destination outside is rejected: the last good one with its id stays, or its teams are held (inserter_destinations_rejected_total)');
  }
  for (const r of config.routes) {
    const dest = r.destination === 'team' ? `by team (${r.teamId.from === 'field' ? `field ${r.teamId.field}` : r.teamId.from})` : r.destination;
    lines.push(
      `route ${r.name}: ${r.topic} → ${r.database ?? '<destination db>'}.${r.table} via ${dest}; dead letters → ${r.deadLetterTopic ?? `${r.topic}.dlq`}${exactlyOnceFor(config, r) ? '' : '; at-least-once'}`,
    );
    lines.push(`  reads ${describeFormat(config, r)}; ${describeEncoding(r.encoding)}`);
  }
  lines.push(`teams: ${Object.keys(config.teams.map).length} mapped; unknown team → ${config.teams.unknown.action}`);
  lines.push(`batches flush at ${config.batch.maxRows} rows, ${config.batch.maxBytes} bytes or ${config.batch.maxAgeMs} ms`);
  return `${lines.join('\n')}\n`;
}

function describeFormat(config: Config, r: RouteConfig): string {
  if (r.format === 'json') return 'JSON objects';
  const type = r.protobuf?.messageType ?? "the schema's first message";
  const fixed = r.protobuf?.descriptorSet ?? (r.protobuf?.proto === undefined ? undefined : `the .proto files under ${r.protobuf.proto.root}`);
  if (fixed !== undefined) return `Protobuf ${type} from ${fixed}${r.protobuf?.wireFormat === 'confluent' ? ' (Confluent wire format)' : ' (raw messages)'}`;
  return `Protobuf (Confluent wire format), ${type}, schemas by id from ${config.schemaRegistry === undefined ? '(no schemaRegistry)' : printableUrl(config.schemaRegistry.url)}`;
}

function describeEncoding(encoding: RouteConfig['encoding']): string {
  if (encoding === 'passthrough') return 'sends rows as JSONEachRow (ClickHouse parses them)';
  if (encoding === 'typed') return 'sends rows as RowBinaryWithDefaults from the live schema (a table with a column type it does not cover goes pass-through, with a warning)';
  return 'sends rows as RowBinaryWithDefaults where the live schema is covered, JSONEachRow elsewhere';
}

async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } });
  if (values.config === undefined) {
    process.stderr.write('run: --config FILE is required\n');
    return 2;
  }
  let config: Config;
  try {
    config = loadConfigFile(values.config);
    // A descriptor set that does not load is a config error before anything starts (as check-config).
    for (const route of config.routes) decoderFor(route, config);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${values.config}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
  const logger = createLogger(config.telemetry.logLevel);
  const kafkaConfig = config.kafka === undefined ? undefined : kafkaBusConfig(config, 'run');
  // The Pulsar modules load only for a Pulsar bus: a Kafka process does not compile them at start.
  const pulsar = kafkaConfig === undefined ? await import('./bus-pulsar.ts') : undefined;
  const stop = kafkaConfig !== undefined ? await checkKafkaBus(kafkaConfig, logger) : await pulsar?.checkPulsarBus(config, logger);
  if (stop !== undefined) return stop;
  // Sentry's SDK (~50 MiB resident) loads only when reports go somewhere.
  if (config.telemetry.sentryDsn !== undefined && config.telemetry.sentryDsn !== '') await loadSentry();
  const metrics = new Metrics({ defaultMetrics: true });
  const bus = kafkaConfig !== undefined ? openKafkaBus(kafkaConfig, logger, metrics) : pulsar?.openPulsarBus(config, logger, metrics);
  if (bus === undefined) return 1; // unreachable: the configuration names exactly one bus
  const { source, deadLetters, ledgers } = bus;
  const provider = createDestinationProvider(config, { logger, registry: metrics.registry });
  try {
    await provider.start(AbortSignal.timeout(120_000));
  } catch (error) {
    logger.fatal({ err: error }, 'no destinations: the destinations source gave no usable mapping');
    await provider.close();
    return 1;
  }
  const pipeline = new Pipeline({ config, source, sinkFactory: (d) => createSink(d, { logger, metrics }), deadLetters, ...(ledgers ? { ledgers } : {}), provider, logger, metrics });

  for (const route of config.routes) metrics.routeExactlyOnce.set({ route: route.name }, exactlyOnceFor(config, route) ? 1 : 0);

  const operations = new Operations({ config, pipeline, logger, metrics, version: version(), bus: { controlLog: bus.controlLog, lag: bus.lag } });

  const server = config.telemetry.metricsListen === undefined ? undefined : startMetricsServer(config.telemetry.metricsListen, metrics);
  const startup = new AbortController();
  let signals = 0;
  const onSignal = (signal: string): void => {
    signals++;
    logger.info({ signal }, signals === 1 ? 'shutting down gracefully' : 'second signal: stopping now');
    startup.abort();
    operations.stopping();
    void (signals === 1 ? pipeline.close(config.shutdownTimeoutMs) : pipeline.destroy());
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  logger.info({ routes: config.routes.map((r) => r.name), memoryMode: memoryMode() }, 'inserter starting');
  if (!wasmJsonLoaded()) logger.warn('JSON is scanned by the slower JavaScript forms: the WebAssembly module (src/decode/wasm/json.wasm) did not load');
  try {
    // Pauses in force are applied before the first record is consumed.
    await operations.start(startup.signal);
    if (startup.signal.aborted) return 0;
    const running = pipeline.start();
    operations.running();
    await running;
  } catch (error) {
    if (startup.signal.aborted && !operations.registry.caughtUp) return 0; // a signal while starting: nothing was consumed
    logger.fatal({ err: error }, 'source failed');
    await pipeline.destroy();
    return 1;
  } finally {
    await pipeline.close(config.shutdownTimeoutMs);
    await operations.close();
    server?.close();
  }
  logger.info('inserter stopped');
  return 0;
}

function startMetricsServer(listen: string, metrics: Metrics): ReturnType<typeof createServer> {
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon) || '0.0.0.0';
  const port = Number(listen.slice(colon + 1));
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
      return;
    }
    res.writeHead(req.url === '/healthz' ? 200 : 404);
    res.end(req.url === '/healthz' ? 'ok\n' : '');
  });
  server.listen(port, host);
  return server;
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
