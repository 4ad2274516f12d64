// Review 2026-12-07f: the child process broker.test.ts freezes with SIGSTOP. The real Pipeline with
// PulsarSource and PulsarLedgerStore (through the test's TCP proxy), a warehouse in memory whose
// inserts are reported as JSON lines on stdout, and every record handed over reported too:
//
//   {"read": n}                        n records handed to the pipeline so far
//   {"insert": token, "uuids": [...]}  an insert that landed (reported after it did)
//   {"log": msg}                       the pipeline's warnings
//
// argv: <broker url> <topic> <subscription> <batch maxAgeMs>
import { writeSync } from 'node:fs';
import { Pipeline } from '../../../src/pipeline/pipeline.ts';
import { PulsarLedgerStore } from '../../../src/source/pulsar-ledger-store.ts';
import { PulsarSource } from '../../../src/source/pulsar-source.ts';
import type { CommitPosition, Source, SourceHandler } from '../../../src/source/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { Metrics } from '../../../src/telemetry/metrics.ts';
import { HeldDeadLetters, TokenWarehouse, worldConfig } from '../../helpers/pipeline-world.ts';

const [url, topic, subscription, maxAge] = process.argv.slice(2) as [string, string, string, string];
const say = (line: unknown): void => void writeSync(1, `${JSON.stringify(line)}\n`);

/** Counts the records handed over (the test stops the process once it read them all). */
class Counting implements Source {
  readonly #inner: PulsarSource;
  #read = 0;
  constructor(inner: PulsarSource) {
    this.#inner = inner;
  }
  run(handler: SourceHandler, signal: AbortSignal): Promise<void> {
    return this.#inner.run(
      {
        onRecord: (record) => {
          const pending = handler.onRecord(record);
          say({ read: ++this.#read });
          return pending;
        },
        onAssigned: (refs) => handler.onAssigned(refs),
        onRevoked: (refs) => handler.onRevoked(refs),
        onReset: () => handler.onReset(),
      },
      signal,
    );
  }
  commit(positions: readonly CommitPosition[], signal?: AbortSignal): Promise<void> {
    return this.#inner.commit(positions, signal);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

const common = { url, tenant: 'public', namespace: 'default', subscription, retry: { baseMs: 50, factor: 2, capMs: 200 } };
const config = worldConfig({
  routes: [{ name: 'events', topic, table: 'events', createTable: { enabled: false } }],
  teams: { map: { 1: 'd1' } },
  batch: { maxRows: 10_000, maxBytes: 1 << 24, maxAgeMs: Number(maxAge) },
  commitIntervalMs: 100,
});
const warehouse = new TokenWarehouse();
const sinkFactory = warehouse.sinksWith(async (inner, batch, signal) => {
  const result = await inner.insert(batch, signal);
  say({ insert: batch.token, uuids: warehouse.rows.filter((r) => r.token === batch.token).map((r) => r.uuid) });
  return result;
});
const logger = createLogger('warn', {
  write: (line: string) => {
    say({ log: (JSON.parse(line) as { msg?: string }).msg ?? line });
    return true;
  },
} as unknown as NodeJS.WritableStream);
const pipeline = new Pipeline({
  config,
  source: new Counting(new PulsarSource({ ...common, topics: [topic] })),
  sinkFactory,
  deadLetters: new HeldDeadLetters(),
  ledgers: new PulsarLedgerStore(common),
  logger,
  metrics: new Metrics(),
});
process.once('SIGTERM', () => void pipeline.destroy().finally(() => process.exit(0)));
await pipeline.start();
