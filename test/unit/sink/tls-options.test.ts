// A ClickHouse sink given a client certificate without the CA (or without its key) refuses to be
// built, naming the destination and the field: before, it dropped the certificate without a word.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DestinationConfig } from '../../../src/config/load.ts';
import { Secret } from '../../../src/config/secret.ts';
import { ConfigError } from '../../../src/errors/inserter-error.ts';
import { ClickHouseSink } from '../../../src/sink/clickhouse/sink.ts';
import { tempDirSync } from '../../helpers/temp-dir.ts';

function destination(tls: DestinationConfig['tls']): DestinationConfig {
  return {
    id: 'eu-1',
    kind: 'clickhouse',
    url: 'https://127.0.0.1:8443',
    user: 'default',
    password: new Secret(''),
    database: 'default',
    tls,
    maxBufferedBytes: 1024,
    concurrency: 1,
    requestTimeoutMs: 1000,
    stalledAfterMs: 1000,
    compression: 'none',
  };
}

test('a client certificate without a CA or without its key is refused, naming the destination and the field', async () => {
  const dir = tempDirSync('inserter-sink-tls-');
  for (const name of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(dir, name), 'x');
  const [ca, cert, key] = ['ca.pem', 'cert.pem', 'key.pem'].map((n) => join(dir, n));
  assert.throws(
    () => new ClickHouseSink(destination({ certFile: cert, keyFile: key })),
    (error: unknown) => error instanceof ConfigError && /destination eu-1: tls\.caFile: a client certificate/.test(error.message),
  );
  assert.throws(
    () => new ClickHouseSink(destination({ caFile: ca, certFile: cert })),
    (error: unknown) => error instanceof ConfigError && /tls\.keyFile/.test(error.message),
  );
  const plain = new ClickHouseSink(destination({ caFile: ca }));
  await plain.close();
  const none = new ClickHouseSink(destination(undefined));
  await none.close();
});
