// Owns what "ready" means for one replica (docs/operations.md, "Probes"): the pipeline is running
// (started, not shutting down), the control topic was read to its end and is still heard from, and no
// owned partition is stuck — holding unresolved records while its committed position has not moved
// for `stuckAfterMs`, unless an operator pause or a parked destination holds it on purpose.
import type { PipelineStatus } from '../pipeline/status.ts';

export interface ReadinessInputs {
  readonly lifecycle: () => 'starting' | 'running' | 'stopping';
  readonly controlCaughtUp: () => boolean;
  readonly controlSilenceMs: () => number;
  readonly status: () => PipelineStatus;
  readonly stuckAfterMs: number;
  /** Control topic silence beyond this makes the replica unready (default 15 s). */
  readonly controlSilenceLimitMs?: number;
  readonly now?: () => number;
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly lifecycle: 'starting' | 'running' | 'stopping';
  readonly control: 'reading' | 'following' | 'silent';
  /** Partitions this replica holds state for (they appear once their first record arrives). */
  readonly partitions: number;
  readonly stuck: ReadonlyArray<{ topic: string; partition: number; committed: string; unresolved: number; sinceMs: number }>;
  readonly reasons: readonly string[];
}

export class Readiness {
  readonly #in: ReadinessInputs;
  readonly #now: () => number;
  /** Per partition: the committed position last seen and since when it has not moved. */
  readonly #progress = new Map<string, { committed: string; since: number }>();

  constructor(inputs: ReadinessInputs) {
    this.#in = inputs;
    this.#now = inputs.now ?? Date.now;
  }

  /** Samples progress; call it periodically (a probe calls it too). */
  check(): ReadinessReport {
    const now = this.#now();
    const lifecycle = this.#in.lifecycle();
    const silence = this.#in.controlSilenceMs();
    const control = !this.#in.controlCaughtUp() ? 'reading' : silence > (this.#in.controlSilenceLimitMs ?? 15_000) ? 'silent' : 'following';
    const status = this.#in.status();
    const seen = new Set<string>();
    const stuck: Array<ReadinessReport['stuck'][number]> = [];
    for (const p of status.partitions) {
      const key = `${p.topic}:${p.partition}`;
      seen.add(key);
      const previous = this.#progress.get(key);
      const deliberate = p.lanes.length > 0 && p.lanes.every((l) => l.state === 'paused' || l.state === 'parked');
      if (previous === undefined || previous.committed !== p.committed || p.unresolved === 0 || deliberate) {
        this.#progress.set(key, { committed: p.committed, since: now });
        continue;
      }
      if (now - previous.since >= this.#in.stuckAfterMs) stuck.push({ topic: p.topic, partition: p.partition, committed: p.committed, unresolved: p.unresolved, sinceMs: now - previous.since });
    }
    for (const key of [...this.#progress.keys()]) if (!seen.has(key)) this.#progress.delete(key);
    const reasons: string[] = [];
    if (lifecycle !== 'running') reasons.push(`pipeline is ${lifecycle}`);
    if (control === 'reading') reasons.push('control topic not read to its end yet');
    if (control === 'silent') reasons.push(`control topic silent for ${Math.round(silence / 1000)} s`);
    for (const s of stuck) reasons.push(`${s.topic}/${s.partition} made no progress for ${Math.round(s.sinceMs / 1000)} s with ${s.unresolved} records unresolved`);
    return { ready: reasons.length === 0, lifecycle, control, partitions: status.partitions.length, stuck, reasons };
  }
}
