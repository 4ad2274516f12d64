// `dlq replay --to destination` over an in-memory ledger and a warehouse that deduplicates tokens
// like ClickHouse: rows land once with the original record's metadata; running again inserts
// nothing; a row still rejected is found by halving and stays in the DLQ (forgotten by the ledger)
// while the rest land; a crash between the insert and the `done` entry is finished by the next run
// with the same token (no second copy); two dead letters of one record insert one row.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig } from '../../../src/config/load.ts';
import { decodeJsonRecord } from '../../../src/decode/json.ts';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { parseDeadLetter, type DeadLetter } from '../../../src/deadletter/record.ts';
import { replayToDestination, type DestinationReplayDeps } from '../../../src/deadletter/replay-destination.ts';
import type { LedgerEntry, LedgerView } from '../../../src/deadletter/replay-ledger.ts';
import { replayToOriginal } from '../../../src/deadletter/replay-original.ts';
import { deadLetterHeader as h } from '../../../src/deadletter/types.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';
import type { InsertBatch, InsertResult, Sink, TableRef, TableSchema } from '../../../src/sink/types.ts';

class MemoryLedger implements LedgerView {
  readonly entries = new Map<string, LedgerEntry>();
  readonly #byOriginal = new Map<string, string>();
  /** Throws (a crash) on the write whose entries are in this state, once. */
  crashOn: LedgerEntry['state'] | undefined;

  recordedFor(original: string): string | undefined {
    return this.#byOriginal.get(original);
  }

  async write(entries: ReadonlyArray<readonly [string, LedgerEntry | null]>): Promise<void> {
    if (this.crashOn !== undefined && entries.some(([, e]) => e?.state === this.crashOn)) {
      this.crashOn = undefined;
      throw new Error('killed');
    }
    for (const [key, entry] of entries) {
      if (entry === null) this.entries.delete(key);
      else this.entries.set(key, entry);
      if (entry?.original !== undefined) this.#byOriginal.set(entry.original, key);
    }
  }
}

/** A table that keeps rows, rejects a row whose uuid is `bad`, and drops a block whose token it has seen. */
class Warehouse implements Sink {
  readonly destinationId = 'a';
  readonly rows: Array<Record<string, unknown>> = [];
  readonly tokens = new Set<string>();
  inserts = 0;

  async describe(_table: TableRef): Promise<TableSchema> {
    return { columns: ['id', 'uuid', '_topic', '_partition', '_offset'].map((name) => ({ name, type: 'String', defaultKind: '' })) };
  }

  async createTable(): Promise<void> {}

  async insert(batch: InsertBatch): Promise<InsertResult> {
    this.inserts++;
    const lines = Buffer.concat(batch.body)
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const bad = lines.findIndex((l) => l.uuid === 'bad');
    if (bad >= 0) throw new WarehouseError(ErrorClasses.rowData, `Cannot parse uuid bad: (at row ${bad + 1})`, 376, undefined);
    if (this.tokens.has(batch.token)) return { writtenRows: 0 };
    this.tokens.add(batch.token);
    this.rows.push(...lines);
    return { writtenRows: lines.length };
  }

  async close(): Promise<void> {}
}

const config = buildConfig({ kafka: { brokers: ['k:9092'] }, destinations: [{ id: 'a', url: 'http://ch:8123' }], routes: [{ topic: 'ev', table: 't', destination: 'a' }] }, '/');

function letter(dlqOffset: number, originalOffset: number, uuid = 'u'): DeadLetter {
  const reason: Record<string, string> = {
    [h.class]: 'row_data',
    [h.route]: 'ev->t',
    [h.destination]: 'a',
    [h.table]: 'db.t',
    [h.team]: '1',
    [h.topic]: 'ev',
    [h.partition]: '2',
    [h.offset]: String(originalOffset),
    [h.timestamp]: '1600000000000',
  };
  return parseDeadLetter({
    topic: 'ev.dlq',
    partition: 0,
    offset: BigInt(dlqOffset),
    timestamp: 1_700_000_000_000n,
    key: undefined,
    value: Buffer.from(JSON.stringify({ id: originalOffset, uuid })),
    headers: Object.entries(reason).map(([k, v]) => [Buffer.from(k), Buffer.from(v)] as [Buffer, Buffer]),
  });
}

function deps(warehouse: Warehouse): DestinationReplayDeps {
  return {
    destinationFor: (id) => config.destinations.find((d) => d.id === id),
    sinkFor: () => warehouse,
    decoderFor: () => ({ format: 'json', decode: (record) => decodeJsonRecord(record, { maxMessageBytes: Number.MAX_SAFE_INTEGER, teamId: { from: 'field', field: 'team_id' } }) }),
    signal: new AbortController().signal,
  };
}

test('rows land once, with the original metadata; a second run inserts nothing', async () => {
  const ledger = new MemoryLedger();
  const warehouse = new Warehouse();
  const letters = [0, 1, 2, 3, 4].map((o) => letter(o, 100 + o));
  const first = await replayToDestination(letters, letters, ledger, deps(warehouse), false);
  assert.equal(first.replayed.length, 5);
  assert.deepEqual([...warehouse.tokens], ['dlq:ev.dlq:0:0-4:5']);
  assert.deepEqual(
    warehouse.rows.map((r) => [r._topic, r._partition, r._offset]),
    [100, 101, 102, 103, 104].map((o) => ['ev', 2, o]),
  );
  const second = await replayToDestination(letters, letters, ledger, deps(warehouse), false);
  assert.deepEqual([second.replayed.length, second.skipped.length, warehouse.inserts], [0, 5, 1]);
  const dry = await replayToDestination(letters, letters, new MemoryLedger(), deps(new Warehouse()), true);
  assert.equal(dry.replayed.length, 5);
});

test('a row still rejected is found by halving and stays in the DLQ; the others land once', async () => {
  const ledger = new MemoryLedger();
  const warehouse = new Warehouse();
  const letters = [0, 1, 2, 3, 4, 5, 6].map((o) => letter(o, 100 + o, o === 4 ? 'bad' : 'u'));
  const first = await replayToDestination(letters, letters, ledger, deps(warehouse), false);
  assert.deepEqual(
    first.failed.map((f) => f.id),
    ['ev.dlq/0/4'],
  );
  assert.match(first.failed[0]?.detail ?? '', /row_data: Cannot parse uuid bad.*stays in the DLQ/);
  assert.equal(first.replayed.length, 6);
  assert.equal(ledger.entries.has('ev.dlq/0/4'), false, 'forgotten: a later replay may try it again');
  const second = await replayToDestination(letters, letters, ledger, deps(warehouse), false);
  assert.deepEqual([second.replayed.length, second.skipped.length, second.failed.length], [0, 6, 1]);
  assert.deepEqual(warehouse.rows.map((r) => r._offset).sort(), [100, 101, 102, 103, 105, 106]);
});

test('a crash between the insert and its done entry: the next run re-sends the same token, once', async () => {
  const ledger = new MemoryLedger();
  const warehouse = new Warehouse();
  const letters = [0, 1, 2].map((o) => letter(o, 100 + o));
  ledger.crashOn = 'done';
  await assert.rejects(replayToDestination(letters, letters, ledger, deps(warehouse), false), /killed/);
  assert.equal(warehouse.rows.length, 3);
  assert.ok([...ledger.entries.values()].every((e) => e.state === 'pending'));
  // The next run selects only one of them: the pending token is finished whole anyway.
  const second = await replayToDestination(letters, letters.slice(0, 1), ledger, deps(warehouse), false);
  assert.equal(second.replayed.length, 3);
  assert.equal(warehouse.inserts, 2);
  assert.equal(warehouse.rows.length, 3, 'the block was dropped as a duplicate');
  assert.ok([...ledger.entries.values()].every((e) => e.state === 'done'));
});

test('two dead letters of one record: one row; replayed to the destination, never to the original topic', async () => {
  const ledger = new MemoryLedger();
  const warehouse = new Warehouse();
  const letters = [letter(0, 100), letter(1, 100), letter(2, 101)];
  const report = await replayToDestination(letters, letters, ledger, deps(warehouse), false);
  assert.deepEqual(
    report.skipped.map((s) => s.detail),
    ['a second dead letter of the same record as ev.dlq/0/0'],
  );
  assert.equal(warehouse.rows.length, 2);
  const later = [...letters, letter(3, 101)]; // written again after the replay
  const original = await replayToOriginal(later, ledger, true);
  assert.equal(original.replayed.length, 0);
  assert.match(original.skipped[3]?.detail ?? '', /already replayed to destination as ev\.dlq\/0\/2/);
});
