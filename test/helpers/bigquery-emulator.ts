// The one way tests get a real BigQuery API: goccy/bigquery-emulator, started by
// scripts/bigquery-emulator.sh (built once from the Go module proxy; see the script's header).
//
//   const emulator = await startBigQueryEmulator({ project: 'p', dataset: 'd' });  // own ports, temp dir
//   emulator.url        // "http://127.0.0.1:PORT": a destination's url, the client's apiEndpoint
//   await emulator.stop();                                                        // stops it, removes the dir
//
// The emulator keeps its tables in memory. Every emulator started here is stopped by stop(), and, as
// a safety net, synchronously when the process exits and by the script's watchdog (--owner-pid)
// if the process dies without running exit handlers.
import { execFile, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
export const BIGQUERY_EMULATOR_SCRIPT = join(REPO_ROOT, 'scripts', 'bigquery-emulator.sh');

export interface BigQueryEmulator {
  /** "http://127.0.0.1:PORT" */
  readonly url: string;
  readonly project: string;
  /** The dataset created at start. */
  readonly dataset: string;
  /** State dir: state, emulator.pid, logs/emulator.log. */
  readonly dir: string;
  /** Stops the emulator (idempotent) and removes its dir (KEEP_BIGQUERY_EMULATOR_DIR=1 keeps it). */
  stop(): Promise<void>;
}

export interface StartBigQueryEmulatorOptions {
  readonly project?: string;
  readonly dataset?: string;
}

const running = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    // Only synchronous work is possible here.
    for (const dir of running) {
      spawnSync('bash', [BIGQUERY_EMULATOR_SCRIPT, 'stop', '--dir', dir], { stdio: 'ignore', timeout: 20_000 });
      if (process.env.KEEP_BIGQUERY_EMULATOR_DIR === undefined) rmSync(dir, { recursive: true, force: true });
    }
    running.clear();
  });
}

function runScript(args: readonly string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    // The first start builds the emulator (minutes): the timeout leaves room for it.
    execFile('bash', [BIGQUERY_EMULATOR_SCRIPT, ...args], { cwd: REPO_ROOT, timeout: 900_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`scripts/bigquery-emulator.sh ${args.join(' ')} failed: ${error.message}\n${stderr}`, { cause: error }));
        return;
      }
      const lines = stdout.split('\n').filter((line) => line.trim() !== '');
      resolvePromise(lines.at(-1)?.trim() ?? '');
    });
  });
}

/** Starts an emulator of its own: free ports, a fresh temp dir, the project and its one dataset. */
export async function startBigQueryEmulator(options: StartBigQueryEmulatorOptions = {}): Promise<BigQueryEmulator> {
  const project = options.project ?? 'inserter-test';
  const dataset = options.dataset ?? 'inserter';
  const dir = await mkdtemp(join(tmpdir(), 'inserter-bigquery-'));
  installExitHook();
  running.add(dir);
  let url: string;
  try {
    url = await runScript(['start', '--dir', dir, '--project', project, '--dataset', dataset, '--owner-pid', String(process.pid)]);
    if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(url)) throw new Error(`unexpected output from bigquery-emulator.sh start: ${url}`);
  } catch (error) {
    await runScript(['stop', '--dir', dir]).catch(() => undefined);
    running.delete(dir);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  let stopped = false;
  return {
    url,
    project,
    dataset,
    dir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await runScript(['stop', '--dir', dir]);
      running.delete(dir);
      if (process.env.KEEP_BIGQUERY_EMULATOR_DIR === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}
