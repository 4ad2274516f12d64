// The core never imports a system's adapter (developers' guide, rule 2): everything about Kafka lives
// in source/kafka*.ts, everything about ClickHouse in sink/clickhouse/, and the CLI wires them. A
// Pulsar source or a BigQuery sink plugs into the same interfaces without touching the core.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';

const src = join(import.meta.dirname, '../../src');
const core = ['ack', 'batch', 'config', 'control', 'deadletter', 'decode', 'encode', 'errors', 'pipeline', 'route', 'telemetry'];
/** What only an adapter may import: the clients, and the adapters' own modules. */
const adapterOnly = [/from '@platformatic\/kafka'/, /from '@clickhouse\/client'/, /from '[./]*\/source\/kafka[^']*'/, /from '[./]*\/sink\/clickhouse\/[^']*'/];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

test('no core module imports Kafka or ClickHouse, or their adapters', () => {
  const offenders: string[] = [];
  for (const folder of core) {
    for (const file of files(join(src, folder))) {
      const text = readFileSync(file, 'utf8');
      for (const pattern of adapterOnly) {
        const match = pattern.exec(text);
        if (match) offenders.push(`${relative(src, file)}: ${match[0]}`);
      }
    }
  }
  assert.deepEqual(offenders, []);
});

test('the check sees an import it must refuse', () => {
  assert.equal(
    adapterOnly.some((p) => p.test("import { KafkaSource } from '../source/kafka.ts';")),
    true,
  );
  assert.equal(
    adapterOnly.some((p) => p.test("import type { Sink } from '../sink/types.ts';")),
    false,
  );
});
