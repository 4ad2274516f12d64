// Owns how `inserter run` gets its bus when it is Kafka: the checks before anything starts (a
// refused login or an untrusted certificate stops the start; a dead-letter topic that would refuse
// the largest dead letter too), then the source, the dead-letter writer, the exactly-once ledger
// store, the control log and the lag monitor, all on the configured brokers. bus-pulsar.ts is the
// same for Pulsar; cli/main.ts takes either.
import type { KafkaBusConfig } from '../config/load.ts';
import { deadLetterMetrics } from '../deadletter/metrics.ts';
import { InserterError } from '../errors/inserter-error.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import { KafkaSource } from '../source/kafka.ts';
import { KafkaFetchSource } from '../source/kafka-fetch.ts';
import { checkKafkaConnection, describeKafkaSecurity, kafkaConnectionFor, kafkaConnectionHint } from '../source/kafka-connection.ts';
import { KafkaControlLog } from '../source/kafka-control-log.ts';
import { checkDeadLetterTopics, DeadLetterWriter, defaultDeadLetterCheckTimeoutMs } from '../source/kafka-dead-letter-writer.ts';
import { KafkaLagMonitor } from '../source/kafka-lag.ts';
import { KafkaLedgerStore } from '../source/kafka-ledger-store.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { RunBus } from './bus.ts';

/** Checks the brokers and the dead-letter topics; resolves with the exit code when the start must stop. */
export async function checkKafkaBus(config: KafkaBusConfig, logger: Logger): Promise<number | undefined> {
  const security = describeKafkaSecurity(config.kafka);
  const loopback = config.kafka.brokers.every((b) => /^(127\.\d+\.\d+\.\d+|localhost|\[?::1\]?):\d+$/.test(b));
  if (config.kafka.tls === false && !loopback)
    logger.warn({ kafkaSecurity: security }, 'Kafka without TLS: records and any credentials travel unencrypted (kafka.tls, docs/operations.md "Production Kafka")');
  else logger.info({ kafkaSecurity: security }, 'Kafka security');
  logger.info({ readPath: kafkaReadPath(config.kafka), groupProtocol: config.kafka.groupProtocol }, 'Kafka read path');
  // A refused login or an untrusted certificate is fatal before anything starts; a broker that is
  // not reachable yet is only reported (every client retries it).
  try {
    await checkKafkaConnection(
      { brokers: config.kafka.brokers, connection: kafkaConnectionFor(config), clientId: config.kafka.clientId },
      config.kafka,
      AbortSignal.timeout(30_000),
      (error, attempt) => logger.warn({ err: error, attempt, hint: kafkaConnectionHint(error, config.kafka) }, 'Kafka not reachable yet'),
    );
  } catch (error) {
    if (error instanceof InserterError && (error.code === 'INSERTER_KAFKA_AUTH' || error.code === 'INSERTER_KAFKA_TLS')) {
      logger.fatal({ code: error.code }, error.message);
      process.stderr.write(`inserter: ${error.message}\n`);
      return 1;
    }
    logger.warn({ err: error }, 'Kafka not reachable at start; the clients keep retrying');
  }
  // An existing dead-letter topic that refuses the largest dead letter would block its partition;
  // a check without an answer (30 s) stops the start too, naming the brokers and the topics.
  try {
    await checkDeadLetterTopics({
      brokers: config.kafka.brokers,
      connection: kafkaConnectionFor(config),
      clientId: config.kafka.clientId,
      topics: config.routes.map((r) => r.deadLetterTopic ?? `${r.topic}.dlq`),
      maxMessageBytes: config.maxMessageBytes,
      timeoutMs: defaultDeadLetterCheckTimeoutMs,
    });
  } catch (error) {
    const code = error instanceof InserterError ? error.code : 'INSERTER_DLQ_TOPIC_CHECK_FAILED';
    logger.fatal({ code, err: error }, error instanceof Error ? error.message : String(error));
    process.stderr.write(`inserter: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  return undefined;
}

/** `kafka.readPath`, or its default: the fetch path with the classic group protocol, the client's stream with `consumer`. */
export function kafkaReadPath(kafka: KafkaBusConfig['kafka']): 'fetch' | 'stream' {
  return kafka.readPath ?? (kafka.groupProtocol === 'consumer' ? 'stream' : 'fetch');
}

export function openKafkaBus(config: KafkaBusConfig, logger: Logger, metrics: Metrics): RunBus {
  const kafka = { brokers: config.kafka.brokers, connection: kafkaConnectionFor(config), clientId: config.kafka.clientId, groupId: config.kafka.groupId };
  const source = new (kafkaReadPath(config.kafka) === 'fetch' ? KafkaFetchSource : KafkaSource)({
    ...kafka,
    topics: Pipeline.topicsOf(config),
    fetchMaxBytes: config.kafka.fetchMaxBytes,
    fetchMaxWaitMs: config.kafka.fetchMaxWaitMs,
    sessionTimeoutMs: config.kafka.sessionTimeoutMs,
    rebalanceTimeoutMs: config.kafka.rebalanceTimeoutMs,
    groupProtocol: config.kafka.groupProtocol,
    onDecoderFallback: (error) => logger.warn({ err: error }, "LZ4 batches are decoded by the Kafka client's slower decoder from now on: the C decoder failed on a batch"),
  });
  const deadLetters = new DeadLetterWriter({
    brokers: kafka.brokers,
    connection: kafka.connection,
    clientId: kafka.clientId,
    createPartitions: config.kafka.createDeadLetterTopics,
    maxMessageBytes: config.maxMessageBytes,
    retry: config.retry,
    logger,
    onValueOmitted: (topic) => metrics.deadLetterValuesOmitted.inc({ topic }),
    hooks: deadLetterMetrics(metrics.registry),
  });
  const ledgers = config.exactlyOnce.enabled
    ? new KafkaLedgerStore({
        ...kafka,
        topic: config.exactlyOnce.ledgerTopic ?? `${config.kafka.groupId}.inserter-ledger`,
        retry: config.retry,
        groupCoordinator: () => source.groupCoordinator(),
        onPositionNotCommitted: ({ topic, partition, refused, cause }) =>
          logger.warn({ topic, partition, refused, err: cause }, 'the group coordinator did not take positions committed with the ledger; they are committed with a later write'),
      })
    : undefined;
  return {
    source,
    deadLetters,
    ledgers,
    controlLog: (replicaId) => new KafkaControlLog({ ...kafka, topic: config.control.topic ?? `${config.kafka.groupId}.inserter-control`, replicaId, retry: config.retry, logger }),
    lag: () => new KafkaLagMonitor({ ...kafka, topics: Pipeline.topicsOf(config), intervalMs: 10_000, logger }),
  };
}
