// Process accounting for the benchmarks, straight from /proc (Linux only): CPU seconds
// (utime+stime of every thread of a process), resident memory now and at its peak, and a sampler
// that watches a set of processes while a phase runs. Also the machine description for reports.
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, freemem, release, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';

/** Clock ticks per second for /proc/PID/stat (`getconf CLK_TCK`; 100 on every Linux we run). */
const CLK_TCK = ((): number => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** utime+stime of a process (all its threads), in seconds; undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces: split after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLK_TCK;
}

/**
 * CPU seconds of each live thread of a process whose name (`/proc/PID/task/TID/comm`, at most 15
 * characters) passes `select`, by thread id; empty once the process is gone.
 */
export function threadCpuSeconds(pid: number, select: (name: string) => boolean): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    if (!select(name)) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), (Number(fields[11]) + Number(fields[12])) / CLK_TCK);
  }
  return out;
}

/** A HotSpot JIT compiler thread (`C1 CompilerThread0`, `C2 CompilerThre…`): warm-up, not work. */
export function isJitCompilerThread(name: string): boolean {
  return name.startsWith('C1 CompilerThre') || name.startsWith('C2 CompilerThre');
}

export interface Memory {
  /** VmRSS in bytes. */
  rss: number;
  /** VmHWM (peak RSS over the process's life) in bytes. */
  hwm: number;
}

export function memory(pid: number): Memory | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    return match?.[1] === undefined ? 0 : Number(match[1]) * 1024;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** The command line of a process, or '' if it is gone. */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

export interface GroupUsage {
  /** CPU seconds used by the group's processes since the sampler started. */
  cpuSeconds: number;
  /** Highest sampled sum of VmRSS over the group's processes, bytes. */
  peakRssBytes: number;
  /** Sum over the group's processes of each one's VmHWM at the end (peak over its life), bytes. */
  hwmBytes: number;
  /** With `threads` for this group: CPU seconds of the selected threads since start (see ProcSampler). */
  selectedThreadsCpuSeconds?: number;
}

/**
 * Watches named groups of processes (e.g. "inserter": [pid], "clickhouse": [front, engine]). CPU
 * is measured as the difference between start() and stop(); RSS is sampled every intervalMs.
 */
export class ProcSampler {
  readonly #groups: Map<string, number[]>;
  readonly #cpuAtStart = new Map<number, number>();
  readonly #cpuLast = new Map<number, number>();
  readonly #peak = new Map<string, number>();
  readonly #hwm = new Map<number, number>();
  readonly #intervalMs: number;
  readonly #threads: Map<string, (name: string) => boolean>;
  /** Per selected thread: CPU at start (0 for threads born later) and the last value seen. */
  readonly #threadAtStart = new Map<string, Map<number, number>>();
  readonly #threadLast = new Map<string, Map<number, number>>();
  #timer: NodeJS.Timeout | undefined;

  /**
   * `threads` names, per group, which of its processes' threads to account separately (e.g. a JVM's
   * JIT compilers). A selected thread that ends keeps the CPU of the last sample that saw it.
   */
  constructor(groups: Record<string, number[]>, intervalMs = 200, threads: Record<string, (name: string) => boolean> = {}) {
    this.#groups = new Map(Object.entries(groups));
    this.#intervalMs = intervalMs;
    this.#threads = new Map(Object.entries(threads));
  }

  start(): void {
    for (const pids of this.#groups.values()) {
      for (const pid of pids) {
        const cpu = cpuSeconds(pid) ?? 0;
        this.#cpuAtStart.set(pid, cpu);
        this.#cpuLast.set(pid, cpu);
      }
    }
    for (const [name, select] of this.#threads) {
      const atStart = new Map<number, number>();
      for (const pid of this.#groups.get(name) ?? []) for (const [tid, cpu] of threadCpuSeconds(pid, select)) atStart.set(tid, cpu);
      this.#threadAtStart.set(name, atStart);
      this.#threadLast.set(name, new Map());
    }
    this.sample();
    this.#timer = setInterval(() => this.sample(), this.#intervalMs);
    this.#timer.unref();
  }

  sample(): void {
    for (const [name, pids] of this.#groups) {
      let rss = 0;
      for (const pid of pids) {
        const mem = memory(pid);
        if (mem !== undefined) {
          rss += mem.rss;
          this.#hwm.set(pid, mem.hwm);
        }
        const cpu = cpuSeconds(pid);
        if (cpu !== undefined) this.#cpuLast.set(pid, cpu);
      }
      this.#peak.set(name, Math.max(this.#peak.get(name) ?? 0, rss));
      const select = this.#threads.get(name);
      const last = this.#threadLast.get(name);
      if (select !== undefined && last !== undefined) for (const pid of pids) for (const [tid, cpu] of threadCpuSeconds(pid, select)) last.set(tid, cpu);
    }
  }

  /** CPU seconds of the selected threads of one group since start(). */
  #selectedCpu(name: string): number | undefined {
    const last = this.#threadLast.get(name);
    if (last === undefined) return undefined;
    const atStart = this.#threadAtStart.get(name);
    let total = 0;
    for (const [tid, cpu] of last) total += cpu - (atStart?.get(tid) ?? 0);
    return total;
  }

  /** CPU seconds used so far by one group (since start()). */
  cpu(name: string): number {
    let total = 0;
    for (const pid of this.#groups.get(name) ?? []) total += (this.#cpuLast.get(pid) ?? 0) - (this.#cpuAtStart.get(pid) ?? 0);
    return total;
  }

  stop(): Record<string, GroupUsage> {
    this.sample();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    const out: Record<string, GroupUsage> = {};
    for (const [name, pids] of this.#groups) {
      const selected = this.#selectedCpu(name);
      out[name] = {
        cpuSeconds: this.cpu(name),
        peakRssBytes: this.#peak.get(name) ?? 0,
        hwmBytes: pids.reduce((sum, pid) => sum + (this.#hwm.get(pid) ?? 0), 0),
        ...(selected === undefined ? {} : { selectedThreadsCpuSeconds: selected }),
      };
    }
    return out;
  }
}

export interface MachineInfo {
  cpus: number;
  model: string;
  memoryBytes: number;
  freeMemoryBytes: number;
  node: string;
  kernel: string;
  loadAverage: string;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  let loadAverage = '';
  try {
    loadAverage = readFileSync('/proc/loadavg', 'utf8').trim();
  } catch {
    // not Linux
  }
  return {
    cpus: list.length,
    model: list[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    freeMemoryBytes: freemem(),
    node: process.version,
    kernel: release(),
    loadAverage,
  };
}

/** CPU time stolen by the hypervisor and spent idle, machine-wide, since boot (from /proc/stat), in seconds. */
export function machineCpuTimes(): { busy: number; idle: number; steal: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
    return { busy: (user + nice + system + irq + softirq) / CLK_TCK, idle: (idle + iowait) / CLK_TCK, steal: steal / CLK_TCK };
  } catch {
    return { busy: 0, idle: 0, steal: 0 };
  }
}
