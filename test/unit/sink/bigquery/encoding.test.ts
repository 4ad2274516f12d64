import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rowEncoderFor } from '../../../../src/encode/types.ts';

// A BigQuery table's columns carry BigQuery's type names: a typed or auto route to it falls back to
// JSON lines (what a load job reads) instead of reaching the sink with RowBinary.
test('typed and auto routes to a BigQuery table are encoded as JSONEachRow, with the reason', () => {
  const columns = [
    { name: 'uuid', type: 'STRING', defaultKind: '' },
    { name: 'team_id', type: 'INT64', defaultKind: '' },
    { name: 'timestamp', type: 'TIMESTAMP', defaultKind: '' },
  ];
  for (const encoding of ['typed', 'auto'] as const) {
    const { encoder, fallback } = rowEncoderFor(columns, encoding, { timezone: 'UTC' });
    assert.equal(encoder.format, 'JSONEachRow');
    assert.match(String(fallback), /not covered by the typed encoder/);
  }
});
