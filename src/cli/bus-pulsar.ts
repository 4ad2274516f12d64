// Owns how `inserter run` gets its bus when it is Apache Pulsar (docs/design/pulsar.md): a check
// that the broker's web service answers (a refused token stops the start), then the source, the
// dead-letter writer, the exactly-once ledger store, the control log and the lag of the
// subscription, all through the broker's WebSocket and admin APIs. bus-kafka.ts is the same for Kafka.
import type { Config, PulsarConfig } from '../config/load.ts';
import { deadLetterMetrics } from '../deadletter/metrics.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import { PulsarAdmin, PulsarRequestError } from '../source/pulsar-admin.ts';
import { PulsarControlLog } from '../source/pulsar-control-log.ts';
import { PulsarDeadLetterWriter } from '../source/pulsar-dead-letter-writer.ts';
import { PulsarLagSource } from '../source/pulsar-lag.ts';
import { PulsarLedgerStore } from '../source/pulsar-ledger-store.ts';
import { PulsarSource } from '../source/pulsar-source.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { RunBus } from './bus.ts';

function pulsarOf(config: Config): PulsarConfig {
  if (config.pulsar === undefined) throw new Error('bus-pulsar: the configuration names no pulsar bus');
  return config.pulsar;
}

function access(pulsar: PulsarConfig): { url: string; tenant: string; namespace: string; token?: NonNullable<PulsarConfig['token']> } {
  return { url: pulsar.url, tenant: pulsar.tenant, namespace: pulsar.namespace, ...(pulsar.token === undefined ? {} : { token: pulsar.token }) };
}

/**
 * Asks the broker for the partitions of the first topic: a refused token (401/403) stops the start;
 * a broker not reachable yet is only reported (every client retries it). Resolves with the exit code
 * when the start must stop.
 */
export async function checkPulsarBus(config: Config, logger: Logger): Promise<number | undefined> {
  const pulsar = pulsarOf(config);
  logger.info({ pulsar: { url: pulsar.url, tenant: pulsar.tenant, namespace: pulsar.namespace, subscription: pulsar.subscription, token: pulsar.token === undefined ? 'none' : 'set' } }, 'Pulsar bus');
  const admin = new PulsarAdmin(access(pulsar));
  try {
    await admin.partitions(Pipeline.topicsOf(config)[0] ?? 'inserter', AbortSignal.timeout(30_000));
  } catch (error) {
    if (error instanceof PulsarRequestError && (error.status === 401 || error.status === 403)) {
      const message = `Pulsar refused the token at ${pulsar.url} (HTTP ${error.status}): check pulsar.token`;
      logger.fatal({ code: 'INSERTER_CONFIG_INVALID' }, message);
      process.stderr.write(`inserter: ${message}\n`);
      return 1;
    }
    logger.warn({ err: error }, 'Pulsar not reachable at start; the clients keep retrying');
  }
  return undefined;
}

export function openPulsarBus(config: Config, logger: Logger, metrics: Metrics): RunBus {
  const pulsar = pulsarOf(config);
  const base = access(pulsar);
  const topics = Pipeline.topicsOf(config);
  const source = new PulsarSource({
    ...base,
    subscription: pulsar.subscription,
    topics,
    receiverQueueSize: pulsar.receiverQueueSize,
    retry: config.retry,
    onError: (error, attempt, partition) => logger.debug({ err: error, attempt, topic: partition.topic, partition: partition.partition }, 'Pulsar partition not subscribed yet'),
  });
  const deadLetters = new PulsarDeadLetterWriter({
    ...base,
    createTopics: pulsar.createDeadLetterTopics,
    retry: config.retry,
    logger,
    hooks: deadLetterMetrics(metrics.registry),
  });
  const ledgers = config.exactlyOnce.enabled
    ? new PulsarLedgerStore({
        ...base,
        subscription: pulsar.subscription,
        ...(config.exactlyOnce.ledgerTopic === undefined ? {} : { topic: config.exactlyOnce.ledgerTopic }),
        retry: config.retry,
        onWaiting: ({ topic, partition, attempt, error }) =>
          (attempt === 1 || attempt % 10 === 0 ? logger.info.bind(logger) : logger.debug.bind(logger))(
            { topic, partition, attempt, err: error },
            'taking a partition over: waiting for its previous owner to let go of its ledger',
          ),
      })
    : undefined;
  return {
    source,
    deadLetters,
    ledgers,
    // Unlimited retention: the WebSocket reader cannot read compacted, so a size cap would in time
    // trim a pause that was never written again — and forget it (docs/operations.md).
    controlLog: (replicaId) =>
      new PulsarControlLog({ ...base, topic: config.control.topic ?? `${pulsar.subscription}.inserter-control`, replicaId, retry: config.retry, logger, retentionSizeInMB: -1 }),
    lag: () => new PulsarLagSource({ ...base, subscription: pulsar.subscription, topics, intervalMs: 10_000, logger }),
  };
}
