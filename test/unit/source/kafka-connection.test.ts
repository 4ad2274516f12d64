// Kafka security from the configuration to the clients: TLS settings validated up front (a
// certificate without its key and the reverse named, unreadable files, a CA file without certificates
// and a key not matching its certificate named, all at once), the
// options every client gets (CA, client certificate and key, server name, SASL with the password
// behind a function), a refused login or an untrusted certificate told apart from a broker that is
// merely down, and `check-config` explaining the mode without printing the password.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { AuthenticationError, MultipleErrors, NetworkError } from '@platformatic/kafka';
import { buildConfig as buildAnyConfig, kafkaBusConfig } from '../../../src/config/load.ts';
import { ConfigError } from '../../../src/errors/inserter-error.ts';
import { describeKafkaSecurity, kafkaClientOptions, kafkaConnectionHint, kafkaConnectionOptions, kafkaSecurityFailure } from '../../../src/source/kafka-connection.ts';
import { tempDirSync } from '../../helpers/temp-dir.ts';

/** These configurations all name a Kafka bus. */
const buildConfig = (...args: Parameters<typeof buildAnyConfig>) => kafkaBusConfig(buildAnyConfig(...args), 'test');

const dir = tempDirSync('inserter-kafka-connection-');
// Real PEM (openssl, as scripts/kafka.sh --sasl-ssl uses): a self-signed CA doubling as the client certificate, another key.
const openssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=test', '-keyout', join(dir, 'client.key'), '-out', join(dir, 'client.pem'));
openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', join(dir, 'other.key'));
copyFileSync(join(dir, 'client.pem'), join(dir, 'ca.pem'));
writeFileSync(join(dir, 'password'), 'canary-kafka-4c1e\n');
writeFileSync(join(dir, 'not-pem.txt'), 'hello');
const pem = (name: string): Buffer => readFileSync(join(dir, name));

const base = { destinations: [{ id: 'a', url: 'http://127.0.0.1:8123' }], routes: [{ topic: 'e', table: 't', destination: 'a' }] };
const withKafka = (kafka: Record<string, unknown>): unknown => ({ ...base, kafka: { brokers: ['b1:9093'], ...kafka } });

function issues(raw: unknown): string[] {
  try {
    buildConfig(raw, dir, {});
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return [...error.issues];
  }
  assert.fail('expected a ConfigError');
}

test('a client certificate needs its key and a key its certificate, named by field', () => {
  assert.deepEqual(issues(withKafka({ tls: { certFile: 'client.pem' } })), ['kafka.tls.keyFile: a client certificate (certFile) needs its private key (keyFile)']);
  assert.deepEqual(issues(withKafka({ tls: { keyFile: 'client.key' } })), ['kafka.tls.certFile: a private key (keyFile) needs its client certificate (certFile)']);
});

test('every TLS file that cannot be read is named at once, next to other problems', () => {
  const found = issues(withKafka({ tls: { caFile: 'nope-ca.pem', certFile: 'nope.pem', keyFile: 'nope.key' }, sasl: { mechanism: 'SCRAM-SHA-512', username: 'u', password: { env: 'MISSING' } } }));
  for (const field of [
    'kafka.tls.caFile: cannot read nope-ca.pem',
    'kafka.tls.certFile: cannot read nope.pem',
    'kafka.tls.keyFile: cannot read nope.key',
    'kafka.sasl.password: environment variable MISSING is not set',
  ]) {
    assert.ok(
      found.some((i) => i.startsWith(field)),
      `${field} in ${found.join('\n')}`,
    );
  }
});

test("a CA file without certificates and a key that is not the certificate's are named", () => {
  assert.deepEqual(issues(withKafka({ tls: { caFile: 'not-pem.txt' } })), ['kafka.tls.caFile: not-pem.txt holds no PEM certificate']);
  const found = issues(withKafka({ tls: { certFile: 'client.pem', keyFile: 'other.key' } }));
  assert.equal(found.length, 1);
  assert.match(found[0] ?? '', /^kafka\.tls\.keyFile: other\.key and client\.pem are not an unencrypted PEM private key and its certificate/);
});

test('the clients get the CA, the client certificate and key, the server name and SASL; no clear password in the options', () => {
  const config = buildConfig(
    withKafka({
      tls: { caFile: 'ca.pem', certFile: 'client.pem', keyFile: 'client.key', serverName: 'kafka.example.com' },
      sasl: { mechanism: 'SCRAM-SHA-512', username: 'svc', password: { file: 'password' } },
    }),
    dir,
    {},
  );
  const connection = kafkaConnectionOptions(config.kafka, config.baseDir);
  assert.deepEqual(connection.tls?.ca, pem('ca.pem'));
  assert.deepEqual(connection.tls?.cert, pem('client.pem'));
  assert.deepEqual(connection.tls?.key, pem('client.key'));
  assert.equal(connection.tlsServerName, 'kafka.example.com');
  assert.equal(connection.sasl?.mechanism, 'SCRAM-SHA-512');
  assert.equal(connection.sasl?.username, 'svc');
  const password = connection.sasl?.password;
  assert.equal(typeof password === 'function' ? password() : password, 'canary-kafka-4c1e');
  const client = kafkaClientOptions({ brokers: config.kafka.brokers, connection });
  assert.deepEqual(client.bootstrapBrokers, ['b1:9093']);
  assert.ok(!`${inspect(client, { depth: 10 })}${JSON.stringify(client)}`.includes('canary-kafka-4c1e'), 'the options never hold the password in clear');

  const systemCas = kafkaConnectionOptions(buildConfig(withKafka({ tls: true }), dir, {}).kafka, dir);
  assert.deepEqual(systemCas.tls, {}, 'tls: true trusts the system CAs');
  assert.equal(systemCas.sasl, undefined);
  assert.deepEqual(kafkaConnectionOptions(buildConfig(withKafka({}), dir, {}).kafka, dir), {}, 'default: plaintext');
});

test('OAUTHBEARER: a token file is re-read at every login, an inline token is fixed; neither prints', () => {
  writeFileSync(join(dir, 'token.jwt'), 'canary-token-1\n');
  const fromFile = buildConfig(withKafka({ tls: true, sasl: { mechanism: 'OAUTHBEARER', token: { file: 'token.jwt' }, extensions: { logicalCluster: 'lkc-1' } } }), dir, {});
  const connection = kafkaConnectionOptions(fromFile.kafka, dir);
  const token = (): unknown => (typeof connection.sasl?.token === 'function' ? connection.sasl.token() : connection.sasl?.token);
  assert.equal(connection.sasl?.mechanism, 'OAUTHBEARER');
  assert.equal(token(), 'canary-token-1');
  writeFileSync(join(dir, 'token.jwt'), 'canary-token-2\n');
  assert.equal(token(), 'canary-token-2', 'a refreshed token file is picked up');
  assert.deepEqual(connection.sasl?.oauthBearerExtensions, { logicalCluster: 'lkc-1' });
  assert.ok(!inspect(connection, { depth: 10 }).includes('canary-token'));
  assert.equal(describeKafkaSecurity(fromFile.kafka), `SASL_SSL; OAUTHBEARER with the token in ${join(dir, 'token.jwt')}, re-read at each login; TLS trusting the system CAs`);
  const inline = buildConfig(withKafka({ tls: true, sasl: { mechanism: 'OAUTHBEARER', token: { env: 'KAFKA_TOKEN' } } }), dir, { KAFKA_TOKEN: 'canary-token-3' });
  assert.equal(describeKafkaSecurity(inline.kafka), 'SASL_SSL; OAUTHBEARER with a fixed token (set); TLS trusting the system CAs');
  assert.deepEqual(issues(withKafka({ sasl: { mechanism: 'OAUTHBEARER', username: 'u', password: 'p' } })).length > 0, true, 'OAUTHBEARER takes a token, not a password');
});

test('a refused login and an untrusted certificate are told apart from a broker that is down', () => {
  const kafka = { tls: true, sasl: { mechanism: 'SCRAM-SHA-512' as const, username: 'svc', password: { reveal: () => 'x' } } } as unknown as Parameters<typeof kafkaSecurityFailure>[1];
  const auth = kafkaSecurityFailure(
    new MultipleErrors('Cannot connect to any broker.', [new NetworkError('Connection to b1:9093 failed.', { cause: new AuthenticationError('SASL authentication failed.') })]),
    kafka,
  );
  assert.equal(auth?.code, 'INSERTER_KAFKA_AUTH');
  assert.match(auth?.message ?? '', /Kafka refused the login \(SASL SCRAM-SHA-512 as user svc\): SASL authentication failed\. Check kafka\.sasl/);
  const untrusted = Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' });
  const tls = kafkaSecurityFailure(new MultipleErrors('Cannot connect to any broker.', [new NetworkError('Connection to b1:9093 failed.', { cause: untrusted })]), kafka);
  assert.equal(tls?.code, 'INSERTER_KAFKA_TLS');
  assert.match(tls?.message ?? '', /TLS certificate is not trusted \(SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain\): set kafka\.tls\.caFile/);
  const illegalState = Object.assign(new Error('Request is not valid given the current SASL state.'), { apiId: 'ILLEGAL_SASL_STATE' });
  assert.equal(kafkaSecurityFailure(new MultipleErrors('Received response with error', [illegalState]), kafka)?.code, 'INSERTER_KAFKA_AUTH', 'a rejected bearer token');
  const closed = new MultipleErrors('Cannot connect to any broker.', [new NetworkError('Connection closed')]);
  assert.equal(kafkaSecurityFailure(closed, kafka), undefined, 'a closed connection is not proof: retried');
  assert.equal(
    kafkaConnectionHint(closed, { tls: { caFile: 'ca.pem' }, sasl: undefined }),
    'the broker closed the connection: does this listener require a client certificate (kafka.tls.certFile, keyFile) or a SASL login (kafka.sasl)?',
  );
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9093'), { code: 'ECONNREFUSED' });
  assert.equal(kafkaSecurityFailure(new MultipleErrors('Cannot connect to any broker.', [new NetworkError('Connection to b1:9093 failed.', { cause: refused })]), kafka), undefined);
});

test('the security mode is explained in words, never with the password', () => {
  const secured = buildConfig(
    withKafka({ tls: { caFile: 'ca.pem', certFile: 'client.pem', keyFile: 'client.key' }, sasl: { mechanism: 'SCRAM-SHA-256', username: 'svc', password: { file: 'password' } } }),
    dir,
    {},
  );
  assert.equal(describeKafkaSecurity(secured.kafka), 'SASL_SSL; SCRAM-SHA-256 as user svc (password set); TLS trusting the CA in ca.pem; client certificate client.pem (mTLS)');
  assert.equal(describeKafkaSecurity(buildConfig(withKafka({ tls: true }), dir, {}).kafka), 'SSL; TLS trusting the system CAs');
  assert.match(
    describeKafkaSecurity(buildConfig(withKafka({ sasl: { mechanism: 'PLAIN', username: 'k', password: 's' } }), dir, {}).kafka),
    /^SASL_PLAINTEXT; PLAIN as user k \(password set\); WARNING: credentials and data travel unencrypted$/,
  );
  assert.match(describeKafkaSecurity(buildConfig(withKafka({}), dir, {}).kafka), /^PLAINTEXT; unencrypted and unauthenticated/);

  const file = join(dir, 'secure.yaml');
  writeFileSync(
    file,
    'kafka:\n  brokers: ["b1:9093"]\n  tls: { caFile: ca.pem }\n  sasl: { mechanism: SCRAM-SHA-512, username: svc, password: { file: password } }\ndestinations: [{ id: a, url: "http://127.0.0.1:8123" }]\nroutes: [{ topic: e, table: t, destination: a }]\n',
  );
  const bin = resolve(import.meta.dirname, '..', '..', '..', 'bin', 'inserter');
  const r = spawnSync(bin, ['check-config', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /kafka security: SASL_SSL; SCRAM-SHA-512 as user svc \(password set\); TLS trusting the CA in ca\.pem/);
  assert.ok(!r.stdout.includes('canary-kafka-4c1e') && !r.stderr.includes('canary-kafka-4c1e'));
});
