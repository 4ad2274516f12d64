import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DestinationsError } from '../../../src/route/provider.ts';
import { parseDocument } from '../../../src/route/providers/document.ts';

const clickhouse = { id: 'ch', url: 'http://127.0.0.1:8123', user: 'u', password: 'p', database: 'db' };

test('the destinations document carries a destination kind: ClickHouse by default, BigQuery with its project', () => {
  const { snapshot } = parseDocument(
    {
      version: '1',
      destinations: [clickhouse, { id: 'bq', kind: 'bigquery', url: 'http://127.0.0.1:9050', password: 'token-canary', database: 'analytics', bigquery: { project: 'proj' } }],
      teams: [{ team_id: 1, destination: 'bq' }],
    },
    0,
    'test',
  );
  assert.equal(snapshot.destinations.get('ch')?.kind, 'clickhouse');
  const bq = snapshot.destinations.get('bq');
  assert.equal(bq?.kind, 'bigquery');
  assert.equal(bq?.bigquery?.project, 'proj');
  assert.equal(bq?.password.reveal(), 'token-canary');
  assert.ok(Object.isFrozen(bq?.bigquery));
});

test('a BigQuery destination without its project, or bigquery settings on a ClickHouse one, rejects the document whole', () => {
  for (const [bad, message] of [
    [{ ...clickhouse, id: 'bq', kind: 'bigquery' }, /destinations\.1\.bigquery: a bigquery destination needs bigquery\.project/],
    [{ ...clickhouse, id: 'c2', bigquery: { project: 'proj' } }, /destinations\.1\.bigquery: only a destination of kind bigquery/],
  ] as const) {
    assert.throws(
      () => parseDocument({ version: '1', destinations: [clickhouse, bad], teams: [] }, 0, 'test'),
      (error: unknown) => error instanceof DestinationsError && message.test(error.message),
    );
  }
});
