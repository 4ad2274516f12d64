// Owns `inserter dlq list|inspect|replay|purge`: the flags, reading the config's dead-letter topics
// and handing the selected dead letters to src/deadletter/*. Exit codes: 0 done, 1 some dead letters
// failed again on replay, 2 bad arguments or config, 3 Kafka or a destination could not be used.
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { kafkaBusConfig, loadConfigFile, type DestinationConfig, type KafkaBusConfig, type RouteConfig } from '../config/load.ts';
import { decodeJsonRecord } from '../decode/json.ts';
import { decoderFor, type Decoder } from '../decode/types.ts';
import { DlqUsageError } from '../deadletter/dlq-errors.ts';
import { deadLetterTopics, filterOptions, parseFilter, select, type FilterFlags } from '../deadletter/filter.ts';
import { inspectJson, inspectText, listJson, listLine } from '../deadletter/format.ts';
import { purge } from '../source/kafka-dlq-purge.ts';
import { parseDeadLetter, type DeadLetter } from '../deadletter/record.ts';
import { replayToDestination } from '../deadletter/replay-destination.ts';
import { ReplayLedger } from '../source/kafka-dlq-replay-ledger.ts';
import { replayToOriginal } from '../deadletter/replay-original.ts';
import { formatReplayReport, type ReplayReport } from '../deadletter/replay-report.ts';
import { readTopic, topicExists, type KafkaAccess } from '../source/kafka-dlq-reader.ts';
import { kafkaConnectionFor, kafkaSecurityFailure } from '../source/kafka-connection.ts';
import { ConfigError, InserterError } from '../errors/inserter-error.ts';
import { createDestinationProvider } from '../route/providers/create.ts';
import { createSink } from '../sink/create.ts';
import { createLogger } from '../telemetry/logger.ts';

const FILTERS = '[--route NAME | --topic DLQ_TOPIC] [--class C[,C]] [--team N] [--table db.t] [--since ISO] [--until ISO] [--limit N]';
export const dlqUsage = `  inserter dlq list --config FILE ${FILTERS} [--json]
  inserter dlq inspect --config FILE --topic T --partition P --offset O [--json]
  inserter dlq replay --config FILE ${FILTERS} --to original|destination [--dry-run] [--include-may-have-landed] [--json]
  inserter dlq purge --config FILE --topic T --partition P --before-offset O
      dead letters of the config's routes (docs/errors.md, "Dead-letter queue"). replay is exactly once:
      each dead letter replayed is recorded in <groupId>.inserter-dlq-replays and never replayed again.
      --to original re-produces it (original key, value, headers; x-inserter-replayed-from) to its
      topic/partition in one Kafka transaction with its ledger entry; --to destination inserts it into
      its table under a token recorded before the insert (a crashed replay is finished by the next one,
      within ClickHouse's deduplication window). Rows rejected again stay in the DLQ (exit 1).
      Letters marked x-inserter-may-have-landed (refused after a schema change while an earlier
      insert of them may have landed) are skipped unless --include-may-have-landed: check the table first.`;

const common = { config: { type: 'string', short: 'c' }, json: { type: 'boolean', default: false }, 'timeout-ms': { type: 'string', default: '60000' } } as const;

export async function dlq(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  try {
    switch (sub) {
      case 'list':
        return await list(rest);
      case 'inspect':
        return await inspect(rest);
      case 'replay':
        return await replay(rest);
      case 'purge':
        return await purgeCommand(rest);
      default:
        process.stderr.write(`usage:\n${dlqUsage}\n`);
        return sub === undefined || sub === 'help' || sub === '--help' ? 0 : 2;
    }
  } catch (error) {
    if (error instanceof DlqUsageError || error instanceof ConfigError || (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`dlq ${sub}: ${error.message}\n${dlqUsage}\n`);
      return 2;
    }
    const security = kafkaSecurityFailure(error);
    if (security !== undefined) {
      process.stderr.write(`dlq ${sub}: ${security.message} [${security.code}]\n`);
      return 3;
    }
    const code = error instanceof InserterError ? ` [${error.code}]` : '';
    const cause = error instanceof Error && error.cause instanceof Error ? `\n  cause: ${describeCause(error.cause)}` : '';
    process.stderr.write(`dlq ${sub}: ${error instanceof Error ? error.message : String(error)}${code}${cause}\n`);
    return 3;
  }
}

interface Common {
  config: KafkaBusConfig;
  kafka: KafkaAccess;
  json: boolean;
  timeoutMs: number;
}

function commonOf(values: { config?: string | undefined; json?: boolean | undefined; 'timeout-ms'?: string | undefined }): Common {
  if (values.config === undefined) throw new DlqUsageError('--config FILE is required');
  const timeoutMs = Number(values['timeout-ms']);
  if (!(timeoutMs > 0)) throw new DlqUsageError('--timeout-ms must be a positive number');
  const config = kafkaBusConfig(loadConfigFile(values.config), 'the dlq command');
  return { config, kafka: { brokers: config.kafka.brokers, connection: kafkaConnectionFor(config), clientId: config.kafka.clientId }, json: values.json === true, timeoutMs };
}

/** Every dead letter of the topics the filter means, in topic/partition/offset order. */
async function readDeadLetters(c: Common, flags: FilterFlags): Promise<{ all: DeadLetter[]; selected: DeadLetter[] }> {
  const filter = parseFilter(flags);
  const all: DeadLetter[] = [];
  for (const topic of deadLetterTopics(c.config, filter)) {
    if (!(await topicExists(c.kafka, topic))) continue; // nothing was dead-lettered there yet
    const letters: DeadLetter[] = [];
    await readTopic(c.kafka, topic, { timeoutMs: c.timeoutMs }, (r) => letters.push(parseDeadLetter(r)));
    letters.sort((a, b) => a.raw.partition - b.raw.partition || (a.raw.offset < b.raw.offset ? -1 : a.raw.offset > b.raw.offset ? 1 : 0));
    all.push(...letters);
  }
  return { all, selected: select(filter, all) };
}

async function list(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...common, ...filterOptions }, strict: true });
  const c = commonOf(values);
  const { selected } = await readDeadLetters(c, values);
  for (const l of selected) process.stdout.write(`${c.json ? listJson(l) : listLine(l)}\n`);
  return 0;
}

async function inspect(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...common, topic: { type: 'string' }, partition: { type: 'string' }, offset: { type: 'string' } }, strict: true });
  const c = commonOf(values);
  const at = coordinates(values.topic, values.partition, values.offset, '--offset');
  let found: DeadLetter | undefined;
  if (await topicExists(c.kafka, at.topic)) {
    await readTopic(c.kafka, at.topic, { partition: at.partition, from: at.offset, max: 1, timeoutMs: c.timeoutMs }, (r) => {
      if (r.offset === at.offset) found = parseDeadLetter(r);
    });
  }
  if (found === undefined) {
    process.stderr.write(`dlq inspect: no record at ${at.topic}/${at.partition}/${at.offset} (purged, never written, or the topic does not exist)\n`);
    return 1;
  }
  process.stdout.write(c.json ? inspectJson(found) : inspectText(found));
  return 0;
}

async function replay(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...common, ...filterOptions, to: { type: 'string' }, 'dry-run': { type: 'boolean', default: false }, 'include-may-have-landed': { type: 'boolean', default: false } },
    strict: true,
  });
  const c = commonOf(values);
  if (values.to !== 'original' && values.to !== 'destination') throw new DlqUsageError('--to original|destination is required');
  const dryRun = values['dry-run'];
  const ledger = new ReplayLedger(c.kafka, c.config.kafka.groupId, c.timeoutMs);
  let report: ReplayReport;
  try {
    // The ledger first: opening it for writing fences any older replay, so what it holds is final.
    await ledger.open(!dryRun);
    const { all, selected: read } = await readDeadLetters(c, values);
    // A letter that may also be in its table is replayed only when the operator checked and asks.
    const held = values['include-may-have-landed'] ? [] : read.filter((l) => l.mayHaveLanded === true);
    const selected = held.length === 0 ? read : read.filter((l) => l.mayHaveLanded !== true);
    report = values.to === 'original' ? await replayToOriginal(selected, ledger, dryRun) : await toDestination(c, all, selected, ledger, dryRun);
    for (const l of held) {
      report.skipped.push({
        id: l.id,
        detail: `may also be in ${l.table ?? 'its table'} (x-inserter-may-have-landed): check the table, then replay with --include-may-have-landed if it is not there`,
      });
    }
  } finally {
    await ledger.close();
  }
  process.stdout.write(c.json ? `${JSON.stringify(report)}\n` : formatReplayReport(report));
  return report.failed.length > 0 ? 1 : 0;
}

async function toDestination(c: Common, all: DeadLetter[], selected: DeadLetter[], ledger: ReplayLedger, dryRun: boolean): Promise<ReplayReport> {
  const configured = new Map(c.config.destinations.map((d) => [d.id, d] as const));
  const provider = c.config.destinationsApi === undefined ? undefined : createDestinationProvider(c.config, { logger: createLogger('silent'), registry: new Registry() });
  try {
    await provider?.start(AbortSignal.timeout(c.timeoutMs));
    const snapshot = provider?.snapshot();
    const routes = new Map(c.config.routes.map((r) => [r.name, r] as const));
    const decoders = new Map<RouteConfig | undefined, Decoder>();
    return await replayToDestination(
      all,
      selected,
      ledger,
      {
        destinationFor: (id): DestinationConfig | undefined => snapshot?.destinations.get(id) ?? configured.get(id),
        sinkFor: (d) => createSink(d),
        decoderFor: (route) => {
          const known = route === undefined ? undefined : routes.get(route);
          let decoder = decoders.get(known);
          if (decoder === undefined) {
            // Replays ignore the size limit: the letter was written, so it is replayed whole.
            const limits = { ...c.config, maxMessageBytes: Number.MAX_SAFE_INTEGER };
            decoder =
              known === undefined
                ? { format: 'json', decode: (record) => decodeJsonRecord(record, { maxMessageBytes: limits.maxMessageBytes, teamId: { from: 'field', field: 'team_id' } }) }
                : decoderFor(known, limits);
            decoders.set(known, decoder);
          }
          return decoder;
        },
        signal: AbortSignal.timeout(Math.max(c.timeoutMs, 600_000)),
      },
      dryRun,
    );
  } finally {
    await provider?.close();
  }
}

async function purgeCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...common, topic: { type: 'string' }, partition: { type: 'string' }, 'before-offset': { type: 'string' } }, strict: true });
  const c = commonOf(values);
  const at = coordinates(values.topic, values.partition, values['before-offset'], '--before-offset');
  const known = deadLetterTopics(c.config, {});
  if (!known.includes(at.topic)) throw new DlqUsageError(`${at.topic} is not a dead-letter topic of this config (${known.join(', ')})`);
  const ledger = new ReplayLedger(c.kafka, c.config.kafka.groupId, c.timeoutMs);
  try {
    await ledger.open(false);
    const low = await purge(c.kafka, { topic: at.topic, partition: at.partition, beforeOffset: at.offset }, ledger);
    process.stdout.write(c.json ? `${JSON.stringify({ topic: at.topic, partition: at.partition, lowWatermark: String(low) })}\n` : `${at.topic}/${at.partition}: records below ${low} deleted\n`);
  } finally {
    await ledger.close();
  }
  return 0;
}

function coordinates(topic: string | undefined, partition: string | undefined, offset: string | undefined, offsetFlag: string): { topic: string; partition: number; offset: bigint } {
  const issues: string[] = [];
  if (topic === undefined || topic === '') issues.push('--topic T is required');
  if (partition === undefined || !/^\d+$/.test(partition)) issues.push('--partition P (a partition number) is required');
  if (offset === undefined || !/^\d+$/.test(offset)) issues.push(`${offsetFlag} O (an offset) is required`);
  if (issues.length > 0) throw new DlqUsageError(issues.join('; '));
  return { topic: topic as string, partition: Number(partition), offset: BigInt(offset as string) };
}

/** A Kafka client error names its nested protocol errors; ClickHouse errors never carry the password. */
function describeCause(error: Error): string {
  const nested = (error as { errors?: unknown }).errors;
  const inner = Array.isArray(nested) ? nested.filter((e): e is Error => e instanceof Error).map((e) => describeCause(e)) : [];
  return inner.length === 0 ? error.message : `${error.message} (${inner.join('; ')})`;
}
