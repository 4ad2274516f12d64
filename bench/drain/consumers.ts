// The consumers under test, each draining one topic into posthog.events on one ClickHouse: the
// inserter as a child process (pass-through, typed or the A/B variant) and ClickHouse's own Kafka
// engine driven by repeated INSERT … SELECT. Both answer to the one Consumer interface.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClickHouseInstance } from '../../test/helpers/clickhouse.ts';
import { argv, BATCH, INSERTER, PROTOBUF, VARIANT_BATCH, VARIANT_ENV, VARIANT_INSERTER } from './options.ts';
import { errorText } from './output.ts';
import { freePort, inserters, kafka, registry, startInserter } from './stack.ts';

/** A consumer of one topic into posthog.events on one endpoint, running until stop(). */
export interface Consumer {
  /** Processes whose CPU and memory are the consumer's own (the inserter; none for the engine). */
  pids: number[];
  /** Resolves with the wall-clock ms when the consumer is subscribed and about to read. */
  ready: Promise<number>;
  /** Errors seen so far (engine: failed INSERT … SELECT; inserter: exit). */
  errors: string[];
  inserts(): number;
  /** The inserter's Prometheus text ('' for the engine). */
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

/** The inserter (`bin/inserter run`) reading `topic` with group `groupId`; `variant`: with the --variant-* overrides. */
export async function startInserterConsumer(
  ch: ClickHouseInstance,
  topic: string,
  groupId: string,
  env: NodeJS.ProcessEnv = {},
  encoding: 'passthrough' | 'typed' = 'passthrough',
  variant = false,
): Promise<Consumer> {
  const metricsPort = await freePort();
  const compression = variant && argv['variant-compression'] !== undefined ? argv['variant-compression'] : argv.compression;
  const batch = variant ? VARIANT_BATCH : BATCH;
  const fetchMaxBytes = variant && argv['variant-fetch-max-bytes'] !== undefined ? argv['variant-fetch-max-bytes'] : argv['fetch-max-bytes'];
  const maxBufferedMib = variant && argv['variant-max-buffered-mib'] !== undefined ? argv['variant-max-buffered-mib'] : argv['max-buffered-mib'];
  const proc = await startInserter(
    {
      kafka: { brokers: [kafka?.bootstrap], groupId, clientId: 'bench', ...(fetchMaxBytes === undefined ? {} : { fetchMaxBytes: Number(fetchMaxBytes) }) },
      destinations: [{ id: 'ch', url: ch.url, database: 'posthog', ...(compression === undefined ? {} : { compression }) }],
      ...(maxBufferedMib === undefined ? {} : { maxBufferedBytes: Number(maxBufferedMib) * 1024 * 1024 }),
      ...(batch === undefined || Object.keys(batch).length === 0 ? {} : { batch }),
      ...(variant && argv['variant-no-ledger'] ? { exactlyOnce: { enabled: false } } : {}),
      ...(registry === undefined ? {} : { schemaRegistry: { url: registry.url } }),
      routes: [{ topic, table: 'events', destination: 'ch', createTable: { enabled: false }, encoding, ...(PROTOBUF ? { format: 'protobuf' } : {}) }],
      telemetry: { logLevel: 'info', metricsListen: `127.0.0.1:${metricsPort}` },
    },
    variant ? { ...VARIANT_ENV, ...env } : env,
    variant ? VARIANT_INSERTER.root : INSERTER.root,
  );
  inserters.add(proc);
  const errors: string[] = [];
  void proc.exited.then((code) => {
    if (code !== 0) errors.push(`inserter exited with ${code}`);
  });
  const pid = proc.child.pid;
  if (pid === undefined) throw new Error('inserter did not start');
  const ready = (async (): Promise<number> => {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const log = await proc.log().catch(() => '');
      for (const line of log.split('\n')) {
        if (!line.includes('partitions assigned')) continue;
        const parsed = JSON.parse(line) as { time?: number };
        return parsed.time ?? Date.now();
      }
      if (proc.child.exitCode !== null) throw new Error(`inserter exited during start-up:\n${log.slice(-3000)}`);
      await sleep(50);
    }
    throw new Error(`inserter got no partitions within 60 s:\n${(await proc.log()).slice(-3000)}`);
  })();
  let inserted = 0;
  const metrics = (): Promise<string> =>
    fetch(`http://127.0.0.1:${metricsPort}/metrics`)
      .then((r) => r.text())
      .catch(() => '');
  return {
    pids: [pid],
    ready,
    errors,
    inserts: () => inserted,
    metrics,
    async stop() {
      // The metrics endpoint counts insert requests (for the report).
      const text = await metrics();
      for (const m of text.matchAll(/^inserter_inserts_total\{[^}]*outcome="ok"[^}]*\} (\d+)/gm)) inserted += Number(m[1]);
      const code = await Promise.race([proc.stop(), sleep(30_000).then(() => 'timeout' as const)]);
      if (code === 'timeout') await proc.kill();
      inserters.delete(proc);
    },
  };
}

/**
 * The Kafka engine baseline: a Kafka table over the topic and a loop of INSERT … SELECT from it.
 * `kafka_commit_on_select=1` makes each direct SELECT commit what it read (without it chDB's
 * consumer never commits, and a later SELECT reads nothing). One SELECT reads one poll batch
 * (kafka_poll_max_batch_size, default max_block_size = 65,409 messages).
 */
export async function startEngineConsumer(ch: ClickHouseInstance, topic: string, groupId: string, withMs: boolean): Promise<Consumer & { insertSql: string }> {
  const columns = (await ch.query("SELECT name, type FROM system.columns WHERE database = 'posthog' AND table = 'events' AND default_kind = '' ORDER BY position FORMAT TSVRaw"))
    .trim()
    .split('\n')
    .map((line) => line.split('\t') as [string, string])
    .filter(([name]) => !name.startsWith('_'));
  const quote = (name: string): string => `\`${name.replaceAll('`', '\\`')}\``;
  await ch.query(
    `CREATE TABLE posthog.kafka_events (${columns.map(([n, t]) => `${quote(n)} ${t}`).join(', ')}) ENGINE = Kafka SETTINGS ` +
      `kafka_broker_list = '${kafka?.bootstrap}', kafka_topic_list = '${topic}', kafka_group_name = '${groupId}', ` +
      `kafka_format = 'JSONEachRow', kafka_skip_broken_messages = 1000, kafka_commit_on_select = 1, input_format_skip_unknown_fields = 1`,
  );
  const meta = ['_timestamp', '_offset', ...(withMs ? ['_timestamp_ms'] : [])];
  const names = [...columns.map(([n]) => quote(n)), ...meta].join(', ');
  const insertSql = `INSERT INTO posthog.events (${names}) SELECT ${names} FROM posthog.kafka_events SETTINGS stream_like_engine_allow_direct_select = 1`;
  const errors: string[] = [];
  let inserts = 0;
  let stopping = false;
  let resolveReady: (ms: number) => void = () => undefined;
  const ready = new Promise<number>((r) => (resolveReady = r));
  const loop = (async (): Promise<void> => {
    let failuresInARow = 0;
    while (!stopping) {
      resolveReady(Date.now());
      try {
        await ch.query(insertSql);
        inserts++;
        failuresInARow = 0;
      } catch (error) {
        if (stopping) break;
        errors.push(errorText(error));
        if (++failuresInARow >= 5) throw new Error(`Kafka engine: 5 failed INSERT … SELECT in a row; last: ${errorText(error)}`);
        await sleep(500);
      }
    }
  })();
  loop.catch((error: unknown) => errors.push(errorText(error)));
  return {
    pids: [],
    ready,
    errors,
    inserts: () => inserts,
    metrics: async () => '',
    insertSql,
    async stop() {
      stopping = true;
      // A SELECT waiting on an empty topic returns after ~10 empty polls; the endpoint is stopped next anyway.
      await Promise.race([loop.catch(() => undefined), sleep(15_000)]);
    },
  };
}
