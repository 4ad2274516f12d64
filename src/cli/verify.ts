// Owns `inserter verify --config FILE [--id-field uuid] [--json]`: reads every route's topic, its
// dead-letter topic, each destination's table and the group's committed offsets, checks the delivery
// invariants (src/cli/verify-check.ts) and exits non-zero when one breaks. Meant for a quiet
// pipeline (producers done, inserters caught up); mappings are taken as they are now.
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { kafkaBusConfig, loadConfigFile, type DestinationConfig, type KafkaBusConfig, type RouteConfig } from '../config/load.ts';
import { deadLetterId } from '../deadletter/record.ts';
import type { LedgerEntry } from '../deadletter/replay-ledger.ts';
import { ReplayLedger } from '../source/kafka-dlq-replay-ledger.ts';
import { deadLetterHeader } from '../deadletter/types.ts';
import { decoderFor, type Decoder } from '../decode/types.ts';
import { ConfigError, DecodeError } from '../errors/inserter-error.ts';
import { createDestinationProvider } from '../route/providers/create.ts';
import type { DestinationProvider } from '../route/provider.ts';
import { createLogger } from '../telemetry/logger.ts';
import { checkRoute, RowTally, type DeadLetterRef, type DestinationRows, type ProducedRecord, type RouteReport } from './verify-check.ts';
import { formatReport } from './verify-print.ts';
import { committedOffsets, normalizeId, readRows, readWholeTopic, topicExists, type KafkaAccess, type TopicRecord } from './verify-read.ts';
import { kafkaConnectionFor, kafkaSecurityFailure } from '../source/kafka-connection.ts';
import type { SourceRecord } from '../source/types.ts';

export const verifyUsage = '  inserter verify --config FILE [--id-field uuid] [--json]   check exactly-once delivery end to end (exit 1: broken)';

export interface VerifyReport {
  ok: boolean;
  groupId: string;
  idField: string;
  routes: RouteReport[];
  failures: string[];
}

/** 0: every invariant holds; 1: one is broken; 2: bad arguments or config; 3: could not read something. */
export async function verify(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        config: { type: 'string', short: 'c' },
        'id-field': { type: 'string', default: 'uuid' },
        json: { type: 'boolean', default: false },
        'timeout-ms': { type: 'string', default: '120000' },
      },
    }));
  } catch (error) {
    process.stderr.write(`verify: ${(error as Error).message}\n${verifyUsage}\n`);
    return 2;
  }
  const timeoutMs = Number(values['timeout-ms']);
  if (values.config === undefined || !(timeoutMs > 0)) {
    process.stderr.write(`verify: --config FILE is required (and --timeout-ms must be positive)\n${verifyUsage}\n`);
    return 2;
  }
  let config: KafkaBusConfig;
  try {
    config = kafkaBusConfig(loadConfigFile(values.config), 'verify');
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${values.config}: ${error.message}\n`);
    return 2;
  }
  let report: VerifyReport;
  try {
    report = await collect(config, values['id-field'], timeoutMs);
  } catch (error) {
    const security = kafkaSecurityFailure(error, config.kafka);
    process.stderr.write(`verify: could not verify: ${security === undefined ? (error as Error).message : `${security.message} [${security.code}]`}\n`);
    return 3;
  }
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.ok ? 0 : 1;
}

async function collect(config: KafkaBusConfig, idField: string, timeoutMs: number): Promise<VerifyReport> {
  const kafka: KafkaAccess = { brokers: config.kafka.brokers, connection: kafkaConnectionFor(config), clientId: config.kafka.clientId };
  const provider = createDestinationProvider(config, { logger: createLogger('silent'), registry: new Registry() });
  try {
    await provider.start(AbortSignal.timeout(timeoutMs));
    // What `inserter dlq replay` did (read-only: fences no running replay).
    const replays = new ReplayLedger(kafka, config.kafka.groupId, timeoutMs);
    await replays.open(false);
    const routes: RouteReport[] = [];
    for (const route of config.routes) routes.push(await verifyRoute(config, route, provider, kafka, idField, timeoutMs, replays.entries));
    const failures = routes.flatMap((r) => r.failures);
    return { ok: failures.length === 0, groupId: config.kafka.groupId, idField, routes, failures };
  } finally {
    await provider.close();
  }
}

async function verifyRoute(
  config: KafkaBusConfig,
  route: RouteConfig,
  provider: DestinationProvider,
  kafka: KafkaAccess,
  idField: string,
  timeoutMs: number,
  replays: ReadonlyMap<string, LedgerEntry>,
): Promise<RouteReport> {
  const produced: ProducedRecord[] = [];
  if (!(await topicExists(kafka, route.topic))) throw new Error(`route ${route.name}: topic ${route.topic} does not exist`);
  const decoder = decoderFor(route, config);
  // A record whose schema is not loaded yet (a registry id) is described once the schema is: in
  // order, after the read (the registry's answers are awaited, never waited for by blocking).
  const waiting: Array<{ record: TopicRecord; index: number; ready: Promise<void> }> = [];
  const ends = await readWholeTopic(
    kafka,
    route.topic,
    (r) => {
      const ready = decoder.prepare?.(sourceRecord(r, route), AbortSignal.timeout(timeoutMs));
      if (ready === undefined) produced.push(describe(r, route, decoder, idField));
      else {
        waiting.push({ record: r, index: produced.length, ready });
        produced.push({ partition: r.partition, offset: r.offset, decodable: false, id: undefined, team: undefined });
      }
    },
    timeoutMs,
  );
  for (const { record, index, ready } of waiting) {
    await ready;
    produced[index] = describe(record, route, decoder, idField);
  }

  const deadLetterTopic = route.deadLetterTopic ?? `${route.topic}.dlq`;
  const deadLetters: DeadLetterRef[] = [];
  if (await topicExists(kafka, deadLetterTopic)) {
    await readWholeTopic(
      kafka,
      deadLetterTopic,
      (r) => {
        const ref = deadLetterOf(r, route);
        if (ref) deadLetters.push(withReplay(ref, replays.get(deadLetterId(deadLetterTopic, r.partition, r.offset))));
      },
      timeoutMs,
    );
  }

  const snapshot = provider.snapshot();
  const configured = new Map(config.destinations.map((d) => [d.id, d] as const));
  const destinationById = (id: string): DestinationConfig | undefined => snapshot.destinations.get(id) ?? configured.get(id);
  const teamRouted = route.destination === 'team';
  const targets = teamRouted ? [...new Set([...snapshot.destinations.keys(), ...configured.keys()])] : [route.destination];
  const destinations: DestinationRows[] = [];
  for (const id of targets) {
    const destination = destinationById(id);
    if (destination === undefined) throw new Error(`route ${route.name}: destination ${id} is not configured`);
    const database = route.database ?? destination.database;
    const teamColumn = !teamRouted ? undefined : route.teamId.from === 'field' ? route.teamId.field : 'team_id';
    const rows = new RowTally();
    const note = await readRows(destination, { database, table: route.table, idColumn: idField, teamColumn }, rows, timeoutMs);
    destinations.push({ id, database, table: route.table, rows, ...(note === undefined ? {} : { note }) });
  }

  const mapped = new Map<number, string | undefined>(snapshot.teams);
  if (teamRouted) {
    const teams = new Set<number>();
    for (const r of produced) if (r.team !== undefined) teams.add(r.team);
    for (const d of destinations) for (const team of d.rows.byTeam.keys()) if (team !== undefined) teams.add(team);
    for (const team of teams) if (!mapped.has(team)) mapped.set(team, await provider.lookupTeam(team, AbortSignal.timeout(timeoutMs)));
  }
  const unknown = config.teams.unknown;
  const destinationOf = (team: number | undefined): string | undefined => {
    if (!teamRouted) return route.destination;
    if (team === undefined) return undefined;
    return mapped.get(team) ?? (unknown.action === 'destination' ? unknown.destination : undefined);
  };

  const committed = await committedOffsets(kafka, config.kafka.groupId, route.topic, ends.logEnd.length);
  const lastRecord = ends.logEnd.map(() => -1n);
  for (const r of produced) if (r.offset > (lastRecord[r.partition] ?? -1n)) lastRecord[r.partition] = r.offset;
  const partitions = ends.logEnd.map((logEnd, partition) => ({ partition, logEnd, committed: committed[partition] ?? -1n, lastRecord: lastRecord[partition] ?? -1n }));
  return checkRoute({ route: route.name, topic: route.topic, deadLetterTopic, destinationOf, produced, deadLetters, destinations, partitions });
}

/**
 * The record as inserter would see it (the route's decoder): decodable or not, its team, and its id.
 * A schema registry that cannot answer is not "undecodable": it fails the verification (exit 3).
 */
function sourceRecord(r: TopicRecord, route: RouteConfig): SourceRecord {
  return { topic: route.topic, ...r, timestamp: 0n, epoch: 0 };
}

function describe(r: TopicRecord, route: RouteConfig, decoder: Decoder, idField: string): ProducedRecord {
  try {
    const { row, teamId } = decoder.decode(sourceRecord(r, route));
    const id = Buffer.isBuffer(row) ? (JSON.parse(row.toString('utf8')) as Record<string, unknown>)[idField] : row.type.reader(idField)?.(row.values);
    return { partition: r.partition, offset: r.offset, decodable: true, id: normalizeId(id), team: teamId };
  } catch (error) {
    if (!(error instanceof DecodeError) && !(error instanceof SyntaxError)) throw error;
    return { partition: r.partition, offset: r.offset, decodable: false, id: undefined, team: undefined };
  }
}

/** A dead letter whose replay finished: into a destination (then expected there) or back to the topic. */
function withReplay(ref: DeadLetterRef, entry: LedgerEntry | undefined): DeadLetterRef {
  if (entry?.state !== 'done') return ref;
  if (entry.to === 'original') return { ...ref, replayed: { to: 'original' } };
  return entry.destination === undefined ? ref : { ...ref, replayed: { to: 'destination', destination: entry.destination } };
}

/** The original position a dead letter of this route names; undefined for another topic or route. */
function deadLetterOf(r: TopicRecord, route: RouteConfig): DeadLetterRef | undefined {
  // The writer appends its headers after the original record's: the last one of a name is ours.
  const header = (name: string): string | undefined => {
    let found: string | undefined;
    for (const [k, v] of r.headers) if (k.toString('utf8') === name) found = v.toString('utf8');
    return found;
  };
  if (header(deadLetterHeader.topic) !== route.topic) return undefined;
  const routeName = header(deadLetterHeader.route);
  if (routeName !== undefined && routeName !== route.name) return undefined;
  const partition = header(deadLetterHeader.partition);
  const offset = header(deadLetterHeader.offset);
  if (partition === undefined || offset === undefined || !/^\d+$/.test(partition) || !/^\d+$/.test(offset)) return undefined;
  return { partition: Number(partition), offset: BigInt(offset), errorClass: header(deadLetterHeader.class) };
}
