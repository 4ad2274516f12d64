// Destinations served by the API are trusted only inside the allowlist (hosts, schemes, TLS files in
// tlsDir, client certificates with their CA): one outside is rejected whole, the last good one with
// its id stays or its teams are held, counted in inserter_destinations_rejected_total{destination,
// reason} and named in one log line, with no secret printed. Against the local destinations-API fake.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { inspect } from 'node:util';
import { Registry } from 'prom-client';
import { buildConfig } from '../../../src/config/load.ts';
import { Secret } from '../../../src/config/secret.ts';
import { ConfigError } from '../../../src/errors/inserter-error.ts';
import { DestinationsError } from '../../../src/route/provider.ts';
import { createDestinationProvider } from '../../../src/route/providers/create.ts';
import { HttpDestinationProvider, type HttpProviderOptions } from '../../../src/route/providers/http.ts';
import { checkDestination, hostMatches } from '../../../src/route/providers/trust.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { FakeDestinationsApi, type ApiDestination, type ApiDocument } from '../../helpers/destinations-api.ts';
import { tempDirSync } from '../../helpers/temp-dir.ts';

const TOKEN = 'CANARY-trust-token-3c1e';
const PW = 'CANARY-trust-pw-8d2b';
const EVIL_PW = 'CANARY-trust-evil-pw-0a9f';
const never = new AbortController().signal;

function doc(version: string, extra: ApiDestination[] = [], extraTeams: { team_id: number; destination: string }[] = []): ApiDocument {
  return {
    version,
    destinations: [{ id: 'local', url: 'http://127.0.0.1:8123', password: PW }, ...extra],
    teams: [{ team_id: 1, destination: 'local' }, ...extraTeams],
  };
}

async function setup(t: TestContext, document: ApiDocument, options: Partial<HttpProviderOptions> = {}) {
  const api = new FakeDestinationsApi(document, TOKEN);
  const url = await api.start();
  const lines: string[] = [];
  const logger = createLogger('debug', new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) }));
  const registry = new Registry();
  const provider = new HttpDestinationProvider(
    {
      url,
      token: new Secret(TOKEN),
      pollIntervalMs: 3_600_000,
      timeoutMs: 1_000,
      teamCacheTtlMs: 60_000,
      negativeCacheTtlMs: 5_000,
      startRetry: { baseMs: 10, factor: 2, capMs: 50, maxElapsedMs: 2_000 },
      ...options,
    },
    { logger, registry },
  );
  t.after(async () => {
    await provider.close();
    await api.stop();
  });
  await provider.start(never);
  const rejectedCount = async (destination: string, reason: string): Promise<number | undefined> =>
    (await registry.getMetricsAsJSON()).find((m) => m.name === 'inserter_destinations_rejected_total')?.values.find((v) => v.labels.destination === destination && v.labels.reason === reason)?.value;
  const rejectionLines = (destination: string): string[] => lines.filter((l) => l.includes(`destination ${destination} rejected`));
  const printed = async (): Promise<string> => `${lines.join('')}\n${await registry.metrics()}`;
  return { api, provider, lines, rejectedCount, rejectionLines, printed };
}

async function rejectedLookup(provider: HttpDestinationProvider, team: number): Promise<DestinationsError> {
  try {
    await provider.lookupTeam(team, never);
  } catch (error) {
    assert.ok(error instanceof DestinationsError, inspect(error));
    return error;
  }
  assert.fail(`team ${team} should be held`);
}

test('host patterns: *.domain matches names below it only; exact hosts match exactly, case-insensitive', () => {
  assert.ok(hostMatches('eu-1.clickhouse.cloud', '*.clickhouse.cloud'));
  assert.ok(hostMatches('a.b.CLICKHOUSE.cloud', '*.clickhouse.cloud'));
  assert.ok(!hostMatches('clickhouse.cloud', '*.clickhouse.cloud'));
  assert.ok(!hostMatches('evilclickhouse.cloud', '*.clickhouse.cloud'));
  assert.ok(!hostMatches('clickhouse.cloud.evil.example', '*.clickhouse.cloud'));
  assert.ok(hostMatches('ch.internal', 'CH.internal'));
  assert.ok(!hostMatches('x.ch.internal', 'ch.internal'));
});

test('default allowlist (empty): a destination on a host that is not loopback nor a YAML host is rejected, its teams held, counted and logged once', async (t) => {
  const s = await setup(t, doc('v1', [{ id: 'evil', url: 'https://rows.attacker.example:8443', password: EVIL_PW }], [{ team_id: 2, destination: 'evil' }]));
  const snap = s.provider.snapshot();
  assert.deepEqual([...snap.destinations.keys()], ['local'], 'loopback is allowed, the other host is not');
  assert.equal(snap.teams.get(2), undefined);
  const held = await rejectedLookup(s.provider, 2);
  assert.equal(held.reason, 'rejected');
  assert.equal(held.code, 'INSERTER_DESTINATIONS_REJECTED');
  assert.equal(held.retryable, true, 'held and retried, never routed elsewhere');
  assert.equal(s.api.requestsTo('/v1/teams/2').length, 0, 'a held team is not looked up elsewhere');
  assert.equal(await s.rejectedCount('evil', 'host'), 1);
  const [line, ...more] = s.rejectionLines('evil');
  assert.equal(more.length, 0, 'one log line');
  assert.match(line ?? '', /rows\.attacker\.example is not allowed/);
  assert.match(line ?? '', /"teams":\[2\]/);
  assert.match(line ?? '', /its teams are held/);
  await s.provider.refresh(never);
  const { version, destinations, teams } = s.api.document;
  s.api.document = { teams, destinations, version }; // the same content in another order: a 200, not a 304
  await s.provider.refresh(never);
  assert.equal(s.api.requestsTo('/v1/destinations').length, 3);
  assert.equal(await s.rejectedCount('evil', 'host'), 1, 'the same document again is not counted again');
  assert.equal(s.rejectionLines('evil').length, 1);
  const printed = await s.printed();
  assert.ok(!printed.includes(EVIL_PW) && !printed.includes(PW) && !printed.includes(TOKEN), 'no secret printed');
});

test('the hosts of the YAML destinations are allowed; the config passes them to the provider', async (t) => {
  const api = new FakeDestinationsApi(doc('v1', [{ id: 'yaml-host', url: 'https://ch.corp.example:8443', password: PW }]), TOKEN);
  const url = await api.start();
  const registry = new Registry();
  const config = buildConfig(
    {
      kafka: { brokers: ['127.0.0.1:9092'] },
      destinations: [{ id: 'y', url: 'https://ch.corp.example:8443' }],
      destinationsApi: { url, token: TOKEN },
      routes: [{ topic: 't', table: 't' }],
    },
    '/',
    {},
  );
  const provider = createDestinationProvider(config, { logger: createLogger('silent'), registry });
  t.after(async () => {
    await provider.close();
    await api.stop();
  });
  await provider.start(never);
  assert.ok(provider.snapshot().destinations.has('yaml-host'));
});

test('a destination moved outside the allowlist keeps its last good settings (password included); the rest of the document applies', async (t) => {
  const good: ApiDestination = { id: 'eu', url: 'https://eu-1.clickhouse.cloud:8443', password: PW };
  const s = await setup(t, doc('v1', [good], [{ team_id: 2, destination: 'eu' }]), { allowedHosts: ['*.clickhouse.cloud'] });
  assert.equal(s.provider.snapshot().destinations.get('eu')?.url, good.url);
  s.api.document = doc(
    'v2',
    [{ id: 'eu', url: 'https://clickhouse.cloud.attacker.example:8443', password: EVIL_PW }],
    [
      { team_id: 2, destination: 'eu' },
      { team_id: 3, destination: 'eu' },
    ],
  );
  await s.provider.refresh(never);
  const snap = s.provider.snapshot();
  assert.equal(snap.version, 'v2', 'the valid parts of the document apply');
  assert.equal(snap.destinations.get('eu')?.url, good.url, 'last good destination kept');
  assert.equal(snap.destinations.get('eu')?.password.reveal(), PW, 'its password is not sent anywhere new');
  assert.equal(snap.teams.get(3), 'eu');
  assert.equal(await s.rejectedCount('eu', 'host'), 1);
  const [line] = s.rejectionLines('eu');
  assert.match(line ?? '', /"kept":"last good destination"/);
  assert.match(line ?? '', /"teams":\[2,3\]/);
  assert.ok(!(await s.printed()).includes(EVIL_PW));
});

test('schemes: HTTPS only, plain HTTP to loopback, or anywhere allowed with allowHttp', async (t) => {
  const plain: ApiDestination = { id: 'plain', url: 'http://eu-1.clickhouse.cloud:8123', password: PW };
  const strict = await setup(t, doc('v1', [plain], [{ team_id: 2, destination: 'plain' }]), { allowedHosts: ['*.clickhouse.cloud'] });
  assert.ok(strict.provider.snapshot().destinations.has('local'), 'http to loopback is allowed');
  assert.ok(!strict.provider.snapshot().destinations.has('plain'));
  assert.equal(await strict.rejectedCount('plain', 'scheme'), 1);
  assert.match(strict.rejectionLines('plain')[0] ?? '', /plain http to eu-1\.clickhouse\.cloud.*allowHttp/);
  assert.equal((await rejectedLookup(strict.provider, 2)).reason, 'rejected');
  const lax = await setup(t, doc('v1', [plain]), { allowedHosts: ['*.clickhouse.cloud'], allowHttp: true });
  assert.ok(lax.provider.snapshot().destinations.has('plain'));
  assert.equal(await lax.rejectedCount('plain', 'scheme'), undefined);
});

test('TLS files from the API: only inside tlsDir (symbolic links followed), and a client certificate only with its CA', async (t) => {
  const root = tempDirSync('inserter-trust-');
  const tlsDir = join(root, 'tls');
  mkdirSync(tlsDir);
  for (const name of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(tlsDir, name), 'x');
  writeFileSync(join(root, 'outside.pem'), 'x');
  symlinkSync(join(root, 'outside.pem'), join(tlsDir, 'escape.pem'));
  const d = (id: string, tls: ApiDestination['tls']): ApiDestination => ({ id, url: `https://${id}.clickhouse.cloud:8443`, password: PW, tls });
  const destinations = [
    d('inside', { caFile: 'ca.pem', certFile: join(tlsDir, 'cert.pem'), keyFile: 'key.pem' }),
    d('absolute', { caFile: '/etc/ssl/certs/ca-certificates.crt' }),
    d('dotdot', { caFile: '../outside.pem' }),
    d('symlink', { caFile: 'escape.pem' }),
    d('nocafile', { certFile: 'cert.pem', keyFile: 'key.pem' }),
  ];
  const s = await setup(t, doc('v1', destinations), { allowedHosts: ['*.clickhouse.cloud'], tlsDir });
  const snap = s.provider.snapshot();
  assert.deepEqual([...snap.destinations.keys()].sort(), ['inside', 'local']);
  assert.deepEqual(snap.destinations.get('inside')?.tls, { caFile: join(tlsDir, 'ca.pem'), certFile: join(tlsDir, 'cert.pem'), keyFile: join(tlsDir, 'key.pem') }, 'paths made absolute inside tlsDir');
  for (const id of ['absolute', 'dotdot', 'symlink']) assert.equal(await s.rejectedCount(id, 'tls_dir'), 1, id);
  assert.equal(await s.rejectedCount('nocafile', 'tls_incomplete'), 1);
  assert.match(s.rejectionLines('nocafile')[0] ?? '', /tls\.caFile: a client certificate/);
  assert.match(s.rejectionLines('dotdot')[0] ?? '', /tls\.caFile: .* is outside destinationsApi\.tlsDir/);
  const none = await setup(t, doc('v1', [d('inside', { caFile: 'ca.pem' })]), { allowedHosts: ['*.clickhouse.cloud'] });
  assert.ok(!none.provider.snapshot().destinations.has('inside'));
  assert.match(none.rejectionLines('inside')[0] ?? '', /destinationsApi\.tlsDir is not set/);
});

test('a team looked up one by one whose destination was rejected is held with the reason, not "unknown destination"', async (t) => {
  const s = await setup(t, doc('v1', [{ id: 'evil', url: 'https://evil.example:8443', password: EVIL_PW }]));
  s.api.teams.set(9, 'evil');
  const error = await rejectedLookup(s.provider, 9);
  assert.equal(error.reason, 'rejected');
  assert.match(error.message, /destination "evil" was rejected \(host/);
});

test('config: destinationsApi.allowedHosts, allowHttp and tlsDir have strict defaults and are validated, naming the field', () => {
  const base = { kafka: { brokers: ['127.0.0.1:9092'] }, routes: [{ topic: 'e', table: 'e' }] };
  const config = buildConfig({ ...base, destinationsApi: { url: 'https://api.example', token: 't' } }, '/', {});
  assert.deepEqual(config.destinationsApi?.allowedHosts, []);
  assert.equal(config.destinationsApi?.allowHttp, false);
  assert.equal(config.destinationsApi?.tlsDir, undefined);
  const dir = tempDirSync('inserter-trust-cfg-');
  mkdirSync(join(dir, 'certs'));
  const relative = buildConfig({ ...base, destinationsApi: { url: 'https://api.example', token: 't', tlsDir: 'certs', allowedHosts: ['*.clickhouse.cloud', 'ch.internal', '10.0.0.7'] } }, dir, {});
  assert.equal(relative.destinationsApi?.tlsDir, join(dir, 'certs'), 'relative to the config file');
  try {
    buildConfig({ ...base, destinationsApi: { url: 'https://api.example', token: 't', tlsDir: 'nope', allowedHosts: ['https://x.example', 'x.example:8443', '*'] } }, dir, {});
    assert.fail('should throw');
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    const text = error.issues.join('\n');
    for (const field of ['destinationsApi.allowedHosts.0', 'destinationsApi.allowedHosts.1', 'destinationsApi.allowedHosts.2'])
      assert.match(text, new RegExp(`${field.replaceAll('.', '\\.')}: must be a host`));
  }
  assert.throws(() => buildConfig({ ...base, destinationsApi: { url: 'https://api.example', token: 't', tlsDir: 'nope' } }, dir, {}), /destinationsApi\.tlsDir: cannot read folder nope/);
});

test('a document URL carrying credentials rejects the document whole, naming the field and never printing them', async (t) => {
  const s = await setup(t, doc('v1'));
  s.api.document = doc('v2', [{ id: 'creds', url: `https://writer:${EVIL_PW}@eu-1.clickhouse.cloud:8443`, password: 'x-pw-1234' }]);
  await assert.rejects(s.provider.refresh(never), (error: unknown) => {
    assert.ok(error instanceof DestinationsError);
    assert.equal(error.reason, 'invalid');
    assert.ok(
      error.issues.some((i) => i.startsWith('destinations.1.url: must not carry credentials')),
      error.issues.join('\n'),
    );
    assert.ok(!`${error.message}${inspect(error)}`.includes(EVIL_PW));
    return true;
  });
  assert.equal(s.provider.snapshot().version, 'v1');
  assert.ok(!(await s.printed()).includes(EVIL_PW), 'never printed');
});

test('a BigQuery key file named by the API is a credential on this host: only inside tlsDir, made absolute', () => {
  const dir = tempDirSync('inserter-trust-bq-');
  writeFileSync(join(dir, 'bq.json'), '{}');
  const destination = (credentialsFile: string) =>
    ({
      id: 'bq',
      kind: 'bigquery',
      bigquery: { project: 'p', credentialsFile },
      url: 'https://127.0.0.1:9050',
      user: 'default',
      password: new Secret(''),
      database: 'd',
      tls: undefined,
      maxBufferedBytes: 1,
      concurrency: 1,
      requestTimeoutMs: 1,
      stalledAfterMs: 1,
      compression: 'none',
    }) as const;
  const policy = { allowedHosts: [], allowHttp: false, configHosts: [] };
  const refused = checkDestination(destination('/etc/secret-key.json'), { ...policy, tlsDir: dir });
  assert.ok('reason' in refused && refused.reason === 'tls_dir' && /bigquery\.credentialsFile: .* is outside destinationsApi\.tlsDir/.test(refused.message));
  const noDir = checkDestination(destination('bq.json'), policy);
  assert.ok('reason' in noDir && /refused while destinationsApi\.tlsDir is not set/.test(noDir.message));
  const ok = checkDestination(destination('bq.json'), { ...policy, tlsDir: dir });
  assert.ok('ok' in ok);
  assert.equal(ok.ok.bigquery?.credentialsFile, join(dir, 'bq.json'));
  assert.equal(ok.ok.bigquery?.project, 'p');
});
