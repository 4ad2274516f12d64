// Owns wiring the operations side of one `inserter run` process: the pause registry on the control
// topic, the lag monitor, the status gauges, readiness and the admin listener — started before the
// pipeline consumes (so pauses in force apply to the first record) and closed after it stopped.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../config/load.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { AdminServer } from './admin-server.ts';
import type { ControlLog } from './control-log.ts';
import type { LagSource } from './lag-source.ts';
import { PauseRegistry, type PipelineControl } from './pause-registry.ts';
import { Readiness } from './readiness.ts';
import { StatusMetrics } from './status-metrics.ts';

export interface OperationsDeps {
  readonly config: Config;
  readonly pipeline: PipelineControl;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly version: string;
  /** The bus's side of control (the Kafka adapters in cli/main.ts): the shared control log of this replica, and consumer lag. */
  readonly bus: {
    readonly controlLog: (replicaId: string) => ControlLog;
    readonly lag: () => LagSource;
  };
}

export class Operations {
  readonly registry: PauseRegistry;
  readonly #deps: OperationsDeps;
  readonly #lag: LagSource;
  readonly #statusMetrics: StatusMetrics;
  readonly #readiness: Readiness;
  readonly #admin: AdminServer | undefined;
  #lifecycle: 'starting' | 'running' | 'stopping' = 'starting';
  #closing: Promise<void> | undefined;

  constructor(deps: OperationsDeps) {
    this.#deps = deps;
    const { config, logger, metrics, pipeline } = deps;
    const replicaId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    const log = deps.bus.controlLog(replicaId);
    this.registry = new PauseRegistry({
      log,
      pipeline,
      replicaId,
      logger,
      heartbeatMs: config.control.heartbeatMs,
      replicaTimeoutMs: config.control.replicaTimeoutMs,
      ...(config.control.replicaExpireMs === undefined ? {} : { replicaExpireMs: config.control.replicaExpireMs }),
      gauges: metrics,
    });
    this.#lag = deps.bus.lag();
    const lag = (topic: string, partition: number): number | undefined => this.#lag.lag(topic, partition);
    this.#statusMetrics = new StatusMetrics(pipeline, metrics, lag);
    this.#readiness = new Readiness({
      lifecycle: () => this.#lifecycle,
      controlCaughtUp: () => this.registry.caughtUp,
      controlSilenceMs: () => this.registry.controlSilenceMs(),
      status: () => pipeline.status(),
      stuckAfterMs: 5 * 60_000,
    });
    this.#admin =
      config.admin === undefined
        ? undefined
        : new AdminServer({
            listen: config.admin.listen,
            token: config.admin.token,
            registry: this.registry,
            pipeline,
            readiness: this.#readiness,
            metrics: metrics.registry,
            refreshMetrics: () => this.#statusMetrics.refresh(),
            lag,
            logger,
            version: deps.version,
          });
  }

  /** Reads the control topic to its end (pauses applied) and opens the admin listener. */
  async start(signal: AbortSignal): Promise<void> {
    this.#deps.logger.info({ replica: this.registry.replicaId }, 'reading the control topic');
    await this.registry.start(signal);
    this.#lag.start();
    this.#statusMetrics.start(2_000);
    await this.#admin?.start();
  }

  /** The pipeline consumes now (readiness may turn true). */
  running(): void {
    if (this.#lifecycle === 'starting') this.#lifecycle = 'running';
  }

  /** Shutting down: readiness turns false at once; the admin API keeps answering until close(). */
  stopping(): void {
    this.#lifecycle = 'stopping';
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#lifecycle = 'stopping';
      this.#statusMetrics.close();
      await Promise.allSettled([this.#admin?.close(), this.#lag.close()]);
      await this.registry.close();
    })();
    return this.#closing;
  }
}
