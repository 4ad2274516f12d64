// The destinations source as the simulation sees it: a snapshot that knows only some teams, and
// per-team lookups that travel like requests (slow, sometimes failing) and answer with the team's
// true destination — or "no mapping" for teams nobody maps. Rows of a team not in the snapshot are
// held (and parked past the held budget) until its lookup answers, so holds, parking, lookups that
// fail and are retried, and the rewinds that follow an answer all run in every seed that enables it.
import type { Config } from '../../src/config/load.ts';
import { DestinationsError, type DestinationProvider, type DestinationSnapshot } from '../../src/route/provider.ts';
import type { Rng } from './rng.ts';
import type { Incarnation, World } from './runtime.ts';

export interface LookupFaults {
  /** Teams known to the snapshot; the others are looked up. */
  readonly known: ReadonlySet<number>;
  /** Probability that one lookup fails (the API is down). */
  readonly fail: number;
  /** Longest time a lookup takes (ms). */
  readonly slowMs: number;
  /** A team whose destination changes at virtual time `at` (a new snapshot, and lookups answer anew). */
  readonly move?: { readonly team: number; readonly to: string; readonly at: number };
}

export class SimDestinationsApi implements DestinationProvider {
  readonly #world: World;
  readonly #inc: Incarnation;
  readonly #rng: Rng;
  readonly #faults: LookupFaults;
  readonly #mapping: Map<number, string>;
  #snapshot: DestinationSnapshot;
  readonly #listeners = new Set<(snapshot: DestinationSnapshot) => void>();

  constructor(world: World, inc: Incarnation, config: Config, mapping: Readonly<Record<string, string>>, rng: Rng, faults: LookupFaults) {
    this.#world = world;
    this.#inc = inc;
    this.#rng = rng;
    this.#faults = faults;
    this.#mapping = new Map(Object.entries(mapping).map(([team, destination]) => [Number(team), destination]));
    const move = faults.move;
    const moved = move !== undefined && Date.now() >= move.at;
    if (moved) this.#mapping.set(move.team, move.to);
    const teams = new Map([...this.#mapping].filter(([team]) => faults.known.has(team)));
    this.#snapshot = { version: moved ? 'sim-moved' : 'sim', loadedAt: 0, destinations: new Map(config.destinations.map((d) => [d.id, d])), teams };
    if (move !== undefined && !moved) {
      setTimeout(() => {
        if (!inc.alive) return;
        world.note(`MOVE team ${move.team} to ${move.to}`);
        this.#mapping.set(move.team, move.to);
        // The new snapshot maps the moved team wherever the source says (known or not before).
        const next = new Map(this.#snapshot.teams);
        next.set(move.team, move.to);
        this.#snapshot = { ...this.#snapshot, version: 'sim-moved', teams: next };
        for (const listener of this.#listeners) listener(this.#snapshot);
      }, move.at - Date.now());
    }
  }

  async start(): Promise<void> {}

  snapshot(): DestinationSnapshot {
    return this.#snapshot;
  }

  lookupTeam(team: number, signal: AbortSignal): Promise<string | undefined> {
    const fail = this.#rng.chance(this.#faults.fail) ? 'before' : undefined;
    return this.#world.remote(
      this.#inc,
      `lookup team ${team}`,
      {
        kind: 'api',
        sendMs: this.#rng.int(0, this.#faults.slowMs),
        replyMs: this.#rng.int(0, 2),
        fail,
        error: () => new DestinationsError('network', 'destinations API unavailable: simulated'),
        signal,
        abortError: () => new DestinationsError('network', 'lookup aborted'),
      },
      () => this.#mapping.get(team),
    );
  }

  onChange(listener: (snapshot: DestinationSnapshot) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {}
}
