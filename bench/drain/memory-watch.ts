// The inserter's memory during a drain as it reports it on /metrics (RSS, V8 heap, external
// buffers, rows held): a watch that keeps the sample with the highest RSS, and its one-line text.
import { mib } from '../lib/stats.ts';

/** The inserter's memory as its /metrics says (prom-client defaults + inserter_buffered_bytes), in bytes. */
export interface MemorySample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  buffered: number;
  /** Idle body blocks kept for reuse (inserter_body_blocks_idle_bytes; NaN before it existed). */
  idleBlocks: number;
}

export function describeMemory(m: MemorySample): string {
  return `RSS ${mib(m.rss)}, V8 heap used ${mib(m.heapUsed)} of ${mib(m.heapTotal)}, external (Buffers, wasm) ${mib(m.external)}, rows held (inserter_buffered_bytes) ${mib(m.buffered)}${Number.isFinite(m.idleBlocks) ? `, idle body blocks ${mib(m.idleBlocks)}` : ''}`;
}

/** Polls the inserter's /metrics every 500 ms and keeps the sample with the highest RSS. */
export class MemoryWatch {
  readonly #metrics: () => Promise<string>;
  #peak: MemorySample | undefined;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> = Promise.resolve();

  constructor(metrics: () => Promise<string>) {
    this.#metrics = metrics;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#polling = this.#poll();
    }, 500);
  }

  async stop(): Promise<MemorySample | undefined> {
    clearInterval(this.#timer);
    await this.#polling;
    return this.#peak;
  }

  async #poll(): Promise<void> {
    const text = await this.#metrics();
    const value = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)`, 'm').exec(text)?.[1] ?? Number.NaN);
    const sample: MemorySample = {
      rss: value('process_resident_memory_bytes'),
      heapUsed: value('nodejs_heap_size_used_bytes'),
      heapTotal: value('nodejs_heap_size_total_bytes'),
      external: value('nodejs_external_memory_bytes'),
      buffered: value('inserter_buffered_bytes'),
      idleBlocks: value('inserter_body_blocks_idle_bytes'),
    };
    if (Number.isFinite(sample.rss) && (this.#peak === undefined || sample.rss > this.#peak.rss)) this.#peak = sample;
  }
}
