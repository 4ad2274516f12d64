// The stack the drain benchmark runs on, and the one record of what it started: the Kafka broker,
// the schema registry (--format protobuf), the chlocal ClickHouse servers and the inserter
// processes. cleanup() stops all of them — at the end, on failure and on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadDdl } from '../../dev/posthog/ddl.ts';
import { startClickHouse, type ClickHouseInstance } from '../../test/helpers/clickhouse.ts';
import { startKafka, type KafkaBroker } from '../../test/helpers/kafka.ts';
import { FakeSchemaRegistry } from '../../test/helpers/schema-registry.ts';
import { INSERTER, INSERTER_ENV, PROTOBUF } from './options.ts';
import { say } from './output.ts';

/** The broker, once startBroker() has run. */
export let kafka: KafkaBroker | undefined;
/** With --format protobuf: the local schema registry (in this process) and its URL. */
export let registry: { server: FakeSchemaRegistry; url: string } | undefined;
/** What is running now, for cleanup(): a phase adds what it starts and deletes what it stopped itself. */
const clickhouses = new Set<ClickHouseInstance>();
export const inserters = new Set<InserterProcess>();

interface InserterProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
  log(): Promise<string>;
  stop(): Promise<number | null>;
  kill(): Promise<void>;
}

/** `bin/inserter run --config FILE` as a child process; bin/inserter execs node, so child.pid is node's. */
export async function startInserter(config: unknown, env: NodeJS.ProcessEnv, root: string = INSERTER.root): Promise<InserterProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'inserter-bench-run-'));
  const configFile = join(dir, 'inserter.yaml');
  writeFileSync(configFile, stringify(config));
  const logFile = join(dir, 'inserter.log');
  const log = createWriteStream(logFile);
  await once(log, 'open');
  const child = spawn(join(root, 'bin', 'inserter'), ['run', '--config', configFile], { stdio: ['ignore', log, log], env: { ...process.env, ...INSERTER_ENV, ...env } });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  process.once('exit', () => void (alive() && child.kill('SIGKILL')));
  return {
    child,
    exited,
    log: () => readFile(logFile, 'utf8'),
    async stop() {
      if (alive()) child.kill('SIGTERM');
      const code = await exited;
      if (process.env.KEEP_BENCH_DIRS === undefined) rmSync(dir, { recursive: true, force: true });
      return code;
    },
    async kill() {
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Starts the broker every phase uses and, with --format protobuf, the schema registry (in this process). */
export async function startBroker(): Promise<KafkaBroker> {
  const broker = await startKafka();
  kafka = broker;
  say(`kafka ${broker.bootstrap} (${broker.dir})`);
  if (PROTOBUF) {
    const server = new FakeSchemaRegistry();
    registry = { server, url: await server.start() };
    say(`schema registry ${registry.url} (in this process)`);
  }
  return broker;
}

export async function cleanup(): Promise<void> {
  await Promise.allSettled([...inserters].map((p) => p.kill()));
  await Promise.allSettled([...clickhouses].map((c) => c.stop()));
  await kafka?.stop().catch(() => undefined);
  await registry?.server.stop().catch(() => undefined);
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`${signal}: stopping everything…`);
    void cleanup().finally(() => process.exit(130));
  });
}

export function pidIn(dir: string, file: string): number {
  return Number(readFileSync(join(dir, file), 'utf8').trim());
}

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  return port;
}

/** A fresh chlocal endpoint with database `posthog` and the PostHog `events` table. */
export async function freshClickHouse(extraColumns = ''): Promise<ClickHouseInstance> {
  const ch = await startClickHouse();
  clickhouses.add(ch);
  await ch.query('CREATE DATABASE posthog');
  await ch.query(await loadDdl('events', 'posthog'));
  if (extraColumns !== '') await ch.query(`ALTER TABLE posthog.events ${extraColumns}`);
  return ch;
}

export async function stopClickHouse(ch: ClickHouseInstance): Promise<void> {
  clickhouses.delete(ch);
  await ch.stop();
}

/** Rows in posthog.events now. */
export const count = async (ch: ClickHouseInstance): Promise<number> => Number((await ch.query('SELECT count() FROM posthog.events')).trim());
