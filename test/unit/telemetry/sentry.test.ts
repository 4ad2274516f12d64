// The Sentry reporter with the REAL @sentry/node SDK sending to a local HTTP endpoint that decodes
// envelopes: events carry the delivery context and a scrubbed, truncated sample; they are
// fingerprinted by (class, destination, table); a storm of 1,000 failures becomes one event (the
// next one counts what was suppressed); transient failures wait for the threshold; no credential
// (password, basic auth, URL user info) reaches the wire.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { ErrorReporter, loadSentry, type FailureContext } from '../../../src/telemetry/sentry.ts';
import { startSentryFake, type SentryFake } from '../../helpers/sentry-fake.ts';

const run = promisify(execFile);
let sentry: SentryFake;

before(async () => {
  await loadSentry();
  sentry = await startSentryFake();
});

after(async () => {
  await sentry.close();
});

const context = (over: Partial<FailureContext> = {}): FailureContext => ({
  errorClass: 'authentication',
  destination: 'eu',
  table: 'posthog.events',
  route: 'events->events',
  topic: 'events',
  partition: 3,
  fromOffset: 100n,
  toOffset: 199n,
  team: 42,
  serverCode: 516,
  attempts: 3,
  batchRows: 100,
  action: 'pauseDestination',
  transient: false,
  sample: JSON.stringify({ team_id: 42, event: 'x'.repeat(5000), password: 'hunter2', properties: { api_key: 'phc_secret' } }),
  ...over,
});

test('events carry context, fingerprint and a scrubbed sample; a storm is one event; no credentials', async () => {
  const reporter = new ErrorReporter({ dsn: sentry.dsn, windowMs: 60_000 });
  const error = new Error('Code: 516. DB::Exception: ingest: Authentication failed (url http://ingest:s3cr3t@ch.example:8123, Authorization: Basic aW5nZXN0OnMzY3IzdA==)');
  const t0 = 1_000_000;
  assert.ok(reporter.report(error, context(), t0));
  for (let i = 1; i <= 1000; i++) assert.equal(reporter.report(error, context(), t0 + i), undefined, 'rate-limited');
  // Another table is another issue, not limited by the first.
  assert.ok(reporter.report(error, context({ table: 'posthog.persons' }), t0 + 5));
  // After the window, one more event counting the suppressed ones.
  assert.ok(reporter.report(error, context(), t0 + 61_000));
  assert.equal(await reporter.flush(5_000), true);
  const got = sentry.events();
  assert.equal(got.length, 3, 'three events for 1,003 failures');
  const [first, , third] = got as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
  assert.deepEqual(first.fingerprint, ['inserter', 'authentication', 'eu', 'posthog.events']);
  const tags = first.tags as Record<string, string>;
  assert.equal(tags.error_class, 'authentication');
  assert.equal(tags.clickhouse_code, '516');
  const delivery = (first.contexts as Record<string, Record<string, unknown>>).delivery as Record<string, unknown>;
  assert.equal(delivery.offsets, '100-199');
  assert.equal(delivery.partition, 3);
  assert.equal(delivery.team, 42);
  assert.equal(delivery.attempts, 3);
  assert.equal(delivery.batch_rows, 100);
  assert.equal(delivery.route, 'events->events');
  const sample = delivery.sample_row as string;
  assert.ok(sample.length <= 1024 + 20, 'truncated');
  assert.match(sample, /…\[truncated\]$/);
  assert.equal(((third.contexts as Record<string, Record<string, unknown>>).delivery as Record<string, unknown>).suppressed_since_last_event, 1000);
  const wire = sentry.raw.join('\n');
  for (const secret of ['hunter2', 's3cr3t', 'aW5nZXN0OnMzY3IzdA==', 'phc_secret']) assert.ok(!wire.includes(secret), `no ${secret} on the wire`);
  await reporter.close();
});

test('transient failures are reported only once they persist; no DSN means no client', async () => {
  sentry.received.length = 0;
  const reporter = new ErrorReporter({ dsn: sentry.dsn, transientAttempts: 5 });
  const transient = context({ errorClass: 'too_many_parts', serverCode: 252, transient: true, action: 'retry', sample: '{"password":"x","ok":1}' });
  assert.equal(reporter.report(new Error('Too many parts'), { ...transient, attempts: 1 }), undefined);
  assert.equal(reporter.report(new Error('Too many parts'), { ...transient, attempts: 4 }), undefined);
  assert.ok(reporter.report(new Error('Too many parts'), { ...transient, attempts: 5 }));
  assert.equal(await reporter.flush(5_000), true);
  const got = sentry.events();
  assert.equal(got.length, 1);
  assert.equal(got[0]?.level, 'warning');
  const delivery = (got[0]?.contexts as Record<string, Record<string, unknown>>).delivery ?? {};
  assert.equal(delivery.sample_row, '{"password":"[scrubbed]","ok":1}');
  await reporter.close();
  const none = new ErrorReporter({ dsn: undefined });
  assert.equal(none.enabled, false);
  assert.equal(none.report(new Error('x'), context()), undefined);
});

test('the SDK is not loaded by the pipeline or the CLI until a DSN asks for it', async () => {
  // A fresh process records every module it resolves; the pipeline and the Kafka bus load none of Sentry's.
  const script = `
    import { registerHooks } from 'node:module';
    const seen = [];
    registerHooks({ resolve(specifier, context, next) { if (specifier.startsWith('@sentry/')) seen.push(specifier); return next(specifier, context); } });
    await import(${JSON.stringify(new URL('../../../src/pipeline/pipeline.ts', import.meta.url).href)});
    await import(${JSON.stringify(new URL('../../../src/cli/bus-kafka.ts', import.meta.url).href)});
    const { loadSentry } = await import(${JSON.stringify(new URL('../../../src/telemetry/sentry.ts', import.meta.url).href)});
    const before = seen.length;
    await loadSentry();
    process.stdout.write(JSON.stringify({ before, after: seen.length }));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
  const { before, after } = JSON.parse(stdout) as { before: number; after: number };
  assert.equal(before, 0, 'no Sentry module before loadSentry()');
  assert.ok(after > 0, 'loadSentry() loads the SDK (the hook sees it)');
});
