// The invariants of the delivery core, checked against the simulation's durable state:
//   1. nothing lost: every record is in the table of its destination, or (when it cannot be a row
//      there) in the dead letters, for every route that reads its topic;
//   2. nothing duplicated: at most one row per record and route, and never both a row and a dead
//      letter (repeated dead letters are allowed and counted);
//   3. nothing misrouted: a row is only in the destination its team maps to;
//   4. no commit past an unresolved record: checked when each commit takes effect;
//   5. a committed position never moves backwards (re-reading committed records would re-insert
//      rows whose intents may be pruned); with the ledger (positions committed in its fenced write,
//      docs/design/delivery.md §4) not even through a late commit.
// Offsets may be sparse (offsets.ts): records are found by offset (binary search over each
// partition's records in offset order), never by using an offset as an index.
import type { Bus, CommitEvent } from './bus.ts';
import type { DeadLetters } from './dead-letters.ts';
import { indexAtOrAbove } from './offsets.ts';
import type { Warehouse } from './warehouse.ts';

/**
 * A row in `destination` (or, for a team whose mapping changed mid-run, in one of `alternatives`), or
 * a dead letter. `orDead`: a row a schema change made invalid (alter.ts): a row if it landed before,
 * else a dead letter; both only when every dead letter of it says it may have landed.
 */
export type Fate = { readonly kind: 'row'; readonly destination: string; readonly alternatives?: readonly string[]; readonly table: string; readonly orDead?: boolean } | { readonly kind: 'dead' };

function destinationsOf(fate: Fate & { kind: 'row' }): readonly string[] {
  return fate.alternatives === undefined ? [fate.destination] : [fate.destination, ...fate.alternatives];
}

export interface ExpectedRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly uuid: string | undefined;
  /** What must become of it, per route name. */
  readonly fates: ReadonlyMap<string, Fate>;
  readonly describe: string;
}

export interface Violation {
  readonly invariant: 'lost' | 'duplicated' | 'misrouted' | 'commit-past-unresolved' | 'commit-regressed' | 'stuck' | 'crashed' | 'anomaly';
  readonly message: string;
}

const MAX_VIOLATIONS = 50;

export class Checker {
  readonly violations: Violation[] = [];
  readonly #records: ExpectedRecord[];
  readonly #warehouse: Warehouse;
  readonly #deadLetters: DeadLetters;
  /** Per partition, in offset order. */
  readonly #byPartition = new Map<string, ExpectedRecord[]>();
  /** Per partition: how many of its first records (in offset order) are verified resolved (rows never disappear). */
  readonly #verified = new Map<string, number>();
  readonly #lateTouched = new Set<string>();
  /** Index of rows seen so far, per `destination\0table`, kept incrementally. */
  readonly #rowIndex = new Map<string, { seen: number; uuids: Set<string> }>();
  #lettersSeen = 0;
  readonly #dead = new Set<string>();

  /** With schema changes, a dead letter marked may-have-landed resolves any good row (§11). */
  readonly #markedResolves: boolean;

  /** Positions committed with the ledger (§4): no commit may move one back, not even a late one. */
  readonly #strictCommits: boolean;

  constructor(records: readonly ExpectedRecord[], bus: Bus, warehouse: Warehouse, deadLetters: DeadLetters, markedResolves = false, strictCommits = false) {
    this.#markedResolves = markedResolves;
    this.#strictCommits = strictCommits;
    this.#records = [...records];
    for (const r of records) {
      const key = `${r.topic}/${r.partition}`;
      const list = this.#byPartition.get(key) ?? [];
      list.push(r);
      this.#byPartition.set(key, list);
    }
    for (const list of this.#byPartition.values()) list.sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
    this.#warehouse = warehouse;
    this.#deadLetters = deadLetters;
    bus.onCommit = (event) => this.#onCommit(event);
  }

  add(invariant: Violation['invariant'], message: string): void {
    if (this.violations.length < MAX_VIOLATIONS) this.violations.push({ invariant, message });
  }

  #refresh(): void {
    for (const t of this.#warehouse.tables()) {
      const key = `${t.destination}\u0000${t.table}`;
      let index = this.#rowIndex.get(key);
      if (index === undefined) {
        index = { seen: 0, uuids: new Set() };
        this.#rowIndex.set(key, index);
      }
      for (; index.seen < t.rows.length; index.seen++) {
        const uuid = t.rows[index.seen]?.uuid;
        if (uuid !== undefined) index.uuids.add(uuid);
      }
    }
    const letters = this.#deadLetters.letters;
    for (; this.#lettersSeen < letters.length; this.#lettersSeen++) {
      const l = letters[this.#lettersSeen];
      if (l !== undefined) this.#dead.add(`${l.source}/${l.partition}/${l.offset}/${l.reason.route ?? ''}`);
    }
  }

  #resolved(record: ExpectedRecord): string | undefined {
    for (const [route, fate] of record.fates) {
      const dead = this.#dead.has(`${record.topic}/${record.partition}/${record.offset}/${route}`);
      if (dead) continue;
      if (fate.kind === 'row' && record.uuid !== undefined && destinationsOf(fate).some((d) => this.#rowIndex.get(`${d}\u0000${fate.table}`)?.uuids.has(record.uuid as string) === true)) continue;
      return route;
    }
    return undefined;
  }

  #onCommit(event: CommitEvent): void {
    const key = `${event.topic}/${event.partition}`;
    // A late commit (a previous owner's, applied after newer ones) may move the position back or
    // ahead of the owner's progress, which then commits below it: allowed on that partition from
    // then on. Nothing may be lost or duplicated for it, and the owners must commit forward again.
    if (event.late && !this.#strictCommits) this.#lateTouched.add(key);
    if (event.previous !== undefined && event.offset < event.previous && !this.#lateTouched.has(key)) {
      this.add('commit-regressed', `${key}: commit by incarnation ${event.incarnation} moved the position back from ${event.previous} to ${event.offset}`);
    }
    const list = this.#byPartition.get(key) ?? [];
    const from = this.#verified.get(key) ?? 0;
    // The records below the position, wherever it falls (in a gap, past the last record).
    const to = indexAtOrAbove(list, event.offset);
    if (to <= from) return;
    this.#refresh();
    for (let i = from; i < to; i++) {
      const record = list[i] as ExpectedRecord;
      const route = this.#resolved(record);
      if (route !== undefined) {
        this.add(
          'commit-past-unresolved',
          `${key}: incarnation ${event.incarnation} committed ${event.offset} but offset ${record.offset} (${record.describe}) is neither in its table nor dead-lettered for route ${route}`,
        );
        return;
      }
    }
    this.#verified.set(key, to);
  }

  /** The end-state checks; returns statistics for the report. */
  final(): { rows: number; deadLetters: number; repeatedDeadLetters: number } {
    const rowsByUuid = new Map<string, Array<{ destination: string; table: string; partition: number | undefined; offset: number | undefined }>>();
    let rows = 0;
    for (const t of this.#warehouse.tables()) {
      for (const row of t.rows) {
        rows++;
        if (row.uuid === undefined) {
          this.add('anomaly', `${t.destination}:${t.table} holds a row without uuid (token ${row.token})`);
          continue;
        }
        const list = rowsByUuid.get(row.uuid) ?? [];
        list.push({ destination: t.destination, table: t.table, partition: row.partition, offset: row.offset });
        rowsByUuid.set(row.uuid, list);
      }
    }
    const letters = new Map<string, number>();
    const unmarked = new Set<string>();
    for (const l of this.#deadLetters.letters) {
      const key = `${l.source}/${l.partition}/${l.offset}/${l.reason.route ?? ''}`;
      letters.set(key, (letters.get(key) ?? 0) + 1);
      if (l.reason.mayHaveLanded !== true) unmarked.add(key);
    }
    let repeated = 0;
    for (const n of letters.values()) if (n > 1) repeated += n - 1;
    const known = new Set<string>();
    for (const record of this.#records) {
      if (record.uuid !== undefined) known.add(record.uuid);
      const found = record.uuid === undefined ? [] : (rowsByUuid.get(record.uuid) ?? []);
      for (const [route, fate] of record.fates) {
        const letterKey = `${record.topic}/${record.partition}/${record.offset}/${route}`;
        const dead = letters.get(letterKey) ?? 0;
        if (fate.kind === 'dead') {
          if (dead === 0) this.add('lost', `${record.describe}: route ${route} should have dead-lettered it; it is not in the dead letters`);
          continue;
        }
        const allowed = destinationsOf(fate);
        const mayBeDead = fate.orDead === true || (this.#markedResolves && dead > 0 && !unmarked.has(letterKey));
        const here = found.filter((f) => allowed.includes(f.destination) && f.table === fate.table);
        if (here.length === 0 && dead === 0) this.add('lost', `${record.describe}: not in ${fate.destination}:${fate.table} (route ${route}) nor dead-lettered`);
        if (here.length === 0 && dead > 0 && !mayBeDead) this.add('lost', `${record.describe}: dead-lettered by route ${route} although it is a good row for ${fate.destination}:${fate.table}`);
        if (here.length > 1) this.add('duplicated', `${record.describe}: ${here.length} rows in ${fate.destination}:${fate.table}`);
        // Both: only a row a schema change refused while an earlier insert of it was in doubt, marked so.
        if (here.length > 0 && dead > 0 && (!mayBeDead || unmarked.has(letterKey)))
          this.add(
            'duplicated',
            `${record.describe}: both a row in ${fate.destination}:${fate.table} and ${dead} dead letter(s) for route ${route}${unmarked.has(letterKey) ? '' : ' (marked may-have-landed, but not a row a schema change refused)'}`,
          );
        for (const f of here) {
          if (f.partition !== undefined && f.offset !== undefined && (f.partition !== record.partition || f.offset !== Number(record.offset))) {
            this.add('anomaly', `${record.describe}: row in ${f.destination}:${f.table} says partition ${f.partition} offset ${f.offset}`);
          }
        }
      }
      const tables = new Set([...record.fates.values()].flatMap((f) => (f.kind === 'row' ? destinationsOf(f).map((d) => `${d}\u0000${f.table}`) : [])));
      for (const f of found) {
        if (!tables.has(`${f.destination}\u0000${f.table}`))
          this.add('misrouted', `${record.describe}: row found in ${f.destination}:${f.table}, expected only ${[...tables].map((t) => t.replace('\u0000', ':')).join(', ') || 'the dead letters'}`);
      }
    }
    for (const uuid of rowsByUuid.keys()) if (!known.has(uuid)) this.add('anomaly', `row with unknown uuid ${uuid}`);
    // A dead letter names its record by offset: one naming an offset no record has (a gap) came from
    // a core that counted offsets instead of reading them.
    const produced = new Set(this.#records.map((r) => `${r.topic}/${r.partition}/${r.offset}`));
    for (const l of this.#deadLetters.letters)
      if (!produced.has(`${l.source}/${l.partition}/${l.offset}`)) this.add('anomaly', `dead letter for ${l.source}/${l.partition}@${l.offset}: no record has that offset`);
    for (const a of this.#warehouse.anomalies) this.add('anomaly', a);
    return { rows, deadLetters: this.#deadLetters.letters.length, repeatedDeadLetters: repeated };
  }
}
