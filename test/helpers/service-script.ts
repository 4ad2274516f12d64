// What the test helpers that run a service script (scripts/kafka.sh, scripts/pulsar.sh,
// scripts/bigquery-emulator.sh, scripts/chlocal.sh) share: running `bash scripts/X.sh ...` and
// reading the last line it prints, and keeping track of the state dirs with a running service so
// that every one of them is stopped, synchronously, when the process exits.
//
//   const script = new ServiceScript({ script: 'kafka.sh', timeoutMs: 180_000, exitStopTimeoutMs: 30_000, keepDirEnv: 'KEEP_KAFKA_DIR' });
//   const dir = await script.makeTempDir('inserter-kafka-');   // removed at exit unless $KEEP_KAFKA_DIR is set
//   const last = await script.start(dir, [], /^127\.0\.0\.1:\d+$/);  // `start --dir dir`: its last line; stopped at exit
//   await script.stop(dir);                                      // `stop --dir dir`, no longer stopped at exit
//   await script.removeTempDir(dir);
import { execFile, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');

export interface ServiceScriptOptions {
  /** The script's file name under scripts/, e.g. "kafka.sh". */
  readonly script: string;
  /** Timeout of one run of the script (ms). */
  readonly timeoutMs: number;
  /** Timeout of the synchronous `stop` of each running service at process exit (ms). */
  readonly exitStopTimeoutMs: number;
  /** Environment variable that, when set, keeps the temp dirs. */
  readonly keepDirEnv: string;
}

export class ServiceScript {
  /** Absolute path of the script. */
  readonly path: string;
  /** State dirs with a service this process started (stopped at exit). */
  readonly running = new Set<string>();
  /** State dirs this process created (removed when done, unless keepDirEnv is set). */
  readonly tempDirs = new Set<string>();
  readonly #options: ServiceScriptOptions;
  #exitHookInstalled = false;

  constructor(options: ServiceScriptOptions) {
    this.#options = options;
    this.path = join(REPO_ROOT, 'scripts', options.script);
  }

  /** Whether temp dirs are kept (keepDirEnv is set). */
  get keepDirs(): boolean {
    return process.env[this.#options.keepDirEnv] !== undefined;
  }

  /** Runs `bash scripts/<script> ...args` from the repository root; resolves with the last non-empty line of stdout. */
  run(args: readonly string[]): Promise<string> {
    return new Promise((resolvePromise, reject) => {
      execFile('bash', [this.path, ...args], { cwd: REPO_ROOT, timeout: this.#options.timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`scripts/${this.#options.script} ${args.join(' ')} failed: ${error.message}\n${stderr}`, { cause: error }));
          return;
        }
        const lines = stdout.split('\n').filter((line) => line.trim() !== '');
        resolvePromise(lines.at(-1)?.trim() ?? '');
      });
    });
  }

  /** A fresh temp dir, removed again by removeTempDir() or at exit. */
  async makeTempDir(prefix: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    this.tempDirs.add(dir);
    return dir;
  }

  /** Records that a service is (being) started in dir: from now on it is stopped at exit. */
  started(dir: string): void {
    this.#installExitHook();
    this.running.add(dir);
  }

  /**
   * Runs `start --dir dir ...args`; dir's service is stopped at exit from then on (unless the start
   * fails). Resolves with the last line printed, which must match `expected`.
   */
  async start(dir: string, args: readonly string[], expected: RegExp): Promise<string> {
    this.started(dir);
    try {
      const last = await this.run(['start', '--dir', dir, ...args]);
      if (!expected.test(last)) throw new Error(`unexpected output from ${this.#options.script} start: ${last}`);
      return last;
    } catch (error) {
      this.running.delete(dir);
      throw error;
    }
  }

  /** Runs `stop --dir dir` (idempotent); dir is no longer stopped at exit. */
  async stop(dir: string): Promise<void> {
    await this.run(['stop', '--dir', dir]);
    this.running.delete(dir);
  }

  /** Removes dir if makeTempDir() created it (unless keepDirEnv is set). */
  async removeTempDir(dir: string): Promise<void> {
    if (!this.tempDirs.has(dir) || this.keepDirs) return;
    this.tempDirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
  }

  /** After a start that failed: forgets dir (not stopped or removed at exit) and removes it, kept or not. */
  async discard(dir: string): Promise<void> {
    this.running.delete(dir);
    this.tempDirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
  }

  #installExitHook(): void {
    if (this.#exitHookInstalled) return;
    this.#exitHookInstalled = true;
    process.once('exit', () => {
      // Only synchronous work is possible here.
      for (const dir of this.running) {
        spawnSync('bash', [this.path, 'stop', '--dir', dir], { stdio: 'ignore', timeout: this.#options.exitStopTimeoutMs });
      }
      this.running.clear();
      if (!this.keepDirs) {
        for (const dir of this.tempDirs) rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}
