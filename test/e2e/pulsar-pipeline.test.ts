// The real pipeline (src/pipeline/pipeline.ts) reading Apache Pulsar (PulsarSource, PulsarLedgerStore)
// into a real ClickHouse server through the real ClickHouseSink, stopped abruptly mid-stream — its
// ledger producers and consumers cut, nothing in flight acknowledged, the pipeline abandoned — and
// restarted with another batch size (so the restart cuts different batches): every PostHog event is
// in ClickHouse exactly once (count() = uniqExact(uuid) = produced, merges stopped so a duplicate
// stays visible) and the subscription's backlog ends at 0.
// PULSAR_TEST_NO_LEDGER=1 runs it with a ledger store that keeps nothing: it must then fail (the
// mutation check for the ledger; the second instance re-cuts inserted rows under new tokens).
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { after, before, test } from 'node:test';
import { loadDdl } from '../../dev/posthog/ddl.ts';
import { generate } from '../../dev/posthog/generator.ts';
import type { LedgerJson, LedgerStore } from '../../src/ack/ledger.ts';
import { buildConfig } from '../../src/config/load.ts';
import type { DeadLetterSink } from '../../src/deadletter/types.ts';
import { Pipeline } from '../../src/pipeline/pipeline.ts';
import { ClickHouseSink } from '../../src/sink/clickhouse/sink.ts';
import { PulsarLedgerStore } from '../../src/source/pulsar-ledger-store.ts';
import { PulsarSource } from '../../src/source/pulsar-source.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { createPartitionedTopic, produce, startPulsar, subscriptionStats, uniqueTopic, waitUntil, type PulsarBroker } from '../helpers/pulsar.ts';

const TENANT = 'public';
const NAMESPACE = 'default';
const PARTITIONS = 2;
const TOTAL = 5_000;
let broker: PulsarBroker;
let ch: ClickHouseInstance;

before(async () => {
  [broker, ch] = await Promise.all([startPulsar(), startClickHouse({ users: [{ name: 'default', password: '', settings: { optimize_on_insert: '0' } }] })]);
  await ch.query('CREATE DATABASE posthog');
});

after(async () => {
  await Promise.all([broker?.stop(), ch?.stop()]);
});

/** Dead letters are written to Kafka in production (DeadLetterWriter); here none is expected: they are recorded. */
class RecordingDeadLetters implements DeadLetterSink {
  readonly written: string[] = [];
  async write(topic: string, record: { partition: number; offset: bigint }, reason: { code: string }): Promise<void> {
    this.written.push(`${topic}/${record.partition}/${record.offset}: ${reason.code}`);
  }
  async close(): Promise<void> {}
}

/** Keeps nothing (the mutation check). */
class ForgetfulLedgerStore implements LedgerStore {
  async load(): Promise<LedgerJson | undefined> {
    return undefined;
  }
  async save(): Promise<void> {}
  async close(): Promise<void> {}
}

test('the pipeline into ClickHouse, stopped abruptly mid-stream and restarted: every row exactly once, backlog 0', async () => {
  const table = 'events_pulsar';
  const topic = uniqueTopic('events');
  const subscription = `${topic}-inserter`;
  await ch.query((await loadDdl('events', 'posthog')).replace('posthog.events', `posthog.${table}`));
  await ch.query(`SYSTEM STOP MERGES posthog.${table}`);
  await createPartitionedTopic(broker.url, TENANT, NAMESPACE, topic, PARTITIONS);
  const messages = [...generate('clickhouse_events_json', { seed: 21, count: TOTAL, teams: 30 })];
  const publish = async (from: number, to: number): Promise<void> => {
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const mine = messages.slice(from, to).filter((_, i) => (from + i) % PARTITIONS === partition);
      await produce(
        broker.url,
        TENANT,
        NAMESPACE,
        `${topic}-partition-${partition}`,
        mine.map((m) => ({ payload: m.value, ...(m.key === null ? {} : { key: m.key.toString() }) })),
      );
    }
  };
  const rows = async (): Promise<number> => Number((await ch.query(`SELECT count() FROM posthog.${table}`)).trim());
  const noLedger = process.env.PULSAR_TEST_NO_LEDGER === '1';
  const deadLetters = new RecordingDeadLetters();

  const instance = (maxRows: number, commitIntervalMs: number): { pipeline: Pipeline; source: PulsarSource; ledgers: LedgerStore; running: Promise<void> } => {
    const config = buildConfig(
      {
        pulsar: { url: broker.url, tenant: TENANT, namespace: NAMESPACE },
        destinations: [{ id: 'a', url: ch.url, database: 'posthog' }],
        routes: [{ topic, table, destination: 'a', encoding: 'passthrough' }],
        batch: { maxRows, maxAgeMs: 200 },
        commitIntervalMs,
        telemetry: { logLevel: 'silent' },
      },
      tmpdir(),
    );
    const logger = createLogger('silent');
    const metrics = new Metrics();
    const common = { url: broker.url, tenant: TENANT, namespace: NAMESPACE, subscription, retry: { baseMs: 50, factor: 2, capMs: 500 } };
    const source = new PulsarSource({ ...common, topics: Pipeline.topicsOf(config), receiverQueueSize: 200 });
    const ledgers = noLedger ? new ForgetfulLedgerStore() : new PulsarLedgerStore(common);
    const pipeline = new Pipeline({ config, source, sinkFactory: (d) => new ClickHouseSink(d, { logger, metrics }), deadLetters, ledgers, logger, metrics });
    return { pipeline, source, ledgers, running: pipeline.start() };
  };

  // First instance: small batches, no commit during its life (every inserted row is still unacknowledged).
  await publish(0, TOTAL / 2);
  const first = instance(150, 60_000);
  await waitUntil('the first instance to insert some rows', async () => (await rows()) >= 1_000, 60_000);
  // Abrupt stop: its ledger producers and consumers are cut first (as a dead process's connections
  // are), so nothing more is recorded or acknowledged; then the pipeline is abandoned without draining.
  await first.ledgers.close();
  await first.source.close();
  await first.pipeline.destroy();
  await first.running.catch(() => undefined);
  const rowsAtCrash = await rows();
  assert.ok(rowsAtCrash < TOTAL, `stopped mid-stream (${rowsAtCrash} rows)`);

  // Second instance: other batches; the rest is produced while it runs.
  const second = instance(700, 300);
  await publish(TOTAL / 2, TOTAL);
  const distinct = async (): Promise<number> => Number((await ch.query(`SELECT uniqExact(uuid) FROM posthog.${table}`)).trim());
  await waitUntil(`${TOTAL} distinct events`, async () => (await distinct()) === TOTAL, 60_000);
  const backlog = async (): Promise<number[]> =>
    Promise.all(Array.from({ length: PARTITIONS }, async (_, p) => (await subscriptionStats(broker.url, TENANT, NAMESPACE, `${topic}-partition-${p}`, subscription))?.msgBacklog ?? -1));
  await waitUntil('the backlog to reach 0', async () => (await backlog()).every((b) => b === 0), 30_000);
  await second.pipeline.close();
  await second.running;

  assert.equal(await distinct(), TOTAL);
  assert.equal(await rows(), TOTAL, `exactly once after an abrupt stop (${rowsAtCrash} rows were in at the stop)`);
  assert.deepEqual(await backlog(), [0, 0]);
  assert.deepEqual(deadLetters.written, []);
});
