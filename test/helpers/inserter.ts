// Test helper: runs `bin/inserter run` as a real child process with a config written to a temp
// dir, so tests can SIGTERM or SIGKILL it like an orchestrator would. Every process started here is
// stopped by stop()/kill(), and killed at process exit as a safety net.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { stringify } from 'yaml';
import { tempDir } from './temp-dir.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface InserterProcess {
  readonly dir: string;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code once the process ended. */
  readonly exited: Promise<number | null>;
  /** SIGTERM and wait (graceful shutdown). */
  stop(): Promise<number | null>;
  /** SIGKILL and wait: a crash at an arbitrary point. */
  kill(): Promise<void>;
  log(): Promise<string>;
}

export async function writeConfig(config: unknown, dir?: string): Promise<string> {
  const folder = dir ?? (await tempDir('inserter-cfg-'));
  const file = join(folder, 'inserter.yaml');
  await writeFile(file, stringify(config));
  return file;
}

export async function startInserter(config: unknown, env: NodeJS.ProcessEnv = {}): Promise<InserterProcess> {
  const dir = await tempDir('inserter-run-');
  const configFile = await writeConfig(config, dir);
  const logFile = join(dir, 'inserter.log');
  const log = createWriteStream(logFile);
  await once(log, 'open');
  const child = spawn(join(REPO_ROOT, 'bin', 'inserter'), ['run', '--config', configFile], {
    stdio: ['ignore', log, log],
    env: { ...process.env, ...env },
  });
  live.add(child);
  const exited = new Promise<number | null>((resolveExit) => {
    child.once('exit', (code) => {
      live.delete(child);
      resolveExit(code);
    });
  });
  return {
    dir,
    logFile,
    child,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    log: () => readFile(logFile, 'utf8'),
  };
}

/** Polls `probe` until it returns true or the timeout passes; the message says what was awaited. */
export async function waitFor(probe: () => Promise<boolean>, what: string, timeoutMs = 60_000, intervalMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)})` : ''}`);
}
