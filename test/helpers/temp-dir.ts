// Test helper: temporary folders that are removed when the test process exits, unless it failed
// (then they stay for a look at the logs and configs in them). Node's test runner gives each test
// file its own process, so a passing file leaves nothing behind in $TMPDIR.
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];
process.on('exit', (code) => {
  if (code !== 0) return;
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A new folder `$TMPDIR/<prefix>XXXXXX`, removed at exit when the process succeeded. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** tempDir, synchronously. */
export function tempDirSync(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
