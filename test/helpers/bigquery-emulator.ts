// The one way tests get a real BigQuery API: goccy/bigquery-emulator, started by
// scripts/bigquery-emulator.sh (built once from the Go module proxy; see the script's header).
//
//   const emulator = await startBigQueryEmulator({ project: 'p', dataset: 'd' });  // own ports, temp dir
//   emulator.url        // "http://127.0.0.1:PORT": a destination's url, the client's apiEndpoint
//   await emulator.stop();                                                        // stops it, removes the dir
//
// The emulator keeps its tables in memory. Every emulator started here is stopped by stop(), and, as
// a safety net, synchronously when the process exits and by the script's watchdog (--owner-pid)
// if the process dies without running exit handlers (see service-script.ts).
import { ServiceScript } from './service-script.ts';

export { REPO_ROOT } from './service-script.ts';

// The first start builds the emulator (minutes): the timeout leaves room for it.
const script = new ServiceScript({ script: 'bigquery-emulator.sh', timeoutMs: 900_000, exitStopTimeoutMs: 20_000, keepDirEnv: 'KEEP_BIGQUERY_EMULATOR_DIR' });
export const BIGQUERY_EMULATOR_SCRIPT = script.path;

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

/** Starts an emulator of its own: free ports, a fresh temp dir, the project and its one dataset. */
export async function startBigQueryEmulator(options: StartBigQueryEmulatorOptions = {}): Promise<BigQueryEmulator> {
  const project = options.project ?? 'inserter-test';
  const dataset = options.dataset ?? 'inserter';
  const dir = await script.makeTempDir('inserter-bigquery-');
  let url: string;
  try {
    url = await script.start(dir, ['--project', project, '--dataset', dataset, '--owner-pid', String(process.pid)], /^http:\/\/127\.0\.0\.1:\d+$/);
  } catch (error) {
    await script.stop(dir).catch(() => undefined);
    await script.discard(dir);
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
      await script.stop(dir);
      await script.removeTempDir(dir);
    },
  };
}
