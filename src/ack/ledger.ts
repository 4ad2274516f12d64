// Owns the exactly-once state of one source partition (docs/design/delivery.md §3–5):
//   - per route, the records known to be resolved (in their warehouse, acknowledged as dead letters,
//     or dropped by an explicit policy) above `resolvedBelow`, the position it was last pruned at;
//   - the pending intents: batches whose insert was decided, each naming exactly the records it holds
//     and, once split, the sub-batches (row ranges) and what became of each.
// An intent is made durable before its insert and a split before its first sub-insert, so a new
// owner re-forms exactly the same inserts under the same tokens. No claim is ever made about a
// record an intent or a resolved set does not name.
import type { ErrorCode } from '../errors/codes.ts';
import { OffsetSet } from './offset-set.ts';
import type { CommitPosition } from '../source/types.ts';

/** What became of one row range of a batch: waiting, in the warehouse, dead-lettered, or dropped. */
export type PartState = 'pending' | 'done' | 'dead' | 'dropped';

/** Why a range was dead-lettered: replayed as is, so a re-formed batch decides the same way. */
export interface PartReason {
  readonly errorClass: string;
  readonly code: ErrorCode;
  readonly message: string;
  readonly serverCode?: number;
  readonly attempts: number;
  /**
   * The row may also be in the warehouse: it was refused by an attempt after the live schema
   * changed, while an earlier attempt of its range (under another schema) may have landed
   * (docs/design/delivery.md §11). Its dead letter says so, and `dlq replay` skips it unless told.
   */
  readonly mayHaveLanded?: boolean;
}

/** A leaf of a batch's split tree: rows [from, to) of the batch in offset order. */
export interface IntentPart {
  readonly from: number;
  readonly to: number;
  state: PartState;
  reason?: PartReason;
  /**
   * Rows of the part (batch row indexes, ascending) left out of its insert, which is still sent
   * under the part's token, and dead-lettered each with its own refusal (`excludedReasons`, in the
   * same order): rows refused after a schema change while an earlier attempt of the part may have
   * landed (a split would re-insert it).
   */
  excluded?: number[];
  excludedReasons?: PartReason[];
}

export interface Intent {
  /** Lane identity: route name and destination id. */
  readonly route: string;
  readonly destination: string;
  readonly token: string;
  /** Exactly the records of the batch; in offset order they are its rows 0…rows-1. */
  readonly records: OffsetSet;
  readonly rows: number;
  /** Teams whose rows the batch holds (for pauses by team; never for claims). */
  readonly teams: readonly number[] | undefined;
  /** The split tree's leaves in row order; undefined until the batch is first split. */
  parts: IntentPart[] | undefined;
  /**
   * Fingerprints of the live schemas any insert of this batch was sent under (TableSchemas): a
   * range in doubt may be split only when its verdict cannot have changed since (all equal now).
   */
  schemas: string[];
  /** Every row is resolved: the intent has been folded into its route's resolved set. */
  done: boolean;
}

/** The last element: each excluded row's reason (one reason for all of them before session 7). */
type PartJson = [number, number, PartState] | [number, number, PartState, PartReason] | [number, number, PartState, PartReason | null, number[], PartReason[] | PartReason];

export interface LedgerJson {
  v: 2;
  /** Every record below this offset is resolved (the position this ledger was last pruned at). */
  resolvedBelow?: string;
  /** Per route: resolved offsets at or above resolvedBelow, as an encoded OffsetSet. */
  resolved?: Record<string, string>;
  intents: Array<{ route: string; destination: string; token: string; records: string; rows: number; teams?: number[]; parts?: PartJson[]; schemas?: string[] }>;
}

/** Ledgers written before exact intents: only the position they were pruned at carries over. */
interface LedgerJsonV1 {
  v: 1;
  resolvedBelow?: string;
}

/** The schema of an intent written before schemas were recorded: never equal to a real fingerprint. */
export const UNKNOWN_SCHEMA = 'unknown';

/** Longest dead-letter reason kept in a ledger (ClickHouse messages can be long). */
const REASON_CHARS = 500;

export class Ledger {
  readonly #intents: Intent[] = [];
  readonly #resolved = new Map<string, OffsetSet>();
  #resolvedBelow = -1n;
  #dirty = false;
  /** Pending intents dropped because they came from a ledger of the old format. */
  droppedLegacy = 0;

  static fromJson(json: LedgerJson | LedgerJsonV1 | undefined): Ledger {
    const ledger = new Ledger();
    if (json?.resolvedBelow !== undefined) ledger.#resolvedBelow = BigInt(json.resolvedBelow);
    if (json === undefined || json.v !== 2) {
      ledger.droppedLegacy = json === undefined ? 0 : ((json as { intents?: unknown[] }).intents?.length ?? 0);
      return ledger;
    }
    for (const [route, text] of Object.entries(json.resolved ?? {})) ledger.#resolved.set(route, OffsetSet.decode(text));
    for (const i of json.intents) {
      const parts = i.parts?.map(partOf);
      ledger.#intents.push({
        route: i.route,
        destination: i.destination,
        token: i.token,
        records: OffsetSet.decode(i.records),
        rows: i.rows,
        teams: i.teams,
        parts,
        // Written before schemas were recorded: sent under a schema nobody knows, which equals none.
        schemas: i.schemas ?? [UNKNOWN_SCHEMA],
        done: false,
      });
    }
    return ledger;
  }

  toJson(): LedgerJson {
    const resolved: Record<string, string> = {};
    for (const [route, set] of this.#resolved) if (set.size > 0) resolved[route] = set.encode();
    return {
      v: 2,
      ...(this.#resolvedBelow >= 0n ? { resolvedBelow: String(this.#resolvedBelow) } : {}),
      ...(Object.keys(resolved).length > 0 ? { resolved } : {}),
      intents: this.#intents.map((i) => ({
        route: i.route,
        destination: i.destination,
        token: i.token,
        records: i.records.encode(),
        rows: i.rows,
        ...(i.teams ? { teams: [...i.teams] } : {}),
        ...(i.parts ? { parts: i.parts.map(partJson) } : {}),
        schemas: [...i.schemas], // always written: a missing field means a ledger of before schemas
      })),
    };
  }

  get dirty(): boolean {
    return this.#dirty;
  }

  markClean(): void {
    this.#dirty = false;
  }

  markDirty(): void {
    this.#dirty = true;
  }

  /**
   * Records below this offset were resolved by an owner that committed past them. A later owner that
   * reads them again — the group's position went back, e.g. a commit sent before a rebalance landed
   * after the new owner's — skips them.
   */
  get resolvedBelow(): bigint {
    return this.#resolvedBelow;
  }

  /** Pending intents, oldest first. */
  get intents(): readonly Intent[] {
    return this.#intents;
  }

  pending(): number {
    return this.#intents.length;
  }

  /** The record is in its warehouse, dead-lettered or dropped for this route: never route it again. */
  isResolved(route: string, offset: bigint): boolean {
    if (offset < this.#resolvedBelow) return true;
    return this.#resolved.size > 0 && this.#resolved.get(route)?.has(offset) === true;
  }

  /** The pending intent that names this record for this route, if any. */
  claim(route: string, offset: bigint): Intent | undefined {
    for (const intent of this.#intents) if (intent.route === route && intent.records.has(offset)) return intent;
    return undefined;
  }

  add(intent: Intent): void {
    this.#intents.push(intent);
    this.#dirty = true;
  }

  /** A record resolved outside any intent (its dead letter is acknowledged). */
  markResolved(route: string, offset: bigint): void {
    this.#resolvedSet(route).add(offset);
    this.#dirty = true;
  }

  /** Every row of the intent is resolved: its records join the route's resolved set. */
  complete(intent: Intent): void {
    if (intent.done) return;
    intent.done = true;
    const i = this.#intents.indexOf(intent);
    if (i >= 0) this.#intents.splice(i, 1);
    this.#resolvedSet(intent.route).addAll(intent.records);
    this.#dirty = true;
  }

  /** Rows [from, to) of the intent, one of its parts (or the whole), are split into `ranges` (covering them in order). */
  split(intent: Intent, from: number, to: number, ranges: ReadonlyArray<readonly [number, number]>): void {
    const parts = intent.parts ?? [{ from: 0, to: intent.rows, state: 'pending' }];
    const at = parts.findIndex((p) => p.from === from && p.to === to);
    if (at < 0) throw new Error(`intent ${intent.token} has no part ${from}-${to}`);
    parts.splice(at, 1, ...ranges.map(([a, b]): IntentPart => ({ from: a, to: b, state: 'pending' })));
    intent.parts = parts;
    this.#dirty = true;
  }

  /** Records what became of rows [from, to) — one of the intent's parts, or the whole batch. */
  settle(intent: Intent, from: number, to: number, state: PartState, reason?: PartReason): void {
    const whole = from === 0 && to === intent.rows;
    if (intent.parts === undefined && whole && state === 'done') return; // complete() follows
    const parts = intent.parts ?? (whole ? [{ from, to, state: 'pending' }] : []);
    const part = parts.find((p) => p.from === from && p.to === to);
    if (part === undefined) throw new Error(`intent ${intent.token} has no part ${from}-${to}`);
    part.state = state;
    if (reason !== undefined) part.reason = { ...reason, message: reason.message.slice(0, REASON_CHARS) };
    intent.parts = parts;
    this.#dirty = true;
  }

  /** An insert of the intent is about to be sent under this schema; true when it is new (the ledger must be saved first). */
  sentUnder(intent: Intent, fingerprint: string): boolean {
    if (intent.schemas.includes(fingerprint)) return false;
    intent.schemas.push(fingerprint);
    this.#dirty = true;
    return true;
  }

  /**
   * Rows `excluded` of part [from, to) (or the whole) are left out of its insert and dead-lettered,
   * each for its reason (`reasons[i]` is `excluded[i]`'s).
   */
  exclude(intent: Intent, from: number, to: number, excluded: readonly number[], reasons: readonly PartReason[]): void {
    if (reasons.length !== excluded.length) throw new Error(`${excluded.length} rows excluded with ${reasons.length} reasons`);
    const whole = from === 0 && to === intent.rows;
    const parts = intent.parts ?? (whole ? [{ from, to, state: 'pending' }] : []);
    const part = parts.find((p) => p.from === from && p.to === to);
    if (part === undefined) throw new Error(`intent ${intent.token} has no part ${from}-${to}`);
    part.excluded = [...excluded];
    part.excludedReasons = reasons.map((reason) => (reason.message.length > REASON_CHARS ? { ...reason, message: reason.message.slice(0, REASON_CHARS) } : reason));
    intent.parts = parts;
    this.#dirty = true;
  }

  /**
   * Forgets what is below the committed position (those records are never re-read): resolved
   * offsets and any intent wholly below it. Not a change worth a save of its own: the stored ledger
   * still says the same of those records (they are in its resolved sets, or below its
   * `resolvedBelow`), so the next save that records something carries it (one ledger transaction
   * less per commit: docs/benchmarks.md, session 7).
   */
  prune(committed: bigint): void {
    if (committed > this.#resolvedBelow) this.#resolvedBelow = committed;
    for (const set of this.#resolved.values()) set.removeBelow(committed);
    for (let i = this.#intents.length - 1; i >= 0; i--) {
      if ((this.#intents[i] as Intent).records.last < committed) this.#intents.splice(i, 1);
    }
  }

  #resolvedSet(route: string): OffsetSet {
    let set = this.#resolved.get(route);
    if (set === undefined) {
      set = new OffsetSet();
      this.#resolved.set(route, set);
    }
    return set;
  }
}

function partOf(json: PartJson): IntentPart {
  const [from, to, state, reason, excluded, excludedReasons] = json as [number, number, PartState, PartReason | null | undefined, number[] | undefined, PartReason[] | PartReason | undefined];
  return {
    from,
    to,
    state,
    ...(reason === undefined || reason === null ? {} : { reason }),
    ...(excluded === undefined || excludedReasons === undefined ? {} : { excluded, excludedReasons: reasonsFor(excluded, excludedReasons) }),
  };
}

/**
 * One reason per excluded row. A ledger written before session 7 kept one reason for all of them;
 * a list short of the rows (never written so) gives the rows without one a reason saying so, still
 * marked: a left-out row's letter must never go unwritten or unmarked.
 */
function reasonsFor(excluded: readonly number[], stored: PartReason[] | PartReason): PartReason[] {
  if (!Array.isArray(stored)) return excluded.map(() => stored);
  if (stored.length >= excluded.length) return stored.slice(0, excluded.length);
  const missing: PartReason = { errorClass: 'row_data', code: 'INSERTER_DELIVERY_IN_DOUBT', message: 'left out of an insert in doubt; its refusal was not recorded', attempts: 0, mayHaveLanded: true };
  return excluded.map((_, i) => stored[i] ?? missing);
}

function partJson(p: IntentPart): PartJson {
  if (p.excluded !== undefined && p.excludedReasons !== undefined) return [p.from, p.to, p.state, p.reason ?? null, [...p.excluded], [...p.excludedReasons]];
  return p.reason === undefined ? [p.from, p.to, p.state] : [p.from, p.to, p.state, p.reason];
}

/** Durable home of partition ledgers (a compacted Kafka topic in production, memory in simulation). */
export interface LedgerStore {
  load(topic: string, partition: number, signal: AbortSignal): Promise<LedgerJson | undefined>;
  save(topic: string, partition: number, ledger: LedgerJson, signal: AbortSignal): Promise<void>;
  /**
   * Saves the ledger and commits the partition's position in one atomic write that a newer owner's
   * takeover fences (docs/design/delivery.md §4): a stalled owner can then never move the position.
   * Resolves false when it could not commit the position now (e.g. the group coordinator is not
   * known or moved, or refused it) and saved the ledger alone: the position is committed at a later
   * write. Rejects only when the ledger itself was not written: every ledger write carries the
   * position, so a refusal of the position alone must never fail a batch's intent.
   * Optional: without it the ledger is saved, then the source commits the position.
   */
  commit?(position: CommitPosition, ledger: LedgerJson, signal: AbortSignal): Promise<boolean>;
  /** This process gave the partition up (optional: stores that fence owners release it here). */
  release?(topic: string, partition: number): Promise<void>;
  close(): Promise<void>;
}

export class MemoryLedgerStore implements LedgerStore {
  readonly #data = new Map<string, string>();
  async load(topic: string, partition: number): Promise<LedgerJson | undefined> {
    const text = this.#data.get(`${topic}/${partition}`);
    return text === undefined ? undefined : (JSON.parse(text) as LedgerJson);
  }
  async save(topic: string, partition: number, ledger: LedgerJson): Promise<void> {
    this.#data.set(`${topic}/${partition}`, JSON.stringify(ledger));
  }
  async close(): Promise<void> {}
}
