// Owns which destination a row goes to and the Sink for each destination. A route either names
// one destination or routes by team; a team without a mapping is held, dead-lettered or sent to an
// explicit default, as configured — never guessed.
import type { Config, DestinationConfig, RouteConfig } from '../config/load.ts';
import type { Sink } from '../sink/types.ts';

export type RouteDecision =
  | { readonly kind: 'destination'; readonly destination: DestinationConfig }
  | { readonly kind: 'hold' }
  | { readonly kind: 'deadLetter'; readonly reason: 'unknown_team' | 'no_team' };

export type SinkFactory = (destination: DestinationConfig) => Sink;

export class DestinationDirectory {
  readonly #byId: Map<string, DestinationConfig>;
  readonly #teams: Map<number, string>;
  readonly #unknown: Config['teams']['unknown'];
  readonly #sinks = new Map<string, Sink>();
  readonly #factory: SinkFactory;

  constructor(config: Config, factory: SinkFactory) {
    this.#byId = new Map(config.destinations.map((d) => [d.id, d]));
    this.#teams = new Map(Object.entries(config.teams.map).map(([team, dest]) => [Number(team), dest]));
    this.#unknown = config.teams.unknown;
    this.#factory = factory;
  }

  decide(route: RouteConfig, teamId: number | undefined): RouteDecision {
    if (route.destination !== 'team') return this.#destination(route.destination);
    if (teamId === undefined) return { kind: 'deadLetter', reason: 'no_team' };
    const mapped = this.#teams.get(teamId);
    if (mapped !== undefined) return this.#destination(mapped);
    switch (this.#unknown.action) {
      case 'hold':
        return { kind: 'hold' };
      case 'deadLetter':
        return { kind: 'deadLetter', reason: 'unknown_team' };
      case 'destination':
        return this.#destination(this.#unknown.destination);
    }
  }

  destination(id: string): DestinationConfig | undefined {
    return this.#byId.get(id);
  }

  sink(destination: DestinationConfig): Sink {
    let sink = this.#sinks.get(destination.id);
    if (sink === undefined) {
      sink = this.#factory(destination);
      this.#sinks.set(destination.id, sink);
    }
    return sink;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#sinks.values()].map((s) => s.close()));
  }

  #destination(id: string): RouteDecision {
    const destination = this.#byId.get(id);
    // Config validation guarantees the id exists; a missing one is a hold, never a guess.
    return destination === undefined ? { kind: 'hold' } : { kind: 'destination', destination };
  }
}
