// Owns turning the pipeline's status into gauges: the state of each destination (one series per state,
// 1 for the current one, so alerts can select `state="failing"`), the bytes held per destination, and
// the consumer lag of the partitions this replica owns. Refreshed on a timer and before each scrape.
import type { Metrics } from '../telemetry/metrics.ts';
import type { PipelineControl } from './pause-registry.ts';
import { LANE_STATES, destinationStates, type LagLookup } from './status-view.ts';

export type StatusGauges = Pick<Metrics, 'destinationState' | 'destinationInflightBytes' | 'consumerLag'>;

export class StatusMetrics {
  readonly #pipeline: Pick<PipelineControl, 'status'>;
  readonly #gauges: StatusGauges;
  readonly #lag: LagLookup;
  #timer: NodeJS.Timeout | undefined;

  constructor(pipeline: Pick<PipelineControl, 'status'>, gauges: StatusGauges, lag: LagLookup) {
    this.#pipeline = pipeline;
    this.#gauges = gauges;
    this.#lag = lag;
  }

  start(intervalMs: number): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.refresh(), intervalMs);
    this.#timer.unref();
  }

  refresh(): void {
    const status = this.#pipeline.status();
    const g = this.#gauges;
    g.destinationState.reset();
    for (const [destination, current] of destinationStates(status)) {
      for (const state of LANE_STATES) g.destinationState.set({ destination, state }, state === current ? 1 : 0);
    }
    g.destinationInflightBytes.reset();
    for (const [destination, bytes] of Object.entries(status.bufferedBytesByDestination)) g.destinationInflightBytes.set({ destination }, bytes);
    g.consumerLag.reset();
    for (const p of status.partitions) {
      const lag = this.#lag(p.topic, p.partition);
      if (lag !== undefined) g.consumerLag.set({ topic: p.topic, partition: String(p.partition) }, lag);
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
