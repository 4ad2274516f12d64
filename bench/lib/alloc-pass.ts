// The allocation pass of bench/micro.ts: each case run in a child process with a young generation
// large enough that no scavenge runs during the measured loop (heapUsed + arrayBuffers deltas; a
// GC during the loop is flagged, the figure is then a lower bound).
import { spawnSync } from 'node:child_process';
import { PerformanceObserver } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

export interface AllocCase {
  name: string;
  fn: () => unknown;
  records: number;
}

export interface Alloc {
  name: string;
  heapBytesPerCall: number;
  arrayBufferBytesPerCall: number;
  gcDuringLoop: boolean;
}

/** Runs in the child (`--alloc-child`): measures every case and writes the results to stdout as JSON. */
export async function allocChild(cases: readonly AllocCase[]): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  const out: Alloc[] = [];
  for (const c of cases) {
    const calls = c.records > 0 ? 20 : 2;
    c.fn(); // warm up (compile, lazily created buffers)
    gc();
    await sleep(20); // let freed ArrayBuffers go
    gc();
    let gcs = 0;
    const counter = (): void => void gcs++;
    const before = process.memoryUsage();
    // Collections in the loop show up on the performance timeline (delivered asynchronously).
    const observer = new PerformanceObserver(counter);
    observer.observe({ entryTypes: ['gc'] });
    const keep: unknown[] = [];
    for (let i = 0; i < calls; i++) {
      const result = c.fn();
      keep.push(result instanceof Promise ? await result : result); // a stream case: its whole run
    }
    const after = process.memoryUsage();
    await sleep(50);
    observer.disconnect();
    out.push({
      name: c.name,
      heapBytesPerCall: (after.heapUsed - before.heapUsed) / calls,
      arrayBufferBytesPerCall: (after.arrayBuffers - before.arrayBuffers) / calls,
      gcDuringLoop: gcs > 0 || after.heapUsed < before.heapUsed,
    });
    keep.length = 0;
  }
  process.stdout.write(JSON.stringify(out));
}

/** Runs `script --alloc-child` in a child process and returns what it measured. */
export function measureAllocations(script: string): Alloc[] {
  const child = spawnSync(process.execPath, ['--expose-gc', '--max-semi-space-size=512', '--min-semi-space-size=512', script, '--alloc-child'], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  if (child.status !== 0) throw new Error(`allocation pass failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as Alloc[];
}
