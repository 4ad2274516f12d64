// Owns the delivery invariants `inserter verify` checks (docs/design/delivery.md §1), computed on
// in-memory inputs: what a route's topic holds, what its dead-letter topic names, which rows each
// destination's table holds and where the group committed. No I/O here, so it is unit-testable.

/** One record of a route's source topic, as the verifier read it. */
export interface ProducedRecord {
  readonly partition: number;
  readonly offset: bigint;
  /** false: not a JSON object (or a bad team id, oversized): it can only be a dead letter. */
  readonly decodable: boolean;
  /** The id field's value as a string; undefined when absent. */
  readonly id: string | undefined;
  readonly team: number | undefined;
}

/** The original position named by a dead letter's headers (dead letters are at least once). */
export interface DeadLetterRef {
  readonly partition: number;
  readonly offset: bigint;
  readonly errorClass: string | undefined;
  /**
   * Replayed (the replay ledger says done): into a destination's table — the record is then
   * expected there as a row — or back to the original topic, where its copy is a record of its own.
   */
  readonly replayed?: { readonly to: 'original' } | { readonly to: 'destination'; readonly destination: string };
}

export interface PartitionPosition {
  readonly partition: number;
  readonly logEnd: bigint;
  /** -1 when the group committed nothing for the partition. */
  readonly committed: bigint;
  /**
   * Offset of the partition's last record (-1: none). Transaction markers after it take offsets but
   * are never delivered, so a consumer's position may stop short of the log end, past this.
   */
  readonly lastRecord?: bigint;
}

/** The rows of one destination's table, tallied while they stream in. */
export class RowTally {
  count = 0;
  readonly byId = new Map<string, { times: number; team: number | undefined }>();
  readonly byTeam = new Map<number | undefined, number>();

  add(id: string, team: number | undefined): void {
    this.count++;
    const seen = this.byId.get(id);
    if (seen === undefined) this.byId.set(id, { times: 1, team });
    else seen.times++;
    this.byTeam.set(team, (this.byTeam.get(team) ?? 0) + 1);
  }
}

export interface DestinationRows {
  readonly id: string;
  readonly database: string;
  readonly table: string;
  readonly rows: RowTally;
  /** Why the table could not be read as expected (e.g. it does not exist): shown, not fatal. */
  readonly note?: string;
}

export interface RouteInputs {
  readonly route: string;
  readonly topic: string;
  readonly deadLetterTopic: string;
  /** The destination a record of this team goes to (a fixed route ignores the team); undefined: none. */
  readonly destinationOf: (team: number | undefined) => string | undefined;
  readonly produced: Iterable<ProducedRecord>;
  readonly deadLetters: Iterable<DeadLetterRef>;
  readonly destinations: readonly DestinationRows[];
  readonly partitions: readonly PartitionPosition[];
}

const SAMPLE = 20;

export interface Sampled<T> {
  count: number;
  sample: T[];
}

export interface DestinationReport {
  destination: string;
  table: string;
  expected: number;
  count: number;
  uniqExact: number;
  duplicates: Sampled<{ id: string; times: number }>;
  misrouted: Sampled<{ id: string; team: number | null; mappedTo: string | null }>;
  missing: Sampled<{ id: string; partition: number; offset: string; team: number | null }>;
  deadLettered: Sampled<{ id: string; partition: number; offset: string }>;
  unknown: Sampled<{ id: string }>;
  note?: string;
  ok: boolean;
}

export interface RouteReport {
  route: string;
  topic: string;
  deadLetterTopic: string;
  produced: { records: number; undecodable: number; withoutId: number };
  deadLetters: { records: number; repeated: number; notInTopic: number; byClass: Record<string, number>; replayed?: { toDestination: number; toOriginal: number } };
  good: number;
  /** Good records whose team has no destination (held, or never routable): nothing else holds for them. */
  unrouted: Sampled<{ partition: number; offset: string; team: number | null }>;
  /** Undecodable records that are not dead-lettered. */
  lostUndecodable: Sampled<{ partition: number; offset: string }>;
  destinations: DestinationReport[];
  partitions: Array<{ partition: number; logEnd: string; committed: string; ok: boolean }>;
  /** Each invariant of docs/design/delivery.md §1, true when it holds. */
  invariants: {
    /** count() = rows expected for the teams mapped there, per destination. */
    counts: boolean;
    /** uniqExact(id) = count(), per destination. */
    noDuplicates: boolean;
    /** No row of a team in a destination not mapped for it. */
    noMisrouted: boolean;
    /** rows ∪ dead letters = produced. */
    nothingLost: boolean;
    /** rows ∩ dead letters = ∅ (and no row the topic never produced). */
    noRowDeadLettered: boolean;
    /** The group's committed offset = log end, per partition. */
    committedAtLogEnd: boolean;
  };
  failures: string[];
  ok: boolean;
}

const positionKey = (partition: number, offset: bigint): string => `${partition}:${offset}`;

function push<T>(into: Sampled<T>, item: T): void {
  into.count++;
  if (into.sample.length < SAMPLE) into.sample.push(item);
}

const sampled = <T>(): Sampled<T> => ({ count: 0, sample: [] });

export function checkRoute(input: RouteInputs): RouteReport {
  const dead = new Map<string, DeadLetterRef>();
  const byClass: Record<string, number> = {};
  let deadRecords = 0;
  for (const d of input.deadLetters) {
    deadRecords++;
    const key = positionKey(d.partition, d.offset);
    const known = dead.get(key);
    // A record dead-lettered twice is replayed if either of its dead letters was.
    if (known !== undefined) {
      if (known.replayed === undefined && d.replayed !== undefined) dead.set(key, d);
      continue;
    }
    dead.set(key, d);
    const cls = d.errorClass ?? 'unknown';
    byClass[cls] = (byClass[cls] ?? 0) + 1;
  }

  const report: RouteReport = {
    route: input.route,
    topic: input.topic,
    deadLetterTopic: input.deadLetterTopic,
    produced: { records: 0, undecodable: 0, withoutId: 0 },
    deadLetters: { records: deadRecords, repeated: deadRecords - dead.size, notInTopic: 0, byClass },
    good: 0,
    unrouted: sampled(),
    lostUndecodable: sampled(),
    destinations: [],
    partitions: [],
    invariants: { counts: true, noDuplicates: true, noMisrouted: true, nothingLost: true, noRowDeadLettered: true, committedAtLogEnd: true },
    failures: [],
    ok: true,
  };
  const byDestination = new Map(input.destinations.map((d) => [d.id, d] as const));
  const expected = new Map<string, number>(input.destinations.map((d) => [d.id, 0]));
  const missing = new Map<string, DestinationReport['missing']>(input.destinations.map((d) => [d.id, sampled()]));
  /** id → position of a dead-lettered record, to find rows that are also dead letters. */
  const deadIds = new Map<string, ProducedRecord>();
  const goodIds = new Set<string>();
  const seenDead = new Set<string>();
  const replayed = { toDestination: 0, toOriginal: 0 };

  for (const r of input.produced) {
    report.produced.records++;
    const key = positionKey(r.partition, r.offset);
    const letter = dead.get(key);
    if (letter !== undefined) {
      seenDead.add(key);
      if (!r.decodable) report.produced.undecodable++;
      if (letter.replayed?.to === 'destination') {
        // Replayed into a table: a row like any other, expected there (exactly once).
        replayed.toDestination++;
        report.good++;
        if (r.id !== undefined) goodIds.add(r.id);
        const destination = letter.replayed.destination;
        if (expected.has(destination)) {
          expected.set(destination, (expected.get(destination) ?? 0) + 1);
          if (r.id !== undefined && byDestination.get(destination)?.rows.byId.get(r.id) === undefined) {
            const into = missing.get(destination);
            if (into) push(into, { id: r.id, partition: r.partition, offset: String(r.offset), team: r.team ?? null });
          }
        }
        continue;
      }
      // Replayed to the original topic: its copy is read (and checked) as a record of its own.
      if (letter.replayed?.to === 'original') replayed.toOriginal++;
      else if (r.id !== undefined) deadIds.set(r.id, r);
      continue;
    }
    if (!r.decodable) {
      report.produced.undecodable++;
      push(report.lostUndecodable, { partition: r.partition, offset: String(r.offset) });
      continue;
    }
    report.good++;
    if (r.id === undefined) report.produced.withoutId++;
    else goodIds.add(r.id);
    const destination = input.destinationOf(r.team);
    if (destination === undefined || !expected.has(destination)) {
      push(report.unrouted, { partition: r.partition, offset: String(r.offset), team: r.team ?? null });
      continue;
    }
    expected.set(destination, (expected.get(destination) ?? 0) + 1);
    if (r.id !== undefined && byDestination.get(destination)?.rows.byId.get(r.id) === undefined) {
      const into = missing.get(destination);
      if (into) push(into, { id: r.id, partition: r.partition, offset: String(r.offset), team: r.team ?? null });
    }
  }
  report.deadLetters.notInTopic = dead.size - seenDead.size;
  if (replayed.toDestination + replayed.toOriginal > 0) report.deadLetters.replayed = replayed;

  for (const d of input.destinations) report.destinations.push(checkDestination(d, expected.get(d.id) ?? 0, missing.get(d.id) ?? sampled(), input, deadIds, goodIds));
  for (const p of input.partitions) {
    const ok = p.committed === p.logEnd || (p.logEnd === 0n && p.committed < 0n) || (p.lastRecord !== undefined && p.committed > p.lastRecord && p.committed <= p.logEnd);
    report.partitions.push({ partition: p.partition, logEnd: String(p.logEnd), committed: String(p.committed), ok });
  }
  const ds = report.destinations;
  report.invariants = {
    counts: ds.every((d) => d.count === d.expected),
    noDuplicates: ds.every((d) => d.uniqExact === d.count),
    noMisrouted: ds.every((d) => d.misrouted.count === 0),
    nothingLost: report.unrouted.count === 0 && report.lostUndecodable.count === 0 && ds.every((d) => d.missing.count === 0),
    noRowDeadLettered: ds.every((d) => d.deadLettered.count === 0 && d.unknown.count === 0),
    committedAtLogEnd: report.partitions.every((p) => p.ok),
  };
  report.failures = routeFailures(report);
  report.ok = report.failures.length === 0;
  return report;
}

function checkDestination(
  d: DestinationRows,
  expected: number,
  missing: DestinationReport['missing'],
  input: RouteInputs,
  deadIds: ReadonlyMap<string, ProducedRecord>,
  goodIds: ReadonlySet<string>,
): DestinationReport {
  const out: DestinationReport = {
    destination: d.id,
    table: `${d.database}.${d.table}`,
    expected,
    count: d.rows.count,
    uniqExact: d.rows.byId.size,
    duplicates: sampled(),
    misrouted: sampled(),
    missing,
    deadLettered: sampled(),
    unknown: sampled(),
    ...(d.note === undefined ? {} : { note: d.note }),
    ok: true,
  };
  for (const [id, { times, team }] of d.rows.byId) {
    if (times > 1) push(out.duplicates, { id, times });
    const mappedTo = input.destinationOf(team);
    if (mappedTo !== d.id) {
      // Every copy of a misrouted id is misrouted.
      for (let i = 0; i < times; i++) push(out.misrouted, { id, team: team ?? null, mappedTo: mappedTo ?? null });
    }
    const deadRecord = deadIds.get(id);
    if (deadRecord !== undefined && !goodIds.has(id)) push(out.deadLettered, { id, partition: deadRecord.partition, offset: String(deadRecord.offset) });
    else if (!goodIds.has(id)) push(out.unknown, { id });
  }
  out.ok = out.count === expected && out.uniqExact === out.count && out.misrouted.count === 0 && out.missing.count === 0 && out.deadLettered.count === 0 && out.unknown.count === 0;
  return out;
}

function ids<T extends { id: string }>(s: Sampled<T>, show: (item: T) => string = (item) => item.id): string {
  return `${s.sample.map(show).join(', ')}${s.count > s.sample.length ? `, … (${s.count - s.sample.length} more)` : ''}`;
}

function routeFailures(r: RouteReport): string[] {
  const failures: string[] = [];
  const at = (what: string): string => `route ${r.route}: ${what}`;
  for (const d of r.destinations) {
    const where = (what: string): string => at(`destination ${d.destination} (${d.table}): ${what}`);
    if (d.count !== d.expected) failures.push(where(`count() ${d.count} ≠ expected ${d.expected}`));
    if (d.uniqExact !== d.count) failures.push(where(`uniqExact ${d.uniqExact} ≠ count() ${d.count}: ${d.duplicates.count} duplicated id(s): ${ids(d.duplicates, (x) => `${x.id} ×${x.times}`)}`));
    if (d.misrouted.count > 0) failures.push(where(`${d.misrouted.count} misrouted row(s): ${ids(d.misrouted, (x) => `${x.id} (team ${x.team ?? '?'} → ${x.mappedTo ?? 'no destination'})`)}`));
    if (d.missing.count > 0)
      failures.push(
        where(`${d.missing.count} lost record(s), neither here nor dead-lettered: ${ids(d.missing, (x) => `${x.id} (partition ${x.partition} offset ${x.offset} team ${x.team ?? '?'})`)}`),
      );
    if (d.deadLettered.count > 0) failures.push(where(`${d.deadLettered.count} row(s) also dead-lettered: ${ids(d.deadLettered, (x) => `${x.id} (partition ${x.partition} offset ${x.offset})`)}`));
    if (d.unknown.count > 0) failures.push(where(`${d.unknown.count} row(s) with an id the topic never produced: ${ids(d.unknown)}`));
  }
  const position = (x: { partition: number; offset: string }): string => `partition ${x.partition} offset ${x.offset}`;
  if (r.unrouted.count > 0)
    failures.push(at(`${r.unrouted.count} record(s) with no destination for their team and not dead-lettered: ${r.unrouted.sample.map((x) => `${position(x)} team ${x.team ?? 'none'}`).join(', ')}`));
  if (r.lostUndecodable.count > 0) failures.push(at(`${r.lostUndecodable.count} undecodable record(s) not dead-lettered: ${r.lostUndecodable.sample.map(position).join(', ')}`));
  for (const p of r.partitions) if (!p.ok) failures.push(at(`partition ${p.partition}: committed ${p.committed} ≠ log end ${p.logEnd}`));
  return failures;
}
