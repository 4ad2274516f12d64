// Owns which rows must not be inserted right now: operator pauses (cluster-wide, set through the
// control plane) and destinations parked because they hold more than their memory budget while
// failing. A parked row stays unresolved — the committed position stays below it and Kafka keeps it —
// and is re-read when the pause lifts (pause-and-rewind, docs/design/delivery.md §9).
import { scopeMatches, scopeTouchesLane, type Pause, type PauseScope, type RowScope } from '../control/scope.ts';

export class Parking {
  #pauses: readonly Pause[] = [];
  /** Parked destination → when it was parked (ms). */
  readonly #parkedDestinations = new Map<string, number>();

  /** False in the common case, so the per-row check costs one branch. */
  get active(): boolean {
    return this.#pauses.length > 0 || this.#parkedDestinations.size > 0;
  }

  get pauses(): readonly Pause[] {
    return this.#pauses;
  }

  blocks(row: RowScope): boolean {
    if (this.#parkedDestinations.has(row.destination)) return true;
    for (const pause of this.#pauses) if (scopeMatches(pause.scope, row)) return true;
    return false;
  }

  /**
   * Whether a pause stops this whole lane (all, route, table or destination scopes). Team pauses
   * stop only the batches holding that team; parked destinations stop no delivery — a delivery
   * already retrying is the probe that tells when the destination is back.
   */
  stopsLane(lane: Omit<RowScope, 'team'>): boolean {
    for (const pause of this.#pauses) if (pause.scope.kind !== 'team' && scopeTouchesLane(pause.scope, lane)) return true;
    return false;
  }

  /** Whether a batch of this lane holding these teams must not be inserted now. */
  stopsBatch(lane: Omit<RowScope, 'team'>, teams: ReadonlySet<number>): boolean {
    if (this.#pauses.length === 0) return false;
    if (this.stopsLane(lane)) return true;
    for (const pause of this.#pauses) if (pause.scope.kind === 'team' && teams.has(pause.scope.team)) return true;
    return false;
  }

  /** Replaces the pause set; returns the scopes newly paused and whether any pause was lifted. */
  setPauses(pauses: readonly Pause[]): { added: PauseScope[]; lifted: boolean } {
    const before = new Set(this.#pauses.map((p) => p.id));
    const after = new Set(pauses.map((p) => p.id));
    const added = pauses.filter((p) => !before.has(p.id)).map((p) => p.scope);
    const lifted = [...before].some((id) => !after.has(id));
    this.#pauses = [...pauses];
    return { added, lifted };
  }

  isDestinationParked(id: string): boolean {
    return this.#parkedDestinations.has(id);
  }

  parkDestination(id: string): boolean {
    if (this.#parkedDestinations.has(id)) return false;
    this.#parkedDestinations.set(id, Date.now());
    return true;
  }

  /** Milliseconds the destination has been parked, or undefined when it is not. */
  parkedFor(id: string): number | undefined {
    const since = this.#parkedDestinations.get(id);
    return since === undefined ? undefined : Date.now() - since;
  }

  unparkDestination(id: string): void {
    this.#parkedDestinations.delete(id);
  }

  parkedDestinations(): readonly string[] {
    return [...this.#parkedDestinations.keys()];
  }
}
