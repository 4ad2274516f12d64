// Test helper: temporary folders that are removed when the test process exits, unless it failed
// (then they stay for a look at the logs and configs in them). Node's test runner gives each test
// file its own process, so a passing file leaves nothing behind in $TMPDIR. Not for a service's
// state dir: ServiceScript (service-script.ts) removes those itself, after stopping the service and
// unless its keep variable is set.
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];

function remember(dir: string): void {
  // Registered at the first folder, after the helpers' own exit handlers (inserter.ts signals its
  // children in one), so that the processes writing into these folders are told to stop first.
  if (made.length === 0) process.on('exit', removeAll);
  made.push(dir);
}

function removeAll(code: number): void {
  if (code !== 0) return;
  for (const dir of made) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // A child still writing into it: the next folder is still removed.
    }
  }
}

/** A new folder `$TMPDIR/<prefix>XXXXXX`, removed at exit when the process succeeded. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  remember(dir);
  return dir;
}

/** tempDir, synchronously. */
export function tempDirSync(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  remember(dir);
  return dir;
}
