// TableSchemas guards exactly-once: a table that cannot deduplicate by token is refused with a
// no_deduplication WarehouseError naming the table, the setting and the route, and re-read at every
// attempt (a DDL fix is seen without a restart); a route with `exactlyOnce: false` is accepted with
// one warning per table; a sink that does not report deduplication is allowed; a cached schema
// accepted for one route never lets another route past the guard.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { buildConfig, type Config, type RouteConfig } from '../../../src/config/load.ts';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { TableSchemas, exactlyOnceFor } from '../../../src/pipeline/table-schemas.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import type { Deduplication, InsertResult, Sink, TableSchema } from '../../../src/sink/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';

const off: Deduplication = {
  engine: 'MergeTree',
  byToken: false,
  setting: 'non_replicated_deduplication_window',
  windowBlocks: 0,
  windowSeconds: undefined,
  reason: 'MergeTree with non_replicated_deduplication_window = 0 keeps no insert tokens; fix: ALTER TABLE app.t MODIFY SETTING non_replicated_deduplication_window = 1000',
};
const on: Deduplication = { ...off, byToken: true, windowBlocks: 1000, reason: undefined };

class FakeSink implements Sink {
  readonly destinationId = 'a';
  deduplication: Deduplication | undefined = off;
  reads = 0;
  async describe(): Promise<TableSchema> {
    this.reads++;
    const columns = [{ name: 'id', type: 'UInt64', defaultKind: '' }];
    return this.deduplication === undefined ? { columns } : { columns, deduplication: this.deduplication };
  }
  async createTable(): Promise<void> {}
  async insert(): Promise<InsertResult> {
    return { writtenRows: undefined };
  }
  async close(): Promise<void> {}
}

function setup(raw: Record<string, unknown> = {}): { config: Config; schemas: TableSchemas; sink: FakeSink; warnings: string[]; route: (name: string) => RouteConfig } {
  const config = buildConfig(
    {
      kafka: { brokers: ['127.0.0.1:9092'] },
      destinations: [{ id: 'a', url: 'http://127.0.0.1:8123' }],
      routes: [
        { name: 'strict', topic: 't', table: 't', destination: 'a' },
        { name: 'loose', topic: 'u', table: 't', destination: 'a', exactlyOnce: false },
      ],
      schemaRefreshMs: 60_000,
      ...raw,
    },
    '/tmp',
  );
  const warnings: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      warnings.push(chunk.toString('utf8'));
      done();
    },
  });
  const route = (name: string): RouteConfig => config.routes.find((r) => r.name === name) as RouteConfig;
  return { config, schemas: new TableSchemas(config, createLogger('warn', stream)), sink: new FakeSink(), warnings, route };
}

const table = { database: 'app', table: 't' };
const signal = new AbortController().signal;

test('refused: a classified, retryable error naming the table, the setting to change and the route', async () => {
  const { schemas, sink, route } = setup();
  await assert.rejects(schemas.encoder(sink, route('strict'), table, signal), (error: unknown) => {
    assert.ok(error instanceof WarehouseError);
    assert.equal(error.errorClass, ErrorClasses.noDeduplication);
    assert.equal(error.code, 'INSERTER_SINK_NO_DEDUPLICATION');
    assert.equal(error.retryable, true);
    assert.match(error.message, /table app\.t on a cannot deduplicate/);
    assert.match(error.message, /ALTER TABLE app\.t MODIFY SETTING non_replicated_deduplication_window = 1000/);
    assert.match(error.message, /exactlyOnce: false on route "strict"/);
    return true;
  });
});

test('a refused table is re-read at every attempt: the fix is seen at once, without a restart', async () => {
  const { schemas, sink, route } = setup();
  await assert.rejects(schemas.encoder(sink, route('strict'), table, signal));
  await assert.rejects(schemas.encoder(sink, route('strict'), table, signal));
  assert.equal(sink.reads, 2, 'not cached while refused');
  sink.deduplication = on;
  const shape = await schemas.encoder(sink, route('strict'), table, signal);
  assert.ok(shape);
  await schemas.encoder(sink, route('strict'), table, signal);
  assert.equal(sink.reads, 3, 'cached once accepted');
});

test('exactlyOnce: false accepts it at-least-once with one warning per table', async () => {
  const { schemas, sink, route, warnings } = setup();
  for (let i = 0; i < 3; i++) await schemas.encoder(sink, route('loose'), table, signal);
  const atLeastOnce = warnings.filter((w) => w.includes('at-least-once'));
  assert.equal(atLeastOnce.length, 1);
  assert.match(atLeastOnce[0] ?? '', /"table":"app\.t"/);
  assert.match(atLeastOnce[0] ?? '', /non_replicated_deduplication_window/);
});

test('a schema cached for an at-least-once route does not let an exactly-once route past', async () => {
  const { schemas, sink, route } = setup();
  await schemas.encoder(sink, route('loose'), table, signal);
  await assert.rejects(schemas.encoder(sink, route('strict'), table, signal), /cannot deduplicate/);
});

test('unknown deduplication (a sink that does not report it) and exactlyOnce.enabled off are allowed', async () => {
  const unknown = setup();
  unknown.sink.deduplication = undefined;
  assert.ok(await unknown.schemas.encoder(unknown.sink, unknown.route('strict'), table, signal));
  const disabled = setup({ exactlyOnce: { enabled: false } });
  assert.ok(await disabled.schemas.encoder(disabled.sink, disabled.route('strict'), table, signal));
  assert.equal(disabled.warnings.length, 0);
  assert.equal(exactlyOnceFor(disabled.config, disabled.route('strict')), false);
  assert.equal(exactlyOnceFor(unknown.config, unknown.route('strict')), true);
  assert.equal(exactlyOnceFor(unknown.config, unknown.route('loose')), false);
});
