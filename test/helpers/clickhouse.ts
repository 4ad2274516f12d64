// The one way tests get a ClickHouse: ClickHouse's own server (HTTP + native TCP) hosted from
// libchdb.so by tools/chlocal/launch.py, see docs/local-stack.md ("## ClickHouse (chlocal)"). For
// development and tests only; production talks to ClickHouse Cloud or a ClickHouse cluster.
//
//   const ch = await startClickHouse();                       // own server, free ports, fresh temp dir
//   const ch2 = await startClickHouse({ users: [{ name: 'ingest', password: 'pw' }] });
//   await ch.query('SELECT 1');                               // as chlocal_admin; TSV text; throws on a server error
//   await ch.restart();                                       // same ports, same data (an outage)
//   await ch.stop();                                          // stops it and removes the temp dir
//
// Instances are started by scripts/chlocal.sh, one server process each. Every instance started here
// is stopped by stop(), and, as a safety net, synchronously when the process exits (see service-script.ts).
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { ServiceScript } from './service-script.ts';

export { REPO_ROOT } from './service-script.ts';

const script = new ServiceScript({ script: 'chlocal.sh', timeoutMs: 300_000, exitStopTimeoutMs: 30_000, keepDirEnv: 'CHLOCAL_KEEP_DIR' });
export const CHLOCAL_SCRIPT = script.path;

export interface ClickHouseUser {
  name: string;
  password: string;
  /** Settings profile applied to every query of this user, e.g. { max_memory_usage: '10000000' }. */
  settings?: Record<string, string>;
  /** 1: read-only user, 2: read-only but may change settings. */
  readonly?: number;
}

export interface ClickHouseInstance {
  /** "http://127.0.0.1:PORT" (ClickHouse's HTTP interface) */
  url: string;
  /** Port of ClickHouse's native TCP protocol on 127.0.0.1 (e.g. for `remote('127.0.0.1:PORT', …)`). */
  tcpPort: number;
  /** State dir: data/, config.xml, users.xml, server.out, pid, url, port, tcp_port, admin_password. */
  dir: string;
  /**
   * The user query() runs as: `chlocal_admin`, full rights, a random password kept in DIR/admin_password.
   * Not `default`: the server's local session logs in as `default`, so `default` is always passwordless
   * and, unless the users given here include it, may only start listeners (GRANT SYSTEM LISTEN).
   */
  admin: { name: string; password: string };
  /** Stops the instance (idempotent). Removes dir if startClickHouse created it (CHLOCAL_KEEP_DIR=1 keeps it). */
  stop(): Promise<void>;
  /** Stops and starts the same instance: same ports, same data dir, same users (re-read from DIR/users.json). */
  restart(): Promise<void>;
  /** Stops the server but keeps its ports and data, for an outage; up() brings it back. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Runs one statement as the admin user (see `admin`); TSV text. */
  query(sql: string): Promise<string>;
}

export interface StartClickHouseOptions {
  /**
   * Users of this instance (users.xml: loopback only, password as password_sha256_hex, a profile with
   * the settings); default: one user `default` with an empty password and full rights. A `default`
   * given here must have an empty password; `chlocal_admin` is always added.
   */
  users?: ClickHouseUser[];
  /** State dir to use; default a fresh temp dir (removed again by stop()). */
  dir?: string;
}

function startIn(dir: string, extra: string[]): Promise<string> {
  return script.start(dir, extra, /^http:\/\/127\.0\.0\.1:\d+$/);
}

/** Basic auth header value for a user. */
export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** Starts an instance of its own (free port, fresh temp dir unless opts.dir is given). */
export async function startClickHouse(opts: StartClickHouseOptions = {}): Promise<ClickHouseInstance> {
  const dir = opts.dir ?? (await script.makeTempDir('inserter-chlocal-'));
  const extra: string[] = [];
  if (opts.users !== undefined && opts.users.length > 0) {
    const usersFile = join(dir, 'users.json');
    await writeFile(usersFile, JSON.stringify(opts.users, null, 2));
    extra.push('--users', usersFile);
  }
  let url: string;
  let tcpPort: number;
  let admin: { name: string; password: string };
  try {
    url = await startIn(dir, extra);
    tcpPort = Number((await readFile(join(dir, 'tcp_port'), 'utf8')).trim());
    admin = { name: 'chlocal_admin', password: (await readFile(join(dir, 'admin_password'), 'utf8')).trim() };
  } catch (error) {
    await script.stop(dir).catch(() => undefined);
    await script.removeTempDir(dir);
    throw error;
  }
  let stopped = false;
  const instance: ClickHouseInstance = {
    url,
    tcpPort,
    dir,
    admin,
    async stop() {
      if (stopped) return;
      stopped = true;
      await script.stop(dir);
      await script.removeTempDir(dir);
    },
    async down() {
      if (stopped) throw new Error('down() after stop()');
      await script.stop(dir);
    },
    async up() {
      if (stopped) throw new Error('up() after stop()');
      const again = await startIn(dir, [...extra, '--port', new URL(instance.url).port]);
      if (again !== instance.url) throw new Error(`instance came back on ${again}, expected ${instance.url}`);
    },
    async restart() {
      if (stopped) throw new Error('restart() after stop()');
      const port = new URL(instance.url).port;
      await script.stop(dir);
      const again = await startIn(dir, [...extra, '--port', port]);
      if (again !== instance.url) throw new Error(`instance came back on ${again}, expected ${instance.url}`);
    },
    async query(sql: string) {
      const response = await fetch(`${instance.url}/`, {
        method: 'POST',
        headers: { Authorization: basicAuth(admin.name, admin.password) },
        body: sql,
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`ClickHouse error (HTTP ${response.status}): ${text.trim()}`);
      return text;
    },
  };
  return instance;
}

/** Pid of the process hosting the server (the launcher; for tests that simulate crashes). */
export function instancePid(instance: ClickHouseInstance): number {
  return Number(readFileSync(join(instance.dir, 'pid'), 'utf8').trim());
}

/**
 * The formats the inserts into `table` ("db.name") used, with their counts, from the server's query log.
 * Flushes the logs first, and again until `system.query_log` exists: a flush whose write failed (a CI
 * machine under load once answered a flush and still had no query_log table) is retried by the
 * server's next flush, so the test waits for that condition instead of failing on its first read.
 */
export async function insertFormats(ch: ClickHouseInstance, table: string, timeoutMs = 60_000): Promise<Map<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await ch.query('SYSTEM FLUSH LOGS');
    if ((await ch.query('EXISTS TABLE system.query_log')).trim() === '1') break;
    if (Date.now() > deadline) {
      const log = await readFile(join(ch.dir, 'server.out'), 'utf8').catch(() => '');
      throw new Error(`system.query_log still missing after ${timeoutMs} ms of flushes; server.out tail:\n${log.slice(-3000)}`);
    }
    await sleep(250);
  }
  const tsv = await ch.query(
    `SELECT extract(query, 'FORMAT (\\\\w+)') AS format, count() FROM system.query_log WHERE type = 'QueryFinish' AND query_kind = 'Insert' AND has(tables, '${table}') GROUP BY format ORDER BY format FORMAT TSV`,
  );
  const formats = new Map<string, number>();
  for (const line of tsv.split('\n')) {
    const [format, count] = line.split('\t');
    if (format !== undefined && count !== undefined) formats.set(format, Number(count));
  }
  return formats;
}
