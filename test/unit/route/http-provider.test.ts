import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { inspect } from 'node:util';
import { Registry } from 'prom-client';
import { buildConfig } from '../../../src/config/load.ts';
import { Secret } from '../../../src/config/secret.ts';
import { diffSnapshots, DestinationsError, type DestinationSnapshot } from '../../../src/route/provider.ts';
import { createDestinationProvider } from '../../../src/route/providers/create.ts';
import { HttpDestinationProvider, type HttpProviderOptions } from '../../../src/route/providers/http.ts';
import { StaticConfigProvider } from '../../../src/route/providers/static.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { FakeDestinationsApi, type ApiDocument } from '../../helpers/destinations-api.ts';

const CANARY = 'CANARY-pw-7f3a9c';
const TOKEN = 'CANARY-token-51d0';
const never = new AbortController().signal;

function document(version = 'v1', password = CANARY): ApiDocument {
  return {
    version,
    destinations: [
      { id: 'a', url: 'http://127.0.0.1:8123', user: 'writer', password, limits: { concurrency: 8 } },
      { id: 'b', url: 'https://b.example:8443', password: 'other-pw-1234', database: 'posthog' },
    ],
    teams: [
      { team_id: 1, destination: 'a' },
      { team_id: 2, destination: 'b' },
    ],
  };
}

interface Setup {
  readonly api: FakeDestinationsApi;
  readonly provider: HttpDestinationProvider;
  readonly registry: Registry;
  readonly lines: string[];
  readonly clock: { now: number };
  readonly changes: DestinationSnapshot[];
  /** Runs `work`, expects a DestinationsError, keeps it for the canary check and returns it. */
  failure(work: Promise<unknown>): Promise<DestinationsError>;
  /** Everything that could ever be printed: log lines, metrics text, the errors seen. */
  printed(): Promise<string>;
}

async function setup(t: TestContext, options: Partial<HttpProviderOptions> = {}, start = true): Promise<Setup> {
  const api = new FakeDestinationsApi(document(), TOKEN);
  const url = await api.start();
  const lines: string[] = [];
  const logger = createLogger('debug', new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) }));
  const registry = new Registry();
  const clock = { now: 1_000_000 };
  const provider = new HttpDestinationProvider(
    {
      url,
      token: new Secret(TOKEN),
      pollIntervalMs: 3_600_000,
      timeoutMs: 300,
      teamCacheTtlMs: 60_000,
      negativeCacheTtlMs: 5_000,
      startRetry: { baseMs: 10, factor: 2, capMs: 50, maxElapsedMs: 5_000 },
      allowedHosts: ['*.example'],
      ...options,
    },
    { logger, registry, now: () => clock.now },
  );
  t.after(async () => {
    await provider.close();
    await api.stop();
  });
  const changes: DestinationSnapshot[] = [];
  provider.onChange((s) => changes.push(s));
  const errors: unknown[] = [];
  if (start) await provider.start(never);
  return {
    api,
    provider,
    registry,
    lines,
    clock,
    changes,
    async failure(work) {
      try {
        await work;
      } catch (error) {
        errors.push(error);
        assert.ok(error instanceof DestinationsError, `expected a DestinationsError, got ${inspect(error)}`);
        return error;
      }
      assert.fail('expected a failure');
    },
    async printed() {
      const errorText = errors.map((e) => `${String(e)}\n${inspect(e, { depth: 10 })}\n${JSON.stringify(e)}`).join('\n');
      return `${lines.join('')}\n${await registry.metrics()}\n${errorText}`;
    },
  };
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const found = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = found?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value;
}

test('first load: snapshot with secrets wrapped, limits applied, bearer token sent, metrics set', async (t) => {
  const { api, provider, registry } = await setup(t);
  const snap = provider.snapshot();
  assert.equal(snap.version, 'v1');
  assert.deepEqual(
    [...snap.teams],
    [
      [1, 'a'],
      [2, 'b'],
    ],
  );
  const a = snap.destinations.get('a');
  assert.equal(a?.password.reveal(), CANARY);
  assert.equal(a?.user, 'writer');
  assert.equal(a?.concurrency, 8);
  assert.equal(a?.compression, 'zstd');
  assert.equal(snap.destinations.get('b')?.database, 'posthog');
  assert.equal(snap.destinations.get('b')?.user, 'default');
  assert.equal(api.requests[0]?.authorization, `Bearer ${TOKEN}`);
  assert.equal(api.requests[0]?.ifNoneMatch, undefined);
  assert.equal(await metric(registry, 'inserter_destinations_snapshot_info', { version: 'v1' }), 1);
  assert.equal(await metric(registry, 'inserter_destinations_config_age_seconds'), 0);
  assert.equal(await provider.lookupTeam(2, never), 'b', 'a team in the snapshot needs no request');
  assert.equal(api.requests.length, 1);
});

test('ETag: a 304 keeps the snapshot, fires nothing and counts as a successful check', async (t) => {
  const { api, provider, registry, clock, changes } = await setup(t);
  const before = provider.snapshot();
  clock.now += 7_000;
  assert.equal(await metric(registry, 'inserter_destinations_config_age_seconds'), 7);
  await provider.refresh(never);
  const last = api.requests.at(-1);
  assert.match(last?.ifNoneMatch ?? '', /^"[0-9a-f]{16}"$/);
  assert.equal(provider.snapshot(), before);
  assert.equal(changes.length, 0);
  assert.equal(await metric(registry, 'inserter_destinations_config_age_seconds'), 0);
});

test('a rotated password arrives as a new version: applied without restart, onChange fired', async (t) => {
  const { api, provider, registry, changes } = await setup(t);
  const before = provider.snapshot();
  api.document = document('v2', 'rotated-pw-9e2b');
  await provider.refresh(never);
  assert.equal(changes.length, 1);
  const after = provider.snapshot();
  assert.equal(changes[0], after);
  assert.equal(after.version, 'v2');
  assert.equal(after.destinations.get('a')?.password.reveal(), 'rotated-pw-9e2b');
  assert.deepEqual(diffSnapshots(before, after), { added: [], removed: [], changed: ['a'] });
  assert.equal(await metric(registry, 'inserter_destinations_snapshot_info', { version: 'v2' }), 1);
  assert.equal(await metric(registry, 'inserter_destinations_snapshot_info', { version: 'v1' }), undefined);
  await provider.refresh(never);
  assert.equal(changes.length, 1, 'the same document again changes nothing');
});

test('API down or failing: last good snapshot stays, age grows, failures counted by reason', async (t) => {
  const s = await setup(t);
  const good = s.provider.snapshot();
  s.api.mode = 'down';
  s.clock.now += 10_000;
  assert.equal((await s.failure(s.provider.refresh(never))).reason, 'network');
  s.clock.now += 5_000;
  s.api.mode = 'error';
  const status = await s.failure(s.provider.refresh(never));
  assert.equal(status.reason, 'http_status');
  assert.equal(status.retryable, true);
  s.api.mode = 'unauthorized';
  assert.equal((await s.failure(s.provider.refresh(never))).reason, 'unauthorized');
  assert.equal(s.provider.snapshot(), good);
  assert.equal(await metric(s.registry, 'inserter_destinations_config_age_seconds'), 15);
  assert.equal(await metric(s.registry, 'inserter_destinations_refresh_failures_total', { reason: 'network' }), 1);
  assert.equal(await metric(s.registry, 'inserter_destinations_refresh_failures_total', { reason: 'http_status' }), 1);
  assert.equal(await metric(s.registry, 'inserter_destinations_refresh_failures_total', { reason: 'unauthorized' }), 1);
  s.api.mode = 'ok';
  await s.provider.refresh(never);
  assert.equal(await metric(s.registry, 'inserter_destinations_config_age_seconds'), 0);
  assert.ok(!(await s.printed()).includes(CANARY));
});

test('garbage is rejected whole: not JSON, or JSON with any invalid part; the log names what is wrong', async (t) => {
  const s = await setup(t);
  const good = s.provider.snapshot();
  s.api.mode = 'garbage';
  assert.equal((await s.failure(s.provider.refresh(never))).reason, 'not_json');
  s.api.mode = 'invalid';
  const invalid = await s.failure(s.provider.refresh(never));
  assert.equal(invalid.reason, 'invalid');
  assert.equal(invalid.retryable, false);
  assert.ok(
    invalid.issues.some((i) => i.startsWith('destinations.2.url:')),
    invalid.issues.join('\n'),
  );
  assert.ok(
    invalid.issues.some((i) => i.startsWith('teams.2.destination: unknown destination "nope"')),
    invalid.issues.join('\n'),
  );
  assert.equal(s.provider.snapshot(), good, 'the valid parts of a bad document are not applied either');
  assert.equal(s.changes.length, 0);
  const logged = s.lines.join('');
  assert.match(logged, /destinations\.2\.url/);
  assert.match(logged, /teams\.2\.destination/);
  assert.equal(await metric(s.registry, 'inserter_destinations_refresh_failures_total', { reason: 'invalid' }), 1);
  assert.equal(await metric(s.registry, 'inserter_destinations_refresh_failures_total', { reason: 'not_json' }), 1);
});

test('an answer larger than maxBodyBytes is rejected', async (t) => {
  const s = await setup(t, { maxBodyBytes: 2_000 });
  s.api.document = { ...document('v2'), teams: Array.from({ length: 200 }, (_, i) => ({ team_id: i, destination: 'a' })) };
  assert.equal((await s.failure(s.provider.refresh(never))).reason, 'too_large');
  assert.equal(s.provider.snapshot().version, 'v1');
});

test('config: destinationsApi is optional, its token is a Secret, and it selects the HTTP provider', () => {
  const base = { kafka: { brokers: ['127.0.0.1:9092'] }, routes: [{ topic: 'e', table: 'e' }] };
  const registry = new Registry();
  const logger = createLogger('silent');
  assert.ok(createDestinationProvider(buildConfig(base, '/', {}), { logger, registry }) instanceof StaticConfigProvider);
  const config = buildConfig({ ...base, destinationsApi: { url: 'https://api.example/internal', token: { env: 'DEST_TOKEN' } } }, '/', { DEST_TOKEN: TOKEN });
  assert.equal(config.destinationsApi?.token.reveal(), TOKEN);
  assert.equal(config.destinationsApi?.pollIntervalMs, 30_000);
  assert.ok(!JSON.stringify(config).includes(TOKEN));
  assert.ok(createDestinationProvider(config, { logger, registry }) instanceof HttpDestinationProvider);
  assert.throws(() => buildConfig({ ...base, destinationsApi: { url: 'https://api.example', token: { env: 'NOPE' } } }, '/', {}), /destinationsApi\.token/);
});

test('a slow answer times out and the last good snapshot stays', async (t) => {
  const s = await setup(t, { timeoutMs: 200 });
  const good = s.provider.snapshot();
  s.api.mode = 'slow';
  const started = Date.now();
  const error = await s.failure(s.provider.refresh(never));
  assert.equal(error.reason, 'timeout');
  assert.ok(Date.now() - started < 1_500, 'gave up at the timeout, not when the server answered');
  assert.equal(s.provider.snapshot(), good);
  assert.equal(await metric(s.registry, 'inserter_destinations_refresh_failures_total', { reason: 'timeout' }), 1);
});

test('team lookups: 10 concurrent lookups make 1 request, then cached until the TTL; expired entries survive an outage', async (t) => {
  const s = await setup(t);
  s.api.teams.set(42, 'b');
  s.api.mode = 'slow';
  s.api.slowMs = 50;
  const answers = await Promise.all(Array.from({ length: 10 }, () => s.provider.lookupTeam(42, never)));
  assert.deepEqual(answers, Array(10).fill('b'));
  assert.equal(s.api.requestsTo('/v1/teams/42').length, 1);
  assert.equal(s.api.requestsTo('/v1/teams/42')[0]?.authorization, `Bearer ${TOKEN}`);
  s.api.mode = 'ok';
  assert.equal(await s.provider.lookupTeam(42, never), 'b');
  assert.equal(s.api.requestsTo('/v1/teams/42').length, 1, 'cache hit');
  s.clock.now += 60_001;
  s.api.teams.set(42, 'a');
  assert.equal(await s.provider.lookupTeam(42, never), 'a', 'after the TTL the API is asked again');
  assert.equal(s.api.requestsTo('/v1/teams/42').length, 2);
  s.clock.now += 60_001;
  s.api.mode = 'down';
  assert.equal(await s.provider.lookupTeam(42, never), 'a', 'API down: the expired mapping is used');
  assert.equal(await metric(s.registry, 'inserter_destinations_team_lookups_total', { outcome: 'stale' }), 1);
  assert.equal((await s.failure(s.provider.lookupTeam(43, never))).reason, 'network', 'never seen and API down: a throw, never a guess');
});

test('team lookups: a 404 is cached for the negative TTL', async (t) => {
  const s = await setup(t);
  assert.equal(await s.provider.lookupTeam(7, never), undefined);
  assert.equal(await s.provider.lookupTeam(7, never), undefined);
  assert.equal(s.api.requestsTo('/v1/teams/7').length, 1);
  s.api.teams.set(7, 'a');
  s.clock.now += 4_999;
  assert.equal(await s.provider.lookupTeam(7, never), undefined);
  s.clock.now += 2;
  assert.equal(await s.provider.lookupTeam(7, never), 'a');
  assert.equal(s.api.requestsTo('/v1/teams/7').length, 2);
  assert.equal(await metric(s.registry, 'inserter_destinations_team_lookups_total', { outcome: 'not_found' }), 1);
  assert.equal(await metric(s.registry, 'inserter_destinations_team_lookups_total', { outcome: 'cache_hit' }), 2);
});

test('team lookups: a destination newer than the snapshot triggers one reload; still unknown is a retryable throw', async (t) => {
  const s = await setup(t);
  s.api.teams.set(50, 'c');
  const unknown = await s.failure(s.provider.lookupTeam(50, never));
  assert.equal(unknown.reason, 'unknown_destination');
  assert.equal(unknown.retryable, true);
  s.api.document = { ...document('v2'), destinations: [...document().destinations, { id: 'c', url: 'https://c.example:8443', password: 'c-pw-1234' }] };
  assert.equal(await s.provider.lookupTeam(50, never), 'c');
  assert.equal(s.provider.snapshot().version, 'v2');
  assert.equal(s.changes.length, 1);
});

test('a caller giving up on a lookup does not cancel it for the others', async (t) => {
  const s = await setup(t);
  s.api.teams.set(8, 'a');
  s.api.mode = 'slow';
  s.api.slowMs = 80;
  const impatient = new AbortController();
  const first = s.provider.lookupTeam(8, impatient.signal);
  const second = s.provider.lookupTeam(8, never);
  impatient.abort();
  await assert.rejects(first, { code: 'INSERTER_ABORTED' });
  assert.equal(await second, 'a');
  assert.equal(s.api.requestsTo('/v1/teams/8').length, 1);
});

test('start: retries while the API is down, fails at once when unauthorized or malformed', async (t) => {
  const s = await setup(t, {}, false);
  s.api.mode = 'down';
  setTimeout(() => (s.api.mode = 'ok'), 100);
  await s.provider.start(never);
  assert.equal(s.provider.snapshot().version, 'v1');
  assert.ok(s.api.requests.length > 1);

  const u = await setup(t, {}, false);
  u.api.mode = 'unauthorized';
  const error = await u.failure(u.provider.start(never));
  assert.equal(error.code, 'INSERTER_DESTINATIONS_UNAUTHORIZED');
  assert.equal(u.api.requests.length, 1);
  assert.throws(() => u.provider.snapshot(), DestinationsError);

  const g = await setup(t, {}, false);
  g.api.mode = 'invalid';
  assert.equal((await g.failure(g.provider.start(never))).reason, 'invalid');
});

test('polling applies a new version on its own; close() stops it and is idempotent', async (t) => {
  const s = await setup(t, { pollIntervalMs: 20 });
  const changed = new Promise<DestinationSnapshot>((resolve) => s.provider.onChange(resolve));
  s.api.document = document('v2', 'rotated-pw-9e2b');
  assert.equal((await changed).version, 'v2');
  assert.ok(
    s.api.requestsTo('/v1/destinations').some((r) => r.ifNoneMatch !== undefined),
    'polls send the ETag',
  );
  await s.provider.close();
  await s.provider.close();
  const count = s.api.requests.length;
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.equal(s.api.requests.length, count);
});

test('the canary password and token never appear in logs, metrics or errors, whatever the API does', async (t) => {
  const s = await setup(t, { timeoutMs: 150 });
  s.api.teams.set(3, 'a');
  await s.provider.lookupTeam(3, never);
  for (const mode of ['down', 'slow', 'garbage', 'invalid', 'error', 'unauthorized'] as const) {
    s.api.mode = mode;
    await s.failure(s.provider.refresh(never));
    await s.failure(s.provider.lookupTeam(1000, never));
  }
  s.api.mode = 'ok';
  s.api.document = document('v2', `${CANARY}-next`);
  await s.provider.refresh(never);
  s.provider.snapshot().destinations.forEach((d) => s.lines.push(inspect(d), JSON.stringify(d)));
  const printed = await s.printed();
  assert.ok(s.lines.length > 10, 'the test saw log lines');
  assert.ok(!printed.includes(CANARY), 'password leaked');
  assert.ok(!printed.includes(TOKEN), 'token leaked');
  assert.ok(!printed.includes('other-pw-1234'), 'password leaked');
});
