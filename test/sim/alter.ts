// The simulation's schema changes (an operator's ALTER TABLE, not paused first): at virtual times
// drawn per seed, every table gains a column, and rows chosen for that change ("victims", good rows
// until then) stop being valid — refused by the warehouse naming the row, or, for other changes, by
// the row encoder built from the new columns. A victim inserted before its change is a row; after
// it, a dead letter. An insert in flight across a change may be in doubt (it may have landed under
// the old schema while its retry is refused under the new one): the core must then leave the refused
// rows out of a retry under the same token and dead-letter them marked may-have-landed — never split
// such a range into new tokens (docs/design/delivery.md §11).
// With the `reverts` feature, some changes are reverted within milliseconds (an operator's change rolled
// back): their victims are valid only in between, so an insert that lands in that window and whose
// reply is lost is refused on a retry under a schema whose columns equal the first read's; only the
// table's definition version (TableSchema.version, moved by every change) tells it from no change.
import type { ColumnInfo } from '../../src/sink/types.ts';
import { Rng } from './rng.ts';

export interface Alteration {
  /** Virtual time the ALTER takes effect. */
  readonly at: number;
  /** Its column: present in the live schema from `at` on. */
  readonly column: ColumnInfo;
  /** Who refuses the victims afterwards: the server (naming the row) or the typed encoder. */
  readonly by: 'server' | 'encoder';
  readonly victims: ReadonlySet<string>;
  /** A change reverted at this virtual time: its column is live in [at, until), its victims valid only then (refused by the server before and after). */
  readonly until?: number;
  /** The server's refusal names no row (a code no class lists: bisected, judged by fingerprints). */
  readonly unnamed?: boolean;
}

const live = (a: Alteration, now: number): boolean => now >= a.at && (a.until === undefined || now < a.until);

/** A change that waits for its moment (FEATURES.alterAfterRead): `at` and its victims are set when the warehouse sees it. */
interface WaitingAlteration extends Alteration {
  at: number;
  readonly victims: Set<string>;
  /** The rows it may refuse (good rows), and how it picks them. */
  readonly good: ReadonlySet<string>;
  readonly rng: Rng;
}

export class SchemaChanges {
  readonly alterations: readonly Alteration[];
  readonly #waiting: WaitingAlteration | undefined;

  constructor(alterations: readonly Alteration[], waiting?: WaitingAlteration) {
    this.alterations = waiting === undefined ? alterations : [...alterations, waiting];
    this.#waiting = waiting;
  }

  /**
   * FEATURES.alterAfterRead: a schema read took its snapshot at `now`. If an insert on its way (its
   * query not started yet) retries a token that already landed (an insert in doubt), the waiting
   * change lands right after the snapshot, before that insert starts, and refuses one or two of its
   * rows from then on (an operator's ALTER can land at any moment; this one lands at a telling one).
   */
  afterRead(now: number, starting: ReadonlyArray<{ readonly uuids: readonly string[]; readonly landed: boolean }>): void {
    const w = this.#waiting;
    if (w === undefined || w.at !== Number.POSITIVE_INFINITY) return;
    const candidates = starting.filter((s) => s.landed).map((s) => s.uuids.filter((u) => w.good.has(u)));
    const rows = candidates.length === 0 ? [] : w.rng.pick(candidates);
    if (rows.length === 0) return;
    w.at = now + 1;
    for (let k = w.rng.int(1, 2); k > 0; k--) w.victims.add(w.rng.pick(rows));
  }

  /** Whether a change waits for its moment (inserts on their way are worth telling apart). */
  get waiting(): boolean {
    return this.#waiting?.at === Number.POSITIVE_INFINITY;
  }

  /** The columns a table has now: its own, plus the columns of the ALTERs that took effect. */
  columns(base: readonly ColumnInfo[], now: number): ColumnInfo[] {
    const out = [...base];
    for (const a of this.alterations) if (live(a, now)) out.push(a.column);
    return out;
  }

  /** The table's definition version now: every change and every revert that took effect moves it. */
  version(now: number): number {
    let n = 0;
    for (const a of this.alterations) n += (now >= a.at ? 1 : 0) + (a.until !== undefined && now >= a.until ? 1 : 0);
    return n;
  }

  /** Whether the server refuses this row now, and how: naming the row or not. */
  serverRefuses(uuid: string, now: number): 'named' | 'unnamed' | undefined {
    for (const a of this.alterations) {
      if (a.by !== 'server' || !a.victims.has(uuid)) continue;
      if (a.until === undefined ? now >= a.at : !live(a, now)) return a.unnamed === true ? 'unnamed' : 'named';
    }
    return undefined;
  }

  /** The rows an encoder built from these columns refuses. */
  encoderRefuses(columns: readonly ColumnInfo[]): ReadonlySet<string> {
    const out = new Set<string>();
    for (const a of this.alterations) if (a.by === 'encoder' && columns.some((c) => c.name === a.column.name)) for (const v of a.victims) out.add(v);
    return out;
  }

  isVictim(uuid: string): boolean {
    return this.alterations.some((a) => a.victims.has(uuid));
  }

  describe(start: number): string {
    return this.alterations
      .map(
        (a) =>
          `${a.column.name}@${a.at === Number.POSITIVE_INFINITY ? 'never (no read before an insert in doubt)' : `+${a.at - start}ms`}${a.until === undefined ? '' : ` reverted @+${a.until - start}ms`} by ${a.by}${a.unnamed === true ? ' (no row named)' : ''}: ${a.victims.size} victims`,
      )
      .join(', ');
  }
}

/**
 * Draws a seed's schema changes from a stream of its own (older seeds keep their schedules); about
 * half the seeds have none. `good` are the uuids of good records, in order; `spanMs` the time over
 * which records are appended. With `reverts`, changes reverted shortly after are drawn from another
 * stream on top (so the schedules above stay as they were).
 */
export function schemaChangesFor(seed: number, good: readonly string[], start: number, spanMs: number, reverts = false, afterRead = false): SchemaChanges | undefined {
  const alterations = [...lastingChanges(seed, good, start, spanMs), ...(reverts ? revertedChanges(seed, good, start, spanMs) : [])];
  const waiting = afterRead ? changeAfterRead(seed, good) : undefined;
  return alterations.length === 0 && waiting === undefined ? undefined : new SchemaChanges(alterations, waiting);
}

function lastingChanges(seed: number, good: readonly string[], start: number, spanMs: number): Alteration[] {
  const rng = new Rng(seed ^ 0xa17e4);
  if (!rng.chance(0.5) || good.length === 0) return [];
  const alterations: Alteration[] = [];
  const count = rng.int(1, 3);
  for (let k = 0; k < count; k++) {
    const victims = new Set<string>();
    for (const uuid of good) if (rng.chance(0.08)) victims.add(uuid);
    alterations.push({
      at: start + rng.int(0, spanMs + 300),
      column: { name: `alter_${k}`, type: 'UInt8', defaultKind: 'DEFAULT' },
      by: rng.chance(0.5) ? 'server' : 'encoder',
      victims,
    });
  }
  return alterations;
}

/**
 * Changes reverted within 1–40 ms (about a third of the seeds): rows valid only in between. Their
 * victims are drawn among the rows appended shortly before the change (taken as appended evenly
 * over the span), whose inserts are the ones likely in flight across it; half the changes refuse
 * them without naming the row (then only the definition version tells the revert from no change).
 */
function revertedChanges(seed: number, good: readonly string[], start: number, spanMs: number): Alteration[] {
  const rng = new Rng(seed ^ 0x4e7e47);
  if (!rng.chance(0.35) || good.length === 0) return [];
  const alterations: Alteration[] = [];
  const count = rng.int(1, 2);
  for (let k = 0; k < count; k++) {
    const at = start + rng.int(0, spanMs);
    const victims = new Set<string>();
    good.forEach((uuid, i) => {
      const appendedAt = start + (spanMs * i) / good.length;
      if (appendedAt >= at - 250 && appendedAt <= at + 10 && rng.chance(0.5)) victims.add(uuid);
    });
    const unnamed = rng.chance(0.5);
    alterations.push({ at, until: at + rng.int(1, 40), column: { name: `reverted_${k}`, type: 'UInt8', defaultKind: 'DEFAULT' }, by: 'server', victims, unnamed });
  }
  return alterations;
}

/**
 * A change that lands at a moment the warehouse picks (about half the seeds, FEATURES.alterAfterRead):
 * right after a schema read took its snapshot while an insert in doubt is on its way, not started,
 * refusing some of that insert's rows (on the server, naming the row or not). The read straddling
 * the change answers with the schema from before it; the fresh read the core asks for after the
 * refusal must not be that one (review 2026-12-07b, finding 2). Its victims are known only then, so
 * the rows' fates are drawn again after the run (driver.ts).
 */
function changeAfterRead(seed: number, good: readonly string[]): WaitingAlteration | undefined {
  const rng = new Rng(seed ^ 0xaf7e4d);
  if (!rng.chance(0.5) || good.length === 0) return undefined;
  return {
    at: Number.POSITIVE_INFINITY,
    column: { name: 'after_read', type: 'UInt8', defaultKind: 'DEFAULT' },
    by: 'server',
    victims: new Set(),
    unnamed: rng.chance(0.5),
    good: new Set(good),
    rng,
  };
}
