// Owns the operator's view of one replica: the pipeline's per-partition lanes folded into one line per
// (route, destination) with the worst state, the last insert and error, and the consumer lag of the
// partitions this replica owns; and the same folded per destination for the state gauges.
import type { LaneState, PipelineStatus } from '../pipeline/status.ts';

export const LANE_STATES: readonly LaneState[] = ['running', 'paused', 'parked', 'backing_off', 'failing'];

/** Worse states win when lanes of one route disagree. */
const severity: Record<LaneState, number> = { running: 0, paused: 1, parked: 2, backing_off: 3, failing: 4 };

export interface RouteLine {
  readonly route: string;
  readonly table: string;
  readonly destination: string;
  readonly state: LaneState;
  readonly partitions: number;
  /** Records behind the log end over the owned partitions of the route's topic; null when unknown. */
  readonly lag: number | null;
  readonly lastInsertAt: number | null;
  readonly lastErrorClass: string | null;
  readonly lastErrorAt: number | null;
  readonly insertedRows: number;
}

export interface PartitionLine {
  readonly topic: string;
  readonly partition: number;
  readonly committed: string;
  readonly committable: string;
  readonly unresolved: number;
  readonly held: number;
  readonly lag: number | null;
}

export type LagLookup = (topic: string, partition: number) => number | undefined;

export function partitionLines(status: PipelineStatus, lag: LagLookup): PartitionLine[] {
  return status.partitions.map((p) => ({
    topic: p.topic,
    partition: p.partition,
    committed: p.committed,
    committable: p.committable,
    unresolved: p.unresolved,
    held: p.held,
    lag: lag(p.topic, p.partition) ?? null,
  }));
}

export function routeLines(status: PipelineStatus, lag: LagLookup): RouteLine[] {
  const lines = new Map<string, { line: Omit<RouteLine, 'lag'>; lag: number | null; counted: Set<string> }>();
  for (const p of status.partitions) {
    for (const lane of p.lanes) {
      const key = `${lane.route}\u0000${lane.destination}`;
      let entry = lines.get(key);
      if (entry === undefined) {
        entry = {
          line: { route: lane.route, table: lane.table, destination: lane.destination, state: lane.state, partitions: 0, lastInsertAt: null, lastErrorClass: null, lastErrorAt: null, insertedRows: 0 },
          lag: null,
          counted: new Set(),
        };
        lines.set(key, entry);
      }
      const l = entry.line;
      const lastErrorNewer = lane.lastErrorAt !== undefined && (l.lastErrorAt === null || lane.lastErrorAt > l.lastErrorAt);
      entry.line = {
        ...l,
        state: severity[lane.state] > severity[l.state] ? lane.state : l.state,
        partitions: l.partitions + 1,
        lastInsertAt: Math.max(l.lastInsertAt ?? 0, lane.lastInsertAt ?? 0) || null,
        lastErrorClass: lastErrorNewer ? (lane.lastErrorClass ?? null) : l.lastErrorClass,
        lastErrorAt: lastErrorNewer ? (lane.lastErrorAt ?? null) : l.lastErrorAt,
        insertedRows: l.insertedRows + lane.insertedRows,
      };
      const partitionLag = lag(p.topic, p.partition);
      const partitionKey = `${p.topic}:${p.partition}`;
      if (partitionLag !== undefined && !entry.counted.has(partitionKey)) {
        entry.counted.add(partitionKey);
        entry.lag = (entry.lag ?? 0) + partitionLag;
      }
    }
  }
  return [...lines.values()].map((e) => ({ ...e.line, lag: e.lag })).sort((a, b) => a.route.localeCompare(b.route) || a.destination.localeCompare(b.destination));
}

/** The worst lane state per destination. */
export function destinationStates(status: PipelineStatus): Map<string, LaneState> {
  const out = new Map<string, LaneState>();
  for (const p of status.partitions) {
    for (const lane of p.lanes) {
      const current = out.get(lane.destination);
      if (current === undefined || severity[lane.state] > severity[current]) out.set(lane.destination, lane.state);
    }
  }
  for (const parked of status.parkedDestinations) if (!out.has(parked)) out.set(parked, 'parked');
  return out;
}
