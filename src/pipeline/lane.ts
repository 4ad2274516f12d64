// Owns one lane: the rows of one (topic, partition, route → table, destination), batched in
// arrival order. A lane delivers its batches one after another, so a batch's token is stable and
// the warehouse sees a partition's rows for a table in offset order.
import { AckSet, type AckChunk } from '../ack/partition-tracker.ts';
import type { DestinationConfig, RouteConfig } from '../config/load.ts';
import type { SourceRecord } from '../source/types.ts';
import type { TableRef } from '../sink/types.ts';

export class Batch {
  readonly records: SourceRecord[] = [];
  readonly jsons: Buffer[] = [];
  readonly teams: Array<number | undefined> = [];
  readonly acks = new AckSet();
  readonly createdAt = Date.now();
  bytes = 0;

  get size(): number {
    return this.records.length;
  }
}

export class Lane {
  readonly route: RouteConfig;
  readonly destination: DestinationConfig;
  readonly table: TableRef;
  readonly topic: string;
  readonly partition: number;
  open: Batch | undefined;
  /** The previous delivery of this lane; the next one starts after it. */
  tail: Promise<void> = Promise.resolve();
  abandoned = false;

  constructor(topic: string, partition: number, route: RouteConfig, destination: DestinationConfig) {
    this.topic = topic;
    this.partition = partition;
    this.route = route;
    this.destination = destination;
    this.table = { database: route.database ?? destination.database, table: route.table };
  }

  append(record: SourceRecord, json: Buffer, team: number | undefined, chunk: AckChunk): Batch {
    const batch = (this.open ??= new Batch());
    batch.records.push(record);
    batch.jsons.push(json);
    batch.teams.push(team);
    batch.acks.add(chunk);
    batch.bytes += json.length;
    return batch;
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
    const base = `${this.topic}:${this.partition}:${this.destination.id}:${this.table.database}.${this.table.table}:${first}-${last}:${batch.size}`;
    return from === 0 && to === batch.size ? base : `${base}/${from}-${to}`;
  }
}
