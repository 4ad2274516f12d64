// Owns `dlq replay --to destination`: inserts dead letters straight into the table they were meant
// for, encoded like the pipeline does (live schema → row shape, the original record's topic,
// partition, offset, timestamp, key and headers as metadata columns). Exactly once: each insert's
// token is derived from dead-letter coordinates and recorded as `pending` in the replay ledger before
// the insert, `done` after; a later run first finishes pending tokens with the same token (ClickHouse
// drops a block it already has), then skips everything recorded. Rows rejected again stay in the DLQ.
import { ByteChunks } from '../encode/byte-chunks.ts';
import { rowEncoderFor, type RowEncoder } from '../encode/types.ts';
import type { DestinationConfig } from '../config/load.ts';
import type { Decoder } from '../decode/types.ts';
import { ErrorClasses } from '../errors/classes.ts';
import { DecodeError, errorMessage } from '../errors/inserter-error.ts';
import { WarehouseError } from '../sink/errors.ts';
import type { Sink, TableRef } from '../sink/types.ts';
import { originalKey, type DeadLetter } from './record.ts';
import type { LedgerEntry, LedgerView } from './replay-ledger.ts';
import { emptyReport, type ReplayReport } from './replay-report.ts';
import { replayable } from './replay-select.ts';

export interface DestinationReplayDeps {
  readonly destinationFor: (id: string) => DestinationConfig | undefined;
  readonly sinkFor: (destination: DestinationConfig) => Sink;
  /**
   * The decoder of the route named in a dead letter (its format, and where it reads team ids from, to
   * fill a wrapped table's team column); a JSON decoder reading `team_id` when the route is unknown.
   */
  readonly decoderFor: (route: string | undefined) => Decoder;
  readonly signal: AbortSignal;
}

/** Rows per insert; chunks are cut in dead-letter offset order, so the same selection cuts the same. */
const perInsert = 1000;

interface Target {
  readonly destination: DestinationConfig;
  readonly table: TableRef;
}

export async function replayToDestination(all: readonly DeadLetter[], selected: readonly DeadLetter[], ledger: LedgerView, deps: DestinationReplayDeps, dryRun: boolean): Promise<ReplayReport> {
  const run = new DestinationReplay(ledger, deps, dryRun);
  try {
    await run.finishPending(all);
    await run.replay(selected);
  } finally {
    await run.close();
  }
  return run.report;
}

class DestinationReplay {
  readonly report: ReplayReport;
  readonly #ledger: LedgerView;
  readonly #deps: DestinationReplayDeps;
  readonly #dryRun: boolean;
  readonly #sinks = new Map<string, Sink>();
  readonly #shapes = new Map<string, Promise<RowEncoder | undefined>>();

  constructor(ledger: LedgerView, deps: DestinationReplayDeps, dryRun: boolean) {
    this.#ledger = ledger;
    this.#deps = deps;
    this.#dryRun = dryRun;
    this.report = emptyReport('destination', dryRun);
  }

  /** Tokens recorded as pending by an earlier run that stopped: re-sent whatever the filters say. */
  async finishPending(all: readonly DeadLetter[]): Promise<void> {
    const byId = new Map(all.map((l) => [l.id, l] as const));
    const byToken = new Map<string, DeadLetter[]>();
    for (const [id, entry] of this.#ledger.entries) {
      const letter = byId.get(id);
      if (entry.to !== 'destination' || entry.state !== 'pending' || entry.token === undefined || letter === undefined) continue;
      const group = byToken.get(entry.token) ?? [];
      group.push(letter);
      byToken.set(entry.token, group);
    }
    for (const [token, letters] of byToken) {
      const target = this.#target(letters[0] as DeadLetter);
      if (typeof target === 'string') for (const l of letters) this.report.failed.push({ id: l.id, detail: `pending under ${token}: ${target}` });
      else await this.#insert(target, letters, token);
    }
  }

  async replay(selected: readonly DeadLetter[]): Promise<void> {
    const groups = new Map<string, { target: Target; letters: DeadLetter[] }>();
    // Pending ones were handled by finishPending.
    for (const letter of replayable(selected, this.#ledger, this.report, true)) {
      const target = this.#target(letter);
      if (typeof target === 'string') {
        this.report.skipped.push({ id: letter.id, detail: target });
        continue;
      }
      const key = `${target.destination.id}\u0000${target.table.database}.${target.table.table}\u0000${letter.raw.topic}\u0000${letter.raw.partition}`;
      const group = groups.get(key) ?? { target, letters: [] };
      group.letters.push(letter);
      groups.set(key, group);
    }
    for (const { target, letters } of groups.values()) {
      letters.sort((a, b) => (a.raw.offset < b.raw.offset ? -1 : a.raw.offset > b.raw.offset ? 1 : 0));
      for (let i = 0; i < letters.length; i += perInsert) {
        const chunk = letters.slice(i, i + perInsert);
        const token = tokenFor(chunk);
        await this.#record(chunk, target, token);
        await this.#insert(target, chunk, token);
      }
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#sinks.values()].map((s) => s.close()));
  }

  #target(letter: DeadLetter): Target | string {
    if (letter.destination === undefined || letter.table === undefined) return `no destination/table headers (class ${letter.errorClass ?? '?'}): it never reached a table; use --to original`;
    if (letter.original === undefined) return 'no x-inserter-original-* headers';
    const destination = this.#deps.destinationFor(letter.destination);
    if (destination === undefined) return `destination ${letter.destination} is not in the configuration`;
    const dot = letter.table.indexOf('.');
    if (dot <= 0) return `table header ${JSON.stringify(letter.table)} is not db.table`;
    return { destination, table: { database: letter.table.slice(0, dot), table: letter.table.slice(dot + 1) } };
  }

  async #record(letters: readonly DeadLetter[], target: Target, token: string): Promise<void> {
    if (this.#dryRun) return;
    await this.#ledger.write(this.#entries('pending', target, token, letters));
  }

  async #insert(target: Target, letters: readonly DeadLetter[], token: string): Promise<void> {
    const where = `${target.destination.id} ${target.table.database}.${target.table.table}`;
    if (this.#dryRun) {
      for (const l of letters) this.report.replayed.push({ id: l.id, detail: `${where} (token ${token})` });
      return;
    }
    try {
      const sink = this.#sink(target.destination);
      const shape = await this.#shape(sink, target.table);
      if (shape === undefined) throw new WarehouseError(ErrorClasses.missingObject, `table ${target.table.database}.${target.table.table} does not exist`, 60, undefined);
      const body = new ByteChunks();
      for (const letter of letters) {
        const decoder = this.#deps.decoderFor(letter.route);
        // A Protobuf letter whose schema is not loaded yet waits for the registry (never blocks).
        const ready = letter.original === undefined ? undefined : decoder.prepare?.(letter.original, this.#deps.signal);
        if (ready !== undefined) await ready;
        encode(body, shape, letter, decoder);
      }
      await sink.insert({ table: target.table, format: shape.format, columns: shape.columns, body: body.slice(0, body.length), rows: letters.length, bytes: body.length, token }, this.#deps.signal);
    } catch (error) {
      await this.#failed(target, letters, token, error);
      return;
    }
    await this.#ledger.write(this.#entries('done', target, token, letters));
    for (const l of letters) this.report.replayed.push({ id: l.id, detail: `${where} (token ${token})` });
  }

  async #failed(target: Target, letters: readonly DeadLetter[], token: string, error: unknown): Promise<void> {
    const rejected = (error instanceof WarehouseError && (error.errorClass === ErrorClasses.rowData || error.errorClass === ErrorClasses.missingObject)) || error instanceof DecodeError;
    if (rejected && letters.length > 1 && error instanceof WarehouseError && error.errorClass === ErrorClasses.rowData) {
      // Find the bad rows by halving, each half under a sub-token recorded before its insert.
      const mid = Math.floor(letters.length / 2);
      const halves = [
        [0, mid],
        [mid, letters.length],
      ] as const;
      const parts = halves.map(([from, to]) => ({ letters: letters.slice(from, to), token: `${token}/${from}-${to}` }));
      if (!this.#dryRun) await this.#ledger.write(parts.flatMap((part) => this.#entries('pending', target, part.token, part.letters)));
      for (const part of parts) await this.#insert(target, part.letters, part.token);
      return;
    }
    const reason = error instanceof WarehouseError ? `${error.errorClass}: ${firstLine(error.message)}` : firstLine(errorMessage(error));
    // Rejected rows (or a missing table, an undecodable value) were certainly not inserted: forget
    // them, so a later replay may try again. Anything else may have landed: the entries stay
    // pending and the next run re-sends the same token.
    if (rejected) await this.#ledger.write(letters.map((l) => [l.id, null] as const));
    for (const l of letters) this.report.failed.push({ id: l.id, detail: rejected ? `${reason} (stays in the DLQ)` : `${reason} (left pending under ${token}: run the replay again)` });
  }

  #entries(state: LedgerEntry['state'], target: Target, token: string, letters: readonly DeadLetter[]): Array<readonly [string, LedgerEntry]> {
    const at = new Date().toISOString();
    const table = `${target.table.database}.${target.table.table}`;
    return letters.map((l) => [l.id, { to: 'destination', state, at, token, destination: target.destination.id, table, original: originalKey(l) }] as const);
  }

  #sink(destination: DestinationConfig): Sink {
    let sink = this.#sinks.get(destination.id);
    if (sink === undefined) {
      sink = this.#deps.sinkFor(destination);
      this.#sinks.set(destination.id, sink);
    }
    return sink;
  }

  #shape(sink: Sink, table: TableRef): Promise<RowEncoder | undefined> {
    const key = `${sink.destinationId}\u0000${table.database}.${table.table}`;
    let shape = this.#shapes.get(key);
    if (shape === undefined) {
      shape = sink.describe(table, this.#deps.signal).then((schema) => (schema === undefined ? undefined : rowEncoderFor(schema.columns).encoder));
      shape.catch(() => this.#shapes.delete(key));
      this.#shapes.set(key, shape);
    }
    return shape;
  }
}

/** `dlq:<dlq topic>:<partition>:<first offset>-<last offset>:<rows>` (one DLQ partition per chunk). */
export function tokenFor(letters: readonly DeadLetter[]): string {
  const first = letters[0];
  const last = letters[letters.length - 1];
  if (first === undefined || last === undefined) throw new Error('tokenFor: no dead letters');
  return `dlq:${first.raw.topic}:${first.raw.partition}:${first.raw.offset}-${last.raw.offset}:${letters.length}`;
}

function encode(out: ByteChunks, encoder: RowEncoder, letter: DeadLetter, decoder: Decoder): void {
  const record = letter.original;
  if (record === undefined) throw new Error(`${letter.id} has no original record`);
  const decoded = decoder.decode(record);
  encoder.write(out, record, decoded.row, letter.team ?? decoded.teamId);
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? '').slice(0, 300);
}
