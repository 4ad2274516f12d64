// The Pulsar adapter's options are checked up front (src/source/pulsar-source.ts,
// src/source/pulsar-ledger-store.ts): every bad field is named in one ConfigError, before anything
// connects, and the token never shows in it.
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { test } from 'node:test';
import { Secret } from '../../../src/config/secret.ts';
import { ConfigError } from '../../../src/errors/inserter-error.ts';
import { PulsarLedgerStore } from '../../../src/source/pulsar-ledger-store.ts';
import { PulsarSource } from '../../../src/source/pulsar-source.ts';

const good = { url: 'http://127.0.0.1:8080', tenant: 'public', namespace: 'default', subscription: 'inserter', topics: ['events'], token: new Secret('s3cr3t-token') };

test('good options build a source and a ledger store without connecting', async () => {
  const source = new PulsarSource(good);
  await source.close();
  const store = new PulsarLedgerStore(good);
  await store.close();
});

test('every bad source option is named in one ConfigError', () => {
  const bad = { ...good, url: 'pulsar://127.0.0.1:6650', tenant: 'a/b', namespace: '', topics: ['events-partition-1', 'ok'], receiverQueueSize: 5000, ownershipCheckMs: 0 };
  assert.throws(
    () => new PulsarSource(bad),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, 'INSERTER_CONFIG_INVALID');
      const text = error.issues.join('\n');
      for (const field of ['url', 'tenant', 'namespace', 'events-partition-1', 'receiverQueueSize', 'ownershipCheckMs']) assert.match(text, new RegExp(field));
      assert.equal(error.issues.length, 6);
      assert.doesNotMatch(`${error.message} ${inspect(error)}`, /s3cr3t/);
      return true;
    },
  );
  assert.throws(() => new PulsarSource({ ...good, topics: [] }), ConfigError);
});

test('every bad ledger store option is named in one ConfigError', () => {
  assert.throws(
    () => new PulsarLedgerStore({ ...good, subscription: 'has space', topic: 'a/b', retentionSizeInMB: 0 }),
    (error: unknown) => error instanceof ConfigError && error.issues.length === 3,
  );
});

test('the token prints redacted wherever the options are logged', () => {
  assert.doesNotMatch(inspect(good, { depth: 5 }), /s3cr3t/);
  assert.doesNotMatch(JSON.stringify(good), /s3cr3t/);
});
