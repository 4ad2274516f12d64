// Ranges in doubt (docs/design/delivery.md §11): an insert whose outcome is unknown (it may have
// landed) is refused on its retry because the live schema changed in between. A split would insert
// its rows under new tokens, twice if the first attempt landed; instead the row the refusal names is
// left out and the rest sent again under the same token, and the row is dead-lettered marked
// may-have-landed. A refusal naming no row holds the range. Under the same schema a refusal proves
// the first attempt was refused too, and the range is split as usual.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DestinationConfig } from '../../../src/config/load.ts';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import type { Pipeline } from '../../../src/pipeline/pipeline.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import type { Sink } from '../../../src/sink/types.ts';
import { event, HeldDeadLetters, startWorld, TokenWarehouse, until, worldConfig, type FedSource } from '../../helpers/pipeline-world.ts';

const altered = { name: 'altered', type: 'UInt8', defaultKind: 'DEFAULT' };

function isAltered(warehouse: TokenWarehouse): boolean {
  return warehouse.columns.some((c) => c.name === 'altered');
}

/** After the ALTER, the server refuses rows holding `victims`: naming the row ("(at row N)" of the body), or not. */
function refuseAfterAlter(warehouse: TokenWarehouse, victims: ReadonlySet<string>, naming: boolean): void {
  warehouse.fail = (_token, _rows, uuids) => {
    if (!isAltered(warehouse)) return undefined;
    const at = uuids.findIndex((u) => victims.has(u));
    if (at < 0) return undefined;
    return naming
      ? new WarehouseError(ErrorClasses.rowData, `Cannot parse input (at row ${at + 1})`, 27, undefined, at + 1)
      : new WarehouseError(ErrorClasses.unknownServerError, 'Code: 99999. a rejection no class lists', 99999, undefined);
  };
}

/** A sink whose first insert of each token is answered with a network error: stored first (`landed`) or not. */
function firstReplyLost(warehouse: TokenWarehouse, landed: boolean, onFirst: () => void): (d: DestinationConfig) => Sink {
  const seen = new Set<string>();
  return warehouse.sinksWith(async (inner, batch, signal) => {
    const first = batch.rows > 0 && !seen.has(batch.token);
    if (first) seen.add(batch.token);
    if (first && !landed) {
      onFirst();
      throw new WarehouseError(ErrorClasses.transientNetwork, 'connect ECONNRESET', undefined, undefined);
    }
    const result = await inner.insert(batch, signal);
    if (first) {
      onFirst();
      throw new WarehouseError(ErrorClasses.transientNetwork, 'socket hang up (stored)', undefined, undefined);
    }
    return result;
  });
}

const config = worldConfig({
  teams: { map: { 8: 'd1' } },
  schemaRefreshMs: 1,
  batch: { maxRows: 10, maxBytes: 1 << 24, maxAgeMs: 20 },
  errorPolicy: { defaults: { unknown_server_error: { baseMs: 5, capMs: 20, pauseMs: 20 } } },
});
const tenRows = Array.from({ length: 10 }, (_, i) => event(i, 8));

/**
 * A pipeline over `warehouse` whose first insert of each token loses its reply, stored first
 * (`landed`) or not; the table is altered then unless `alter` is false.
 */
function startInDoubt(warehouse: TokenWarehouse, landed: boolean, alter = true): { pipeline: Pipeline; source: FedSource; deadLetters: HeldDeadLetters } {
  const deadLetters = new HeldDeadLetters();
  const onFirst = alter ? () => void (warehouse.columns = [...warehouse.columns, altered]) : () => undefined;
  const { pipeline, source } = startWorld({ config, warehouse, deadLetters, sinkFactory: firstReplyLost(warehouse, landed, onFirst) });
  return { pipeline, source, deadLetters };
}

function flagged(deadLetters: HeldDeadLetters): Array<[bigint, boolean | undefined]> {
  return deadLetters.written.map((d) => [d.offset, d.reason.mayHaveLanded]);
}

test('first attempt not stored, schema changed: the named rows are left out and the others land once under the same token', async () => {
  const warehouse = new TokenWarehouse();
  refuseAfterAlter(warehouse, new Set(['u3', 'u8']), true);
  const { pipeline, source, deadLetters } = startInDoubt(warehouse, false);
  try {
    await source.append(tenRows);
    await until(() => source.committed === 10n, 'committed to 10');
    assert.deepEqual(warehouse.uuids().sort(), ['u0', 'u1', 'u2', 'u4', 'u5', 'u6', 'u7', 'u9']);
    assert.equal(new Set(warehouse.rows.map((r) => r.token)).size, 1, 'one token: nothing split');
    // u8 is the 8th row of the body once u3 is left out: mapped back to its batch row.
    assert.deepEqual(flagged(deadLetters), [
      [3n, true],
      [8n, true],
    ]);
  } finally {
    await pipeline.destroy();
  }
});

test('first attempt stored, schema changed, the server refuses rows: the retry without them is deduplicated; every row once; the refused ones also dead-lettered, marked', async () => {
  const warehouse = new TokenWarehouse();
  refuseAfterAlter(warehouse, new Set(['u3', 'u8']), true);
  const { pipeline, source, deadLetters } = startInDoubt(warehouse, true);
  try {
    await source.append(tenRows);
    await until(() => source.committed === 10n, 'committed to 10');
    assert.deepEqual(
      warehouse.uuids().sort(),
      tenRows.map((_, i) => `u${i}`),
    );
    assert.deepEqual(flagged(deadLetters), [
      [3n, true],
      [8n, true],
    ]);
  } finally {
    await pipeline.destroy();
  }
});

test('schema changed and the refusal names no row: the range is held (retried whole under its token, nothing committed), and lands once when the schema is changed back', async () => {
  const warehouse = new TokenWarehouse();
  refuseAfterAlter(warehouse, new Set(['u5']), false);
  let refusals = 0;
  const refuse = warehouse.fail;
  warehouse.fail = (token, rows, uuids) => {
    const error = refuse?.(token, rows, uuids);
    if (error !== undefined) refusals++;
    return error;
  };
  const { pipeline, source, deadLetters } = startInDoubt(warehouse, true);
  try {
    await source.append(tenRows);
    await until(() => refusals >= 4, 'refused whole four times');
    assert.equal(source.committed < 1n, true, 'nothing committed while held');
    assert.equal(new Set(warehouse.inserts.map((i) => i.split(' ')[0])).size, 1, 'no other token tried');
    warehouse.columns = warehouse.columns.filter((c) => c.name !== 'altered');
    await until(() => source.committed === 10n, 'committed to 10 after the revert');
    assert.deepEqual(
      warehouse.uuids().sort(),
      tenRows.map((_, i) => `u${i}`),
    );
    assert.deepEqual(deadLetters.written, []);
  } finally {
    await pipeline.destroy();
  }
});

test('control: the same schema before and after an unknown outcome: the refusal proves the first attempt was refused too; the row is isolated as usual, not marked', async () => {
  const warehouse = new TokenWarehouse();
  warehouse.columns = [...warehouse.columns, altered];
  refuseAfterAlter(warehouse, new Set(['u3']), true);
  const { pipeline, source, deadLetters } = startInDoubt(warehouse, false, false);
  try {
    await source.append(tenRows);
    await until(() => source.committed === 10n, 'committed to 10');
    assert.deepEqual(warehouse.uuids().sort(), ['u0', 'u1', 'u2', 'u4', 'u5', 'u6', 'u7', 'u8', 'u9']);
    assert.equal(new Set(warehouse.rows.map((r) => r.token)).size > 1, true, 'split into parts');
    assert.deepEqual(flagged(deadLetters), [[3n, undefined]]);
  } finally {
    await pipeline.destroy();
  }
});
