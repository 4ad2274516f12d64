// The simulation's schema changes (an operator's ALTER TABLE, not paused first): at virtual times
// drawn per seed, every table gains a column, and rows chosen for that change ("victims", good rows
// until then) stop being valid — refused by the warehouse naming the row, or, for other changes, by
// the row encoder built from the new columns. A victim inserted before its change is a row; after
// it, a dead letter. An insert in flight across a change may be in doubt (it may have landed under
// the old schema while its retry is refused under the new one): the core must then leave the refused
// rows out of a retry under the same token and dead-letter them marked may-have-landed — never split
// such a range into new tokens (docs/design/delivery.md §11).
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
}

export class SchemaChanges {
  readonly alterations: readonly Alteration[];

  constructor(alterations: readonly Alteration[]) {
    this.alterations = alterations;
  }

  /** The columns a table has now: its own, plus the columns of the ALTERs that took effect. */
  columns(base: readonly ColumnInfo[], now: number): ColumnInfo[] {
    const out = [...base];
    for (const a of this.alterations) if (now >= a.at) out.push(a.column);
    return out;
  }

  /** Whether the server refuses this row now. */
  serverRefuses(uuid: string, now: number): boolean {
    for (const a of this.alterations) if (a.by === 'server' && now >= a.at && a.victims.has(uuid)) return true;
    return false;
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
    return this.alterations.map((a) => `${a.column.name}@+${a.at - start}ms by ${a.by}: ${a.victims.size} victims`).join(', ');
  }
}

/**
 * Draws a seed's schema changes from a stream of its own (older seeds keep their schedules); about
 * half the seeds have none. `good` are the uuids of good records, in order; `spanMs` the time over
 * which records are appended.
 */
export function schemaChangesFor(seed: number, good: readonly string[], start: number, spanMs: number): SchemaChanges | undefined {
  const rng = new Rng(seed ^ 0xa17e4);
  if (!rng.chance(0.5) || good.length === 0) return undefined;
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
  return new SchemaChanges(alterations);
}
