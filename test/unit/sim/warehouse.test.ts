// The simulation's ClickHouse stand-in behaves like the real one where the delivery core relies on
// it: token deduplication within a window, atomic rejection naming the bad row, missing tables.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import { defaultTableDdl } from '../../../src/sink/clickhouse/ddl.ts';
import type { InsertBatch } from '../../../src/sink/types.ts';
import { columnsOfDdl, simColumns, Warehouse } from '../../sim/warehouse.ts';

const table = { database: 'sim', table: 'events' };
const batch = (token: string, uuids: string[]): InsertBatch => {
  const body = uuids.map((uuid, i) => Buffer.from(`{"_partition":0,"_offset":${i},"uuid":"${uuid}","team_id":1}\n`));
  return { table, format: 'JSONEachRow', body, rows: uuids.length, bytes: body.reduce((n, b) => n + b.length, 0), token };
};

test('a token seen within the window is deduplicated; one pushed out of it is not', () => {
  const w = new Warehouse({ dedupWindow: 2, poison: new Set(), poisonHint: true });
  w.createTable('d0', table, simColumns);
  w.apply('d0', batch('t1', ['a']), 1);
  assert.deepEqual(w.apply('d0', batch('t1', ['a']), 1), { writtenRows: 0 });
  w.apply('d0', batch('t2', ['b']), 1);
  w.apply('d0', batch('t3', ['c']), 1);
  w.apply('d0', batch('t1', ['a']), 1); // t1 left the window of 2
  assert.deepEqual(
    w.tables()[0]?.rows.map((r) => r.uuid),
    ['a', 'b', 'c', 'a'],
  );
  assert.equal(w.dedupHits, 1);
});

test('a poison row fails the whole insert with row_data naming its 1-based row, and stores nothing', () => {
  const w = new Warehouse({ dedupWindow: 10, poison: new Set(['bad']), poisonHint: true });
  w.createTable('d0', table, simColumns);
  assert.throws(
    () => w.apply('d0', batch('t1', ['a', 'b', 'bad', 'c']), 1),
    (e: unknown) => e instanceof WarehouseError && e.errorClass === ErrorClasses.rowData && /\(at row 3\)/.test(e.message),
  );
  assert.equal(w.tables()[0]?.rows.length, 0);
  // The failed insert did not record its token.
  w.apply('d0', batch('t1', ['a']), 1);
  assert.equal(w.tables()[0]?.rows.length, 1);
});

test('a missing table is missing_object; the default DDL creates the wrapped-message table', () => {
  const w = new Warehouse({ dedupWindow: 10, poison: new Set(), poisonHint: true });
  assert.throws(
    () => w.apply('d0', batch('t1', ['a']), 1),
    (e: unknown) => e instanceof WarehouseError && e.errorClass === ErrorClasses.missingObject,
  );
  const columns = columnsOfDdl(defaultTableDdl).map((c) => c.name);
  assert.deepEqual(columns, ['team_id', '_message', '_topic', '_partition', '_offset', '_key', '_timestamp', '_timestamp_ms', '_headers.name', '_headers.value']);
});
