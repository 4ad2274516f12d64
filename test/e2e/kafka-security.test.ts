// Production Kafka: the inserter talks to a real broker only through its SASL_SSL listener (TLS with
// a CA made for the test, SCRAM-SHA-512 users created by the broker's own StorageTool;
// scripts/kafka.sh --sasl-ssl). Over it: records are consumed, inserted into ClickHouse exactly once
// and committed; the ledger records intents and a malformed message reaches the dead-letter topic;
// `verify` and `dlq list` read over it (and name a refused login). A client certificate alone (an
// SSL listener that requires one: mTLS) is a login too, and so is an OAUTHBEARER token file.
// A wrong password and a CA that did not sign the broker's certificate each stop the process at
// once with an error naming the cause, before anything is consumed. The password is never logged.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { committedOffsets, endOffsets, produce, readTopic } from '../helpers/bus.ts';
import { buildConfig as buildAnyConfig, kafkaBusConfig, type KafkaBusConfig } from '../../src/config/load.ts';
import { InserterError } from '../../src/errors/inserter-error.ts';
import { checkKafkaConnection, kafkaConnectionFor } from '../../src/source/kafka-connection.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { TABLE_DDL, assertExactlyOnce, counts, row } from '../helpers/error-scenarios.ts';
import { REPO_ROOT, startInserter, waitFor, writeConfig, type InserterProcess } from '../helpers/inserter.ts';
import { createTopic, startKafka, uniqueTopic, type KafkaBroker, type SaslSslListener } from '../helpers/kafka.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** These configurations all name a Kafka bus. */
const buildConfig = (...args: Parameters<typeof buildAnyConfig>): KafkaBusConfig => kafkaBusConfig(buildAnyConfig(...args), 'test');

const ROWS = 300;
let broker: KafkaBroker;
let secure: SaslSslListener;
let ch: ClickHouseInstance;
let scratch: string;
const running = new Set<InserterProcess>();

before(async () => {
  scratch = await tempDir('inserter-kafka-security-');
  [broker, ch] = await Promise.all([startKafka({ saslSsl: true }), startClickHouse()]);
  assert.ok(broker.saslSsl !== undefined, 'the broker has a SASL_SSL listener');
  secure = broker.saslSsl;
  await ch.query('CREATE DATABASE app');
});

after(async () => {
  for (const p of running) await p.kill();
  await Promise.all([broker?.stop(), ch?.stop()]);
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

function config(topic: string, table: string, kafka: Record<string, unknown>): Record<string, unknown> {
  return {
    kafka: { brokers: [secure.bootstrap], groupId: `${topic}-group`, fetchMaxWaitMs: 100, sessionTimeoutMs: 6_000, ...kafka },
    destinations: [{ id: 'a', url: ch.url, database: 'app' }],
    routes: [{ topic, table, destination: 'a', createTable: { enabled: false }, deadLetterTopic: `${topic}.dlq` }],
    batch: { maxRows: 100, maxAgeMs: 300 },
    commitIntervalMs: 300,
    retry: { baseMs: 100, factor: 2, capMs: 1_000 },
  };
}

const secureKafka = (): Record<string, unknown> => ({
  tls: { caFile: secure.caFile },
  sasl: { mechanism: 'SCRAM-SHA-512', username: secure.username, password: { file: secure.passwordFile } },
});

async function start(cfg: Record<string, unknown>): Promise<InserterProcess> {
  const p = await startInserter(cfg);
  running.add(p);
  void p.exited.then(() => running.delete(p));
  return p;
}

test('over SASL_SSL: consume, insert, commit; the ledger, a dead letter, verify and dlq go over it too', async () => {
  const topic = uniqueTopic('sasl-ssl');
  await createTopic(broker.bootstrap, topic, 2);
  await ch.query(TABLE_DDL('app', 'secure_events'));
  const records = [];
  for (let id = 0; id < ROWS; id++) records.push({ key: Buffer.from(String(id)), value: row(id), partition: id % 2 });
  records.push({ key: Buffer.from('bad'), value: Buffer.from('{"id": 1, not json'), partition: 0 });
  await produce(broker.bootstrap, topic, records);

  const inserter = await start(config(topic, 'secure_events', secureKafka()));
  await waitFor(async () => (await counts(ch, 'app', 'secure_events')).rows >= ROWS, 'every row in ClickHouse', 90_000);
  await waitFor(
    async () => {
      const [committed, end] = await Promise.all([committedOffsets(broker.bootstrap, `${topic}-group`, topic, 2), endOffsets(broker.bootstrap, topic)]);
      return committed.length === 2 && committed.every((c, p) => c === end[p]);
    },
    'committed offsets at the log end',
    60_000,
  );
  assert.equal(await inserter.stop(), 0, 'a graceful stop');
  await assertExactlyOnce(ch, 'app', 'secure_events', ROWS);

  const dead = await readTopic(broker.bootstrap, `${topic}.dlq`, 1, 10_000);
  assert.equal(dead.length, 1, 'the malformed message is dead-lettered');
  assert.equal(dead[0]?.value?.toString(), '{"id": 1, not json');
  // Written through transactional producers: read what is committed (markers take offsets).
  const ledger = await readTopic(broker.bootstrap, `${topic}-group.inserter-ledger`, 1, 10_000);
  assert.ok(ledger.length > 0, 'the ledger was written over SASL_SSL');

  const log = await inserter.log();
  assert.ok(!log.includes(secure.password), 'the password is never logged');
  assert.doesNotMatch(log, /Kafka not reachable/);
  assert.match(log, /SASL_SSL; SCRAM-SHA-512 as user inserter \(password set\); TLS trusting the CA in /, 'the security mode is logged at start');

  // The commands read over the same listener: verify (topic, dead letters, ledger, offsets) and dlq.
  const file = await writeConfig(config(topic, 'secure_events', secureKafka()), scratch);
  const verified = await cli(['verify', '--config', file, '--id-field', 'id']);
  assert.equal(verified.code, 0, `verify over SASL_SSL:\n${verified.out}${verified.err}`);
  const listed = await cli(['dlq', 'list', '--config', file]);
  assert.equal(listed.code, 0, listed.err);
  assert.equal(listed.out.trim().split('\n').length, 1, `one dead letter listed:\n${listed.out}`);
  const wrong = await writeConfig(
    config(topic, 'secure_events', { ...secureKafka(), sasl: { mechanism: 'SCRAM-SHA-512', username: secure.username, password: 'not-the-password-7f3a' } }),
    await mkdtemp(join(scratch, 'wrong-')),
  );
  for (const args of [
    ['verify', '--config', wrong, '--id-field', 'id'],
    ['dlq', 'list', '--config', wrong],
  ]) {
    const r = await cli(args);
    assert.equal(r.code, 3, `${args[0]} with a wrong password: ${r.out}${r.err}`);
    assert.match(r.err, /Kafka refused the login .*\[INSERTER_KAFKA_AUTH\]/);
    assert.ok(!`${r.out}${r.err}`.includes('not-the-password-7f3a'));
  }
});

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(join(REPO_ROOT, 'bin', 'inserter'), args, { timeout: 120_000 });
    return { code: 0, out: stdout, err: stderr };
  } catch (error) {
    const e = error as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: e.stdout ?? '', err: e.stderr ?? String(error) };
  }
}

test('a wrong password fails fast, names the login as the cause, consumes nothing', async () => {
  const topic = uniqueTopic('sasl-wrong-password');
  await createTopic(broker.bootstrap, topic, 1);
  await ch.query(TABLE_DDL('app', 'wrong_password'));
  await produce(broker.bootstrap, topic, [{ value: row(1) }]);
  const started = Date.now();
  const inserter = await start(config(topic, 'wrong_password', { ...secureKafka(), sasl: { mechanism: 'SCRAM-SHA-512', username: secure.username, password: 'not-the-password-7f3a' } }));
  assert.equal(await inserter.exited, 1, 'the process exits with an error');
  assert.ok(Date.now() - started < 30_000, `fails fast (${Date.now() - started} ms)`);
  const log = await inserter.log();
  assert.match(log, /INSERTER_KAFKA_AUTH/);
  assert.match(log, /Kafka refused the login \(SASL SCRAM-SHA-512 as user inserter\)/);
  assert.ok(!log.includes('not-the-password-7f3a'), 'the password is never logged');
  assert.equal((await counts(ch, 'app', 'wrong_password')).rows, 0, 'nothing inserted');
  const committed = await committedOffsets(broker.bootstrap, `${topic}-group`, topic, 1);
  assert.ok(
    committed.every((c) => c < 0n),
    `nothing committed (${committed.join(',')})`,
  );
});

test('a CA that did not sign the broker certificate fails fast, names TLS as the cause, consumes nothing', async () => {
  const topic = uniqueTopic('sasl-untrusted');
  await createTopic(broker.bootstrap, topic, 1);
  await ch.query(TABLE_DDL('app', 'untrusted'));
  await produce(broker.bootstrap, topic, [{ value: row(1) }]);
  const otherCa = join(scratch, 'other-ca.crt');
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=someone else', '-keyout', join(scratch, 'other-ca.key'), '-out', otherCa]);
  const started = Date.now();
  const inserter = await start(config(topic, 'untrusted', { ...secureKafka(), tls: { caFile: otherCa } }));
  assert.equal(await inserter.exited, 1, 'the process exits with an error');
  assert.ok(Date.now() - started < 30_000, `fails fast (${Date.now() - started} ms)`);
  const log = await inserter.log();
  assert.match(log, /INSERTER_KAFKA_TLS/);
  assert.match(log, /TLS certificate is not trusted \(SELF_SIGNED_CERT_IN_CHAIN/);
  assert.match(log, /kafka\.tls\.caFile/);
  assert.equal((await counts(ch, 'app', 'untrusted')).rows, 0, 'nothing inserted');
  const committed = await committedOffsets(broker.bootstrap, `${topic}-group`, topic, 1);
  assert.ok(
    committed.every((c) => c < 0n),
    `nothing committed (${committed.join(',')})`,
  );
});

test('mTLS: the client certificate is the login; consume, insert, commit', async () => {
  const topic = uniqueTopic('mtls');
  await createTopic(broker.bootstrap, topic, 1);
  await ch.query(TABLE_DDL('app', 'mtls_events'));
  const records = [];
  for (let id = 0; id < 50; id++) records.push({ value: row(id) });
  await produce(broker.bootstrap, topic, records);
  const cfg = config(topic, 'mtls_events', { brokers: [secure.sslBootstrap], tls: { caFile: secure.caFile, certFile: secure.clientCertFile, keyFile: secure.clientKeyFile } });
  const inserter = await start(cfg);
  await waitFor(
    async () => {
      const [committed, end] = await Promise.all([committedOffsets(broker.bootstrap, `${topic}-group`, topic, 1), endOffsets(broker.bootstrap, topic)]);
      return committed.length === 1 && committed[0] === end[0];
    },
    'committed offsets at the log end over mTLS',
    90_000,
  );
  assert.equal(await inserter.stop(), 0, 'a graceful stop');
  await assertExactlyOnce(ch, 'app', 'mtls_events', 50);
});

test('OAUTHBEARER: a token file is the login; an expired token fails fast naming the login', async () => {
  const topic = uniqueTopic('oauth');
  await createTopic(broker.bootstrap, topic, 1);
  await ch.query(TABLE_DDL('app', 'oauth_events'));
  const records = [];
  for (let id = 0; id < 50; id++) records.push({ value: row(id) });
  await produce(broker.bootstrap, topic, records);
  // The broker validates unsigned JWTs (Kafka's unsecured validator, scripts/kafka.sh): sub and exp.
  const jwt = (expiresIn: number): string => {
    const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    return `${part({ alg: 'none' })}.${part({ sub: 'inserter', iat: now - 60, exp: now + expiresIn })}.`;
  };
  const expiredFile = join(scratch, 'expired.jwt');
  await writeFile(expiredFile, `${jwt(-30)}\n`);
  const failing = await start(config(topic, 'oauth_events', { tls: { caFile: secure.caFile }, sasl: { mechanism: 'OAUTHBEARER', token: { file: expiredFile } } }));
  const started = Date.now();
  assert.equal(await failing.exited, 1, 'an expired token: the process exits with an error');
  assert.ok(Date.now() - started < 30_000, `fails fast (${Date.now() - started} ms)`);
  assert.match(await failing.log(), /INSERTER_KAFKA_AUTH.*Kafka refused the login \(SASL OAUTHBEARER\)|Kafka refused the login \(SASL OAUTHBEARER\).*INSERTER_KAFKA_AUTH/);
  assert.equal((await counts(ch, 'app', 'oauth_events')).rows, 0, 'nothing inserted');

  const tokenFile = join(scratch, 'token.jwt');
  await writeFile(tokenFile, `${jwt(3600)}\n`);
  const inserter = await start(config(topic, 'oauth_events', { tls: { caFile: secure.caFile }, sasl: { mechanism: 'OAUTHBEARER', token: { file: tokenFile } } }));
  await waitFor(
    async () => {
      const [committed, end] = await Promise.all([committedOffsets(broker.bootstrap, `${topic}-group`, topic, 1), endOffsets(broker.bootstrap, topic)]);
      return committed.length === 1 && committed[0] === end[0];
    },
    'committed offsets at the log end over OAUTHBEARER',
    90_000,
  );
  assert.equal(await inserter.stop(), 0, 'a graceful stop');
  await assertExactlyOnce(ch, 'app', 'oauth_events', 50);
});

test('every SASL mechanism with a password logs in over SASL_SSL; each names a wrong password', async () => {
  for (const mechanism of ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const) {
    const load = (password: string): KafkaBusConfig =>
      buildConfig(
        {
          kafka: { brokers: [secure.bootstrap], tls: { caFile: secure.caFile }, sasl: { mechanism, username: secure.username, password } },
          destinations: [{ id: 'a', url: ch.url }],
          routes: [{ topic: 't', table: 't', destination: 'a' }],
        },
        scratch,
        {},
      );
    const good = load(secure.password);
    await checkKafkaConnection({ brokers: good.kafka.brokers, connection: kafkaConnectionFor(good), clientId: 'security-test' }, good.kafka, AbortSignal.timeout(20_000));
    const bad = load('not-the-password-7f3a');
    await assert.rejects(
      checkKafkaConnection({ brokers: bad.kafka.brokers, connection: kafkaConnectionFor(bad), clientId: 'security-test' }, bad.kafka, AbortSignal.timeout(20_000)),
      (error: unknown) => {
        assert.ok(error instanceof InserterError && error.code === 'INSERTER_KAFKA_AUTH', String(error));
        assert.match(error.message, new RegExp(`Kafka refused the login \\(SASL ${mechanism} as user ${secure.username}\\)`));
        return true;
      },
    );
  }
});

test('TLS towards a plaintext listener is named at once, not retried', async () => {
  const cfg = buildConfig(
    { kafka: { brokers: [broker.bootstrap], tls: { caFile: secure.caFile } }, destinations: [{ id: 'a', url: ch.url }], routes: [{ topic: 't', table: 't', destination: 'a' }] },
    scratch,
    {},
  );
  await assert.rejects(
    checkKafkaConnection({ brokers: cfg.kafka.brokers, connection: kafkaConnectionFor(cfg), clientId: 'security-test' }, cfg.kafka, AbortSignal.timeout(20_000)),
    (error: unknown) => {
      assert.ok(error instanceof InserterError && error.code === 'INSERTER_KAFKA_TLS', String(error));
      assert.match(error.message, /is kafka\.tls set for a listener that speaks plaintext\?/);
      return true;
    },
  );
});
