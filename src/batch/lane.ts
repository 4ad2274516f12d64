// Owns one lane: the rows of one (topic, partition, route → table, destination), batched in
// arrival order. A lane delivers its batches one after another, so a batch's token is stable and
// the warehouse sees a partition's rows for a table in offset order.
import type { Intent } from '../ack/ledger.ts';
import { AckSet, type AckChunk } from '../ack/partition-tracker.ts';
import type { DestinationConfig, RouteConfig } from '../config/load.ts';
import { rowSize, type Row } from '../decode/row.ts';
import type { SourceRecord } from '../source/types.ts';
import type { TableRef } from '../sink/types.ts';

export class Batch {
  readonly records: SourceRecord[] = [];
  readonly rows: Row[] = [];
  readonly teams: Array<number | undefined> = [];
  readonly teamSet = new Set<number>();
  readonly acks = new AckSet();
  /** The partition state's generation when the batch was queued for delivery. */
  generation = 0;
  /** Aborted when a pause covers one of this batch's teams. */
  readonly stop = new AbortController();
  /** Set when this batch re-forms a batch whose intent was recorded before a crash. */
  intent: Intent | undefined;
  /** Re-formed from a recorded intent: an earlier attempt of its rows may still land. */
  replayed = false;
  readonly createdAt = Date.now();
  bytes = 0;
  /**
   * The bodies this queued batch will be sent as (a second copy of its rows), expected at its rows'
   * size from when it is queued until its first body is made (MemoryBudget.expectBodies): the source
   * stops reading before the bodies exist instead of after (docs/design/delivery.md §9).
   */
  bodyAllowance = 0;
  /** Dropped while queued (its destination parked): not delivered, its records are read again. */
  dropped = false;

  get size(): number {
    return this.records.length;
  }

  /**
   * Puts the rows in offset order (held rows released late join a batch after later rows). A batch
   * re-formed after a crash is read in offset order, so only then do its row positions — hence the
   * sub-batches and sub-tokens of a split — match the first attempt's. One pass when already sorted.
   */
  sortByOffset(): void {
    const records = this.records;
    let sorted = true;
    for (let i = 1; i < records.length && sorted; i++) sorted = (records[i - 1] as SourceRecord).offset < (records[i] as SourceRecord).offset;
    if (sorted) return;
    const order = records
      .map((_, i) => i)
      .sort((a, b) => {
        const d = (records[a] as SourceRecord).offset - (records[b] as SourceRecord).offset;
        return d < 0n ? -1 : d > 0n ? 1 : 0;
      });
    const [r, j, t] = [[...records], [...this.rows], [...this.teams]];
    order.forEach((from, to) => {
      records[to] = r[from] as SourceRecord;
      this.rows[to] = j[from] as Row;
      this.teams[to] = t[from];
    });
  }
}

export interface LaneStats {
  lastInsertAt: number;
  lastErrorAt: number;
  lastErrorClass: string | undefined;
  insertedRows: number;
  failing: boolean;
}

export class Lane {
  readonly route: RouteConfig;
  readonly destination: DestinationConfig;
  readonly table: TableRef;
  readonly topic: string;
  readonly partition: number;
  open: Batch | undefined;
  /** Batches being re-formed from intents recorded before a crash, by token. */
  readonly replays = new Map<string, Batch>();
  /** The previous delivery of this lane; the next one starts after it. */
  tail: Promise<void> = Promise.resolve();
  /** Batches queued behind `tail` and not started yet (a parked destination drops them). */
  readonly queued = new Set<Batch>();
  abandoned = false;
  /** Aborted when the lane is paused or abandoned: further insert attempts stop (none is cut). */
  stop = new AbortController();
  readonly stats: LaneStats = { lastInsertAt: 0, lastErrorAt: 0, lastErrorClass: undefined, insertedRows: 0, failing: false };

  constructor(topic: string, partition: number, route: RouteConfig, destination: DestinationConfig) {
    this.topic = topic;
    this.partition = partition;
    this.route = route;
    this.destination = destination;
    this.table = { database: route.database ?? destination.database, table: route.table };
  }

  append(record: SourceRecord, row: Row, team: number | undefined, chunk: AckChunk): Batch {
    return appendTo((this.open ??= new Batch()), record, row, team, chunk);
  }

  appendReplay(intent: Intent, record: SourceRecord, row: Row, team: number | undefined, chunk: AckChunk): Batch {
    let batch = this.replays.get(intent.token);
    if (batch === undefined) {
      batch = new Batch();
      batch.intent = intent;
      batch.replayed = true;
      this.replays.set(intent.token, batch);
    }
    return appendTo(batch, record, row, team, chunk);
  }

  take(): Batch | undefined {
    const batch = this.open;
    this.open = undefined;
    return batch;
  }

  /** Deterministic insert token for rows [from, to) of a batch: the partition's offset range names it. */
  token(batch: Batch, from: number, to: number): string {
    const first = batch.records[0]?.offset ?? -1n;
    const last = batch.records[batch.records.length - 1]?.offset ?? -1n;
    // A re-formed batch keeps the token its intent recorded, so the warehouse recognises it.
    const base = batch.intent?.token ?? `${this.topic}:${this.partition}:${this.destination.id}:${this.table.database}.${this.table.table}:${first}-${last}:${batch.size}`;
    return from === 0 && to === batch.size ? base : `${base}/${from}-${to}`;
  }
}

function appendTo(batch: Batch, record: SourceRecord, row: Row, team: number | undefined, chunk: AckChunk): Batch {
  batch.records.push(record);
  batch.rows.push(row);
  batch.teams.push(team);
  if (team !== undefined) batch.teamSet.add(team);
  batch.acks.add(chunk);
  batch.bytes += rowSize(row);
  return batch;
}
