// The world the reviews of inserts in doubt drive (test/unit/review-2026-12-06b, -d): team 8 → d1,
// batches of 10 rows, the live schema read again at once, fast retries; records of team 8; and the
// table's one ALTER (a column `altered`) whose presence a test's refusals depend on.
import type { SourceRecord } from '../../src/source/types.ts';
import { event, worldConfig, type TokenWarehouse } from './pipeline-world.ts';

export const fastRetries = { baseMs: 5, capMs: 20, pauseMs: 20 };

export const inDoubtConfig = worldConfig({
  teams: { map: { 8: 'd1' } },
  schemaRefreshMs: 1,
  batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 },
  errorPolicy: { defaults: { transient_network: fastRetries, unknown_server_error: fastRetries, row_data: { baseMs: 5, capMs: 20 } } },
});

/** Records 0..n-1 of team 8 (uuids u0..). */
export const teamRecords = (n: number): SourceRecord[] => Array.from({ length: n }, (_, i) => event(i, 8));

export const alteredColumn = { name: 'altered', type: 'UInt8', defaultKind: 'DEFAULT' };

export const isAltered = (w: TokenWarehouse): boolean => w.columns.some((c) => c.name === 'altered');
