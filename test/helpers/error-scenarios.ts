// Test helper for the error-policy e2e tests (test/e2e/errors-*.test.ts and their kin): a plain
// table, numbered JSON rows, an inserter config for one topic → one table on one destination, the
// checks every scenario ends with (exactly once: count() = uniqExact(id) = expected; dead letters
// read back), and useScenarioStack, the one owner of their setup (broker, own ClickHouse server,
// database and table, topic, inserters started and killed).
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before } from 'node:test';
import { endOffsets, produce, readTopic, type ReadRecord } from './bus.ts';
import { startClickHouse, type ClickHouseInstance, type ClickHouseUser } from './clickhouse.ts';
import { startInserter, waitFor, type InserterProcess } from './inserter.ts';
import { createTopic, sharedKafka, uniqueTopic } from './kafka.ts';

/** A table that deduplicates by token (exactly-once refuses one that cannot), plus `settings`. */
export const TABLE_DDL = (db: string, table: string, settings = ''): string =>
  `CREATE TABLE ${db}.${table} (id UInt64, team_id Int64, n UInt32, s String, k UInt16) ENGINE = MergeTree PARTITION BY k ORDER BY id SETTINGS non_replicated_deduplication_window = 1000${settings === '' ? '' : `, ${settings}`}`;

export interface RowOptions {
  /** Distinct partition values (column k) cycled through; default 1. */
  partitions?: number;
  /** Consecutive ids sharing a partition value; default 1. */
  run?: number;
  /** Bytes of padding in `s`. */
  pad?: number;
}

export function row(id: number, options: RowOptions = {}): Buffer {
  return Buffer.from(JSON.stringify({ id, team_id: 1 + (id % 7), n: id % 100_000, s: 'x'.repeat(options.pad ?? 16), k: Math.floor(id / (options.run ?? 1)) % (options.partitions ?? 1) }));
}

export async function produceRows(bootstrap: string, topic: string, from: number, to: number, options: RowOptions = {}, partitions = 1): Promise<void> {
  const records = [];
  for (let id = from; id < to; id++) records.push({ key: Buffer.from(String(id)), value: row(id, options), partition: id % partitions });
  await produce(bootstrap, topic, records, 1000);
}

export interface ScenarioConfig {
  bootstrap: string;
  group: string;
  topic: string;
  url: string;
  user?: string;
  password?: string;
  database: string;
  table: string;
  deadLetterTopic?: string;
  maxRows?: number;
  extra?: Record<string, unknown>;
  destination?: Record<string, unknown>;
}

export function scenarioConfig(c: ScenarioConfig): Record<string, unknown> {
  return {
    kafka: { brokers: [c.bootstrap], groupId: c.group, fetchMaxWaitMs: 100, sessionTimeoutMs: 6_000 },
    destinations: [{ id: 'a', url: c.url, database: c.database, user: c.user ?? 'default', password: c.password ?? '', ...c.destination }],
    routes: [{ topic: c.topic, table: c.table, destination: 'a', createTable: { enabled: false }, ...(c.deadLetterTopic ? { deadLetterTopic: c.deadLetterTopic } : {}) }],
    batch: { maxRows: c.maxRows ?? 2_000, maxAgeMs: 300 },
    commitIntervalMs: 300,
    retry: { baseMs: 100, factor: 2, capMs: 1_000 },
    ...c.extra,
  };
}

export async function counts(ch: ClickHouseInstance, db: string, table: string): Promise<{ rows: number; distinct: number }> {
  const [rows, distinct] = (await ch.query(`SELECT count(), uniqExact(id) FROM ${db}.${table} FORMAT TSV`)).trim().split('\t').map(Number);
  return { rows: rows ?? -1, distinct: distinct ?? -1 };
}

export async function assertExactlyOnce(ch: ClickHouseInstance, db: string, table: string, expected: number): Promise<void> {
  const { rows, distinct } = await counts(ch, db, table);
  assert.equal(distinct, expected, 'every row landed');
  assert.equal(rows, expected, 'no row landed twice');
}

/** Every dead letter in `topic` (waits at most `timeoutMs` for more than `atLeast`). */
export async function deadLetters(bootstrap: string, topic: string, atLeast: number, timeoutMs = 5_000): Promise<ReadRecord[]> {
  return readTopic(bootstrap, topic, atLeast + 1, timeoutMs).catch(() => []);
}

/** Options of useScenarioStack: what differs between scenarios. */
export interface ScenarioStackOptions {
  /** Users of the ClickHouse server (with their settings profiles); default: the passwordless `default` only. */
  users?: ClickHouseUser[];
  /** A user besides the passwordless `default` (after `users`), the one start() inserts as. */
  insertUser?: ClickHouseUser;
  /** The scenario's database; default `e`. */
  database?: string;
  /** The scenario's table (TABLE_DDL); default `t`; false: none (the test creates its own). */
  table?: string | false;
  /** Settings appended to the scenario table's TABLE_DDL (e.g. `parts_to_throw_insert = 3`). */
  tableSettings?: string;
  /** Further tables created with TABLE_DDL in the database. */
  extraTables?: string[];
  /** Statements run once the tables exist (e.g. `SYSTEM STOP MERGES e.t`). */
  sql?: string[];
  /** Partitions of the scenario topic; default 1; 0: no topic is created (the tests call addTopic). */
  partitions?: number;
  /**
   * More setup once the stack is ready (e.g. a fault proxy in front of `stack.ch`). A test's own
   * module-level `before` would not do: node:test starts root hooks as they are registered, so it
   * would run alongside the stack's.
   */
  setup?: (stack: ScenarioStack) => Promise<void>;
  /** Teardown of what `setup` started, after the inserters are killed and before the server stops. */
  teardown?: () => Promise<void>;
}

/** A topic of a scenario, its consumer group and dead-letter topic names. */
export interface ScenarioTopic {
  topic: string;
  group: string;
  dlq: string;
}

export interface ScenarioStack extends ScenarioTopic {
  readonly database: string;
  /** The scenario table ('' with `table: false`). */
  readonly table: string;
  /** The shared broker (set once `before` ran). */
  readonly bootstrap: string;
  /** This file's own ClickHouse server (set once `before` ran). */
  readonly ch: ClickHouseInstance;
  /** Creates a further topic (`uniqueTopic(prefix)`) with its group and dead-letter names. */
  addTopic(prefix: string, partitions?: number, config?: Record<string, string>): Promise<ScenarioTopic>;
  /**
   * Starts an inserter with scenarioConfig for the scenario topic → table with its dead-letter topic,
   * as the insert user if there is one; `overrides` replace any of those (`deadLetterTopic:
   * undefined`: the route's default name). Callable again (a restart, a second inserter): every
   * process started is killed by `after`.
   */
  start(overrides?: Partial<ScenarioConfig>): Promise<InserterProcess>;
  /** Starts an inserter with a config of the test's own, killed by `after` like the others. */
  startWith(config: unknown): Promise<InserterProcess>;
  /** waitFor whose error carries `detail()` and the tail of the last inserter's log. */
  waitFor(probe: () => Promise<boolean>, what: string, timeoutMs: number, detail?: () => Promise<string>): Promise<void>;
  /** Waits until `table` (default the scenario table) holds at least `n` distinct ids. */
  waitForRows(n: number, timeoutMs: number, table?: string): Promise<void>;
  counts(table?: string): Promise<{ rows: number; distinct: number }>;
  /** count() = uniqExact(id) = n in `table` (default the scenario table). */
  assertExactlyOnce(n: number, table?: string): Promise<void>;
  /** The dead-letter topic (default the scenario's) was never written: it has no partitions. */
  assertNothingDeadLettered(message?: string, topic?: string): Promise<void>;
}

const LOG_TAIL = 3_000;

async function logTail(p: InserterProcess): Promise<string> {
  return (await p.log().catch((e: unknown) => String(e))).slice(-LOG_TAIL);
}

/**
 * The setup every error scenario shares, registered as this test file's `before`/`after` hooks
 * (call it at module level): the shared broker, a ClickHouse server of the file's own with the
 * database, table(s) and statements of `options`, a unique topic of `name` (its group `-g`, its
 * dead-letter topic `.dlq`), then `options.setup`; `after` kills every inserter started through the
 * stack, runs `options.teardown` and stops the server.
 */
export function useScenarioStack(name: string, options: ScenarioStackOptions = {}): ScenarioStack {
  const topic = uniqueTopic(name);
  const database = options.database ?? 'e';
  const table = options.table === false ? '' : (options.table ?? 't');
  const started: InserterProcess[] = [];
  let bootstrap: string | undefined;
  let ch: ClickHouseInstance | undefined;

  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the scenario stack has no ${what} yet (used before its before hook ran?)`);
    return value;
  };
  const track = (p: InserterProcess): InserterProcess => {
    started.push(p);
    return p;
  };

  const stack: ScenarioStack = {
    topic,
    group: `${topic}-g`,
    dlq: `${topic}.dlq`,
    database,
    table,
    get bootstrap() {
      return ready(bootstrap, 'broker');
    },
    get ch() {
      return ready(ch, 'ClickHouse server');
    },
    async addTopic(prefix, partitions = 1, config = {}) {
      const added = uniqueTopic(prefix);
      await createTopic(stack.bootstrap, added, partitions, config);
      return { topic: added, group: `${added}-g`, dlq: `${added}.dlq` };
    },
    async start(overrides = {}) {
      const user = options.insertUser === undefined ? {} : { user: options.insertUser.name, password: options.insertUser.password };
      const base: ScenarioConfig = { bootstrap: stack.bootstrap, group: stack.group, topic, url: stack.ch.url, database, table, deadLetterTopic: stack.dlq, ...user };
      return track(await startInserter(scenarioConfig({ ...base, ...overrides })));
    },
    async startWith(config) {
      return track(await startInserter(config));
    },
    async waitFor(probe, what, timeoutMs, detail) {
      await waitFor(probe, what, timeoutMs).catch(async (error: unknown) => {
        const said = detail === undefined ? '' : `: ${await detail().catch((e: unknown) => String(e))}`;
        const last = started.at(-1);
        const tail = last === undefined ? '(no inserter started)' : await logTail(last);
        throw new Error(`${String(error)}${said}\n${tail}`);
      });
    },
    waitForRows: (n, timeoutMs, of = table) => stack.waitFor(async () => (await counts(stack.ch, database, of)).distinct >= n, `${n} rows`, timeoutMs),
    counts: (of = table) => counts(stack.ch, database, of),
    assertExactlyOnce: (n, of = table) => assertExactlyOnce(stack.ch, database, of, n),
    async assertNothingDeadLettered(message = 'nothing dead-lettered', of = stack.dlq) {
      assert.deepEqual(await endOffsets(stack.bootstrap, of).catch(() => []), [], message);
    },
  };

  before(async () => {
    bootstrap = await sharedKafka();
    const users = options.insertUser === undefined ? options.users : [...(options.users ?? [{ name: 'default', password: '' }]), options.insertUser];
    ch = await startClickHouse(users === undefined ? {} : { users });
    await ch.query(`CREATE DATABASE ${database}`);
    if (table !== '') await ch.query(TABLE_DDL(database, table, options.tableSettings));
    for (const extra of options.extraTables ?? []) await ch.query(TABLE_DDL(database, extra));
    for (const sql of options.sql ?? []) await ch.query(sql);
    if ((options.partitions ?? 1) > 0) await createTopic(bootstrap, topic, options.partitions ?? 1);
    await options.setup?.(stack);
  });

  after(async () => {
    try {
      for (const p of started) await p.kill();
      await options.teardown?.();
    } finally {
      await ch?.stop();
    }
  });

  return stack;
}

/** A TCP port free on 127.0.0.1 right now (for an inserter's metrics listener). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The value of one sample on /metrics (`name{labels}` exactly as prom-client prints them), or undefined. */
export async function metricSample(port: number, series: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
