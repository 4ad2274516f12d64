// Test helper of review 2026-12-06b (ranges in doubt, 37abfeb; the review's summary is at the top of
// in-doubt-review.test.ts): what its test files share over test/helpers/in-doubt-world.ts — the
// table's ALTER and its revert, each moving the table's definition version, a sink whose schema
// reads say that version, a server refusing chosen rows while a condition holds, the ledger a
// process saved, and the config overrides of the in-doubt world.
import assert from 'node:assert/strict';
import type { LedgerJson, MemoryLedgerStore } from '../../../src/ack/ledger.ts';
import type { DestinationConfig } from '../../../src/config/load.ts';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import type { Sink, TableRef, TableSchema } from '../../../src/sink/types.ts';
import { alteredColumn, fastRetries, isAltered } from '../../helpers/in-doubt-world.ts';
import { TOPIC, type TokenWarehouse, type worldConfig } from '../../helpers/pipeline-world.ts';

/** Each warehouse's definition version: every ALTER moves it, as ClickHouse's metadata version does. */
const versions = new WeakMap<TokenWarehouse, number>();
export function alter(w: TokenWarehouse): void {
  if (isAltered(w)) return;
  w.columns = [...w.columns, alteredColumn];
  versions.set(w, (versions.get(w) ?? 0) + 1);
}
export function revert(w: TokenWarehouse): void {
  w.columns = w.columns.filter((c) => c.name !== 'altered');
  versions.set(w, (versions.get(w) ?? 0) + 1);
}
/** The warehouse's sink, its schema reads saying the definition's version (TableSchema.version). */
export function versioned(w: TokenWarehouse, d: DestinationConfig): Sink {
  const inner = w.sink(d);
  const describe = async (table: TableRef): Promise<TableSchema | undefined> => {
    const schema = await inner.describe(table);
    return schema === undefined ? undefined : { ...schema, version: String(versions.get(w) ?? 0) };
  };
  return { ...inner, describe };
}

/** The server refuses rows holding `victims` while `when` holds, naming the body row ("(at row N)") or, with `row`, that row number. */
export function refuse(w: TokenWarehouse, victims: ReadonlySet<string>, when: () => boolean, row?: number): void {
  w.fail = (_token, _rows, ids) => {
    if (!when()) return undefined;
    const at = ids.findIndex((u) => victims.has(u));
    if (at < 0) return undefined;
    const named = row ?? at + 1;
    return new WarehouseError(ErrorClasses.rowData, `Cannot parse input (at row ${named})`, 27, undefined, named);
  };
}

/** The ledger saved for partition 0 (asserted to exist). */
export async function storedLedger(ledgers: MemoryLedgerStore): Promise<LedgerJson> {
  const json = await ledgers.load(TOPIC, 0);
  assert.ok(json !== undefined, 'a ledger was saved');
  return json;
}

/** The in-doubt world's overrides (team 8 → d1, the schema read again at once, fast retries) under a test's batch or policy. */
export function baseOverrides(): Parameters<typeof worldConfig>[0] {
  return {
    teams: { map: { 8: 'd1' } },
    schemaRefreshMs: 1,
    errorPolicy: { defaults: { transient_network: fastRetries, unknown_server_error: fastRetries, row_data: { baseMs: 5, capMs: 20 } } },
  };
}
