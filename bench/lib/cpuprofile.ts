// Reads a V8 .cpuprofile (node --cpu-prof) and lists the functions with the most self time.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  /** `name (file:line)` with the file relative to root. */
  name: string;
  selfMs: number;
  /** Share of all sampled time, including (idle) and (program), in percent. */
  pct: number;
  /** Share of the busy time (excluding (idle)), in percent. */
  busyPct: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  gcMs: number;
  top: SelfTime[];
  /** Self time grouped by file (or by native category), busiest first. */
  byFile: SelfTime[];
}

function label(frame: CallFrame, root: string): { name: string; file: string } {
  const fn = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  if (frame.url === '') return { name: fn, file: fn.startsWith('(') ? fn : '(native)' };
  // A `--rev` export lives in a temp dir: show its files as the repository's own.
  let file = frame.url.replace(/^file:\/\//, '').replace(/^.*\/inserter-bench-rev-[^/]+\//, `${root}/`);
  if (file.startsWith('/')) file = relative(root, file);
  return { name: `${fn} (${file}:${frame.lineNumber + 1})`, file };
}

export function summarizeProfile(path: string, root: string, topN = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time since the previous sample; attribute it to sample i.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    if (id === undefined) continue;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byName = new Map<string, number>();
  const byFileUs = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let gc = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const { name, file } = label(node.callFrame, root);
    total += us;
    if (name === '(idle)') idle += us;
    if (name === '(garbage collector)') gc += us;
    byName.set(name, (byName.get(name) ?? 0) + us);
    byFileUs.set(file, (byFileUs.get(file) ?? 0) + us);
  }
  const busy = total - idle;
  const rank = (map: Map<string, number>, n: number): SelfTime[] =>
    [...map]
      .filter(([name]) => name !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, selfMs: us / 1000, pct: (us / total) * 100, busyPct: (us / busy) * 100 }));
  return { totalMs: total / 1000, idleMs: idle / 1000, gcMs: gc / 1000, top: rank(byName, topN), byFile: rank(byFileUs, 15) };
}

if (import.meta.main) {
  const [file, n] = process.argv.slice(2);
  if (file === undefined) {
    process.stderr.write('usage: node bench/lib/cpuprofile.ts FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  const summary = summarizeProfile(file, process.cwd(), n === undefined ? 25 : Number(n));
  process.stdout.write(`total ${summary.totalMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms, GC ${summary.gcMs.toFixed(0)} ms\n`);
  for (const t of summary.top) process.stdout.write(`${t.selfMs.toFixed(0).padStart(8)} ms ${t.busyPct.toFixed(1).padStart(5)}%  ${t.name}\n`);
  process.stdout.write('\nby file:\n');
  for (const t of summary.byFile) process.stdout.write(`${t.selfMs.toFixed(0).padStart(8)} ms ${t.busyPct.toFixed(1).padStart(5)}%  ${t.name}\n`);
}
