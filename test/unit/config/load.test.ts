import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { test } from 'node:test';
import { buildConfig, kafkaBusConfig } from '../../../src/config/load.ts';
import { ConfigError } from '../../../src/errors/inserter-error.ts';

const minimal = {
  kafka: { brokers: ['127.0.0.1:9092'] },
  destinations: [{ id: 'a', url: 'http://127.0.0.1:8123', password: { env: 'CH_PASSWORD' } }],
  teams: { map: { '2': 'a' } },
  routes: [{ topic: 'events', table: 'events' }],
};

test('fills defaults, resolves secrets and freezes the result', () => {
  const config = buildConfig(minimal, '/', { CH_PASSWORD: 'canary-secret' });
  assert.equal(config.routes[0]?.name, 'events->events');
  assert.equal(config.routes[0]?.destination, 'team');
  assert.equal(config.teams.unknown.action, 'hold');
  assert.equal(config.destinations[0]?.password.reveal(), 'canary-secret');
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.routes[0]));
  const printed = `${inspect(config, { depth: 10 })}${JSON.stringify(config)}`;
  assert.ok(!printed.includes('canary-secret'), 'secrets never print');
});

test('reports every problem at once, each naming its field', () => {
  try {
    buildConfig(
      {
        kafka: { brokers: ['nohost'] },
        destinations: [
          { id: 'a', url: 'ftp://x' },
          { id: 'b', url: 'http://x', password: { env: 'MISSING' } },
        ],
        teams: { map: { '3': 'zzz' } },
        routes: [{ topic: 'e', table: 'bad-name', destination: 'nope' }],
        batch: { maxRows: 0 },
      },
      '/',
      {},
    );
    assert.fail('should throw');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    const text = error.issues.join('\n');
    for (const field of ['kafka.brokers.0', 'destinations.0.url', 'routes.0.table', 'batch.maxRows']) assert.match(text, new RegExp(field.replaceAll('.', '\\.')));
  }
  try {
    buildConfig({ ...minimal, teams: { map: { '3': 'zzz' } }, routes: [{ topic: 'e', table: 't', destination: 'nope' }] }, '/', {});
    assert.fail('should throw');
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    const text = error.issues.join('\n');
    assert.match(text, /destinations\.0\.password: environment variable CH_PASSWORD is not set/);
    assert.match(text, /routes\.0\.destination: unknown destination "nope"/);
    assert.match(text, /teams\.map\.3: unknown destination "zzz"/);
  }
});

test('an invalid dead-letter topic name is a config error naming the field', () => {
  for (const bad of ['events dlq', 'events/dlq', 'é', '.', '..', 'x'.repeat(250)]) {
    try {
      buildConfig({ ...minimal, routes: [{ topic: 'e', table: 't', destination: 'a', deadLetterTopic: bad }] }, '/', { CH_PASSWORD: 'pw' });
      assert.fail(`should throw for ${bad}`);
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      assert.match(error.issues.join('\n'), /routes\.0\.deadLetterTopic: .*(Kafka topic name|249)/, bad);
    }
  }
  const ok = buildConfig({ ...minimal, routes: [{ topic: 'e', table: 't', destination: 'a', deadLetterTopic: 'e.dlq_v-2' }] }, '/', { CH_PASSWORD: 'pw' });
  assert.equal(ok.routes[0]?.deadLetterTopic, 'e.dlq_v-2');
});

test('a URL carrying credentials is refused wherever it is written, naming the field and never echoing them', () => {
  const raw = {
    ...minimal,
    destinations: [
      { id: 'a', url: 'https://writer:CANARY-url-pw-4e1a@ch.example:8443', password: { env: 'CH_PASSWORD' } },
      { id: 'b', url: 'https://:CANARY-url-pw-4e1a@ch2.example:8443' },
    ],
    destinationsApi: { url: 'https://svc:CANARY-url-pw-4e1a@api.example/internal', token: 'tok' },
  };
  try {
    buildConfig(raw, '/', { CH_PASSWORD: 'pw' });
    assert.fail('should throw');
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    const text = `${error.message}\n${error.issues.join('\n')}\n${inspect(error, { depth: 10 })}`;
    for (const field of ['destinations.0.url', 'destinations.1.url', 'destinationsApi.url']) assert.match(text, new RegExp(`${field.replaceAll('.', '\\.')}: must not carry credentials`));
    assert.ok(!text.includes('CANARY-url-pw-4e1a'), 'the credentials are never printed back');
  }
});

test('a destination client certificate without its CA (or without its key) is a config error naming the field', () => {
  const withTls = (tls: Record<string, string>, i = 0): unknown => ({
    ...minimal,
    destinations: [
      { id: 'a', url: 'https://ch.example:8443', password: { env: 'CH_PASSWORD' } },
      { id: 'b', url: 'https://ch2.example:8443', tls },
    ].slice(0, i + 2),
  });
  const issues = (raw: unknown): string => {
    try {
      buildConfig(raw, '/', { CH_PASSWORD: 'pw' });
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error.issues.join('\n');
    }
    return '';
  };
  assert.match(issues(withTls({ certFile: 'c.pem', keyFile: 'k.pem' })), /destinations\.1\.tls\.caFile: a client certificate \(certFile, keyFile\) needs the CA/);
  assert.match(issues(withTls({ caFile: 'ca.pem', certFile: 'c.pem' })), /destinations\.1\.tls\.keyFile: .*needs its private key/);
  assert.match(issues(withTls({ caFile: 'ca.pem', keyFile: 'k.pem' })), /destinations\.1\.tls\.certFile: .*needs its client certificate/);
  assert.equal(issues(withTls({ caFile: 'ca.pem', certFile: 'c.pem', keyFile: 'k.pem' })), '');
  assert.equal(issues(withTls({ caFile: 'ca.pem' })), '');
});

test('a destination is ClickHouse unless its kind says bigquery, which needs bigquery.project and only then takes bigquery settings', () => {
  const config = buildConfig(minimal, '/', { CH_PASSWORD: 'x' });
  assert.equal(config.destinations[0]?.kind, 'clickhouse');
  const bq = buildConfig(
    { ...minimal, destinations: [{ id: 'a', kind: 'bigquery', url: 'https://bigquery.googleapis.com', database: 'analytics', bigquery: { project: 'my-project', location: 'EU' } }] },
    '/',
    {},
  );
  assert.equal(bq.destinations[0]?.kind, 'bigquery');
  assert.deepEqual({ ...bq.destinations[0]?.bigquery }, { project: 'my-project', location: 'EU' });
  const issuesOf = (destinations: unknown[]): string => {
    try {
      buildConfig({ ...minimal, destinations }, '/', {});
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.issues.join('\n');
    }
    return assert.fail('should throw');
  };
  assert.match(issuesOf([{ id: 'a', kind: 'bigquery', url: 'https://bigquery.googleapis.com' }]), /destinations\.0\.bigquery: a bigquery destination needs bigquery\.project/);
  assert.match(issuesOf([{ id: 'a', url: 'http://127.0.0.1:8123', bigquery: { project: 'p' } }]), /destinations\.0\.bigquery: only a destination of kind bigquery/);
  assert.match(issuesOf([{ id: 'a', kind: 'bigquery', url: 'https://x', bigquery: { project: 'Not A Project' } }]), /destinations\.0\.bigquery\.project: must be a Google Cloud project id/);
  assert.match(issuesOf([{ id: 'a', kind: 'snowflake', url: 'https://x' }]), /destinations\.0\.kind/);
});

test('the bus is Kafka or Pulsar, exactly one; a Pulsar token is a secret', () => {
  const { kafka: _kafka, ...withoutBus } = minimal;
  const config = buildConfig({ ...withoutBus, pulsar: { url: 'http://127.0.0.1:8080', token: { env: 'PULSAR_TOKEN' } } }, '/', { CH_PASSWORD: 'x', PULSAR_TOKEN: 'canary-pulsar-token' });
  assert.equal(config.kafka, undefined);
  assert.deepEqual(
    { tenant: config.pulsar?.tenant, namespace: config.pulsar?.namespace, subscription: config.pulsar?.subscription, queue: config.pulsar?.receiverQueueSize },
    { tenant: 'public', namespace: 'default', subscription: 'inserter', queue: 1000 },
  );
  assert.equal(config.pulsar?.token?.reveal(), 'canary-pulsar-token');
  assert.ok(!`${inspect(config, { depth: 10 })}${JSON.stringify(config)}`.includes('canary-pulsar-token'));
  const issuesOf = (raw: unknown): string => {
    try {
      buildConfig(raw, '/', { CH_PASSWORD: 'x' });
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.issues.join('\n');
    }
    return assert.fail('should throw');
  };
  assert.match(issuesOf(withoutBus), /kafka: give exactly one bus: kafka or pulsar/);
  assert.match(issuesOf({ ...minimal, pulsar: { url: 'http://127.0.0.1:8080' } }), /pulsar: give exactly one bus: kafka or pulsar/);
  assert.match(issuesOf({ ...withoutBus, pulsar: { url: 'http://127.0.0.1:8080', tenant: 'a b' } }), /pulsar\.tenant: must be a Pulsar name/);
  assert.throws(() => kafkaBusConfig(config, 'verify'), /verify reads the dead-letter and ledger topics on Kafka/);
});

test('kafka.readPath: fetch by default with the classic protocol, stream with consumer; fetch with consumer is refused, naming the field', async () => {
  const { kafkaReadPath } = await import('../../../src/cli/bus-kafka.ts');
  const read = (kafka: Record<string, unknown>): string =>
    kafkaReadPath(kafkaBusConfig(buildConfig({ ...minimal, kafka: { brokers: ['127.0.0.1:9092'], ...kafka } }, '/', { CH_PASSWORD: 'pw' }), 'run').kafka);
  assert.equal(read({}), 'fetch');
  assert.equal(read({ groupProtocol: 'consumer' }), 'stream');
  assert.equal(read({ readPath: 'stream' }), 'stream');
  assert.equal(read({ readPath: 'stream', groupProtocol: 'consumer' }), 'stream');
  assert.throws(
    () => read({ readPath: 'fetch', groupProtocol: 'consumer' }),
    (error) => error instanceof ConfigError && /kafka\.readPath: .*classic group protocol/.test(error.issues.join('\n')),
  );
});

test('batch.maxBytes: unset, 32 MiB or a sixteenth of maxBufferedBytes, whichever is smaller; a value set wins', () => {
  const MiB = 1024 * 1024;
  const env = { CH_PASSWORD: 'x' };
  const bytes = (extra: object): number => buildConfig({ ...minimal, ...extra }, '/', env).batch.maxBytes;
  assert.equal(bytes({}), 16 * MiB, 'the default 256 MiB budget');
  assert.equal(bytes({ maxBufferedBytes: 128 * MiB }), 8 * MiB);
  assert.equal(bytes({ maxBufferedBytes: 512 * MiB }), 32 * MiB);
  assert.equal(bytes({ maxBufferedBytes: 4 * 1024 * MiB }), 32 * MiB);
  assert.equal(bytes({ maxBufferedBytes: 128 * MiB, batch: { maxBytes: 64 * MiB } }), 64 * MiB);
  assert.equal(bytes({ batch: { maxRows: 10 } }), 16 * MiB, 'a batch section without maxBytes');
  assert.ok(Object.isFrozen(buildConfig(minimal, '/', env).batch));
});
