// --profile DIR: one more drain of an inserter system under `--cpu-prof`; the profile and its top
// self-time functions (also by file) go to DIR/top.txt and to stderr.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT } from '../../test/helpers/kafka.ts';
import { summarizeProfile, type ProfileSummary } from '../lib/cpuprofile.ts';
import { fmt, fmtInt } from '../lib/stats.ts';
import { drain, type DrainResult } from './drain-phase.ts';
import { PROFILE_SYSTEM } from './options.ts';
import { say } from './output.ts';

/** The profiled drain: the .cpuprofile written, its summary, and the drain's own result. */
export interface ProfileRun {
  file: string;
  summary: ProfileSummary;
  drain: DrainResult;
}

export async function profileRun(dir: string): Promise<ProfileRun> {
  mkdirSync(dir, { recursive: true });
  const before = new Set(readdirSync(dir));
  const result = await drain(PROFILE_SYSTEM, 0, { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}` });
  // The profile is written when the process exits (drain stops it gracefully).
  let file: string | undefined;
  for (let i = 0; i < 50 && file === undefined; i++) {
    file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile') && !before.has(f));
    if (file === undefined) await sleep(200);
  }
  if (file === undefined) throw new Error(`no .cpuprofile appeared in ${dir}`);
  const path = join(dir, file);
  const summary = summarizeProfile(path, REPO_ROOT, 30);
  const lines = [
    `profile ${path}: ${fmtInt(summary.totalMs)} ms sampled, idle ${fmtInt(summary.idleMs)} ms, GC ${fmtInt(summary.gcMs)} ms`,
    'self ms   busy%  function',
    ...summary.top.map((t) => `${fmtInt(t.selfMs).padStart(7)}  ${fmt(t.busyPct).padStart(5)}%  ${t.name}`),
    '',
    'by file:',
    ...summary.byFile.map((t) => `${fmtInt(t.selfMs).padStart(7)}  ${fmt(t.busyPct).padStart(5)}%  ${t.name}`),
  ];
  writeFileSync(join(dir, 'top.txt'), `${lines.join('\n')}\n`);
  say(lines.join('\n'));
  return { file: path, summary, drain: result };
}
