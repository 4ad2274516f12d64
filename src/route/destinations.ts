// Owns which destination a row goes to and the Sink for each destination. Mappings come from a
// DestinationProvider (the YAML config, a file, or the destinations HTTP API): a route either names
// one destination or routes by team; a team missing from the snapshot is looked up on demand and its
// rows are held meanwhile; a team the source says is unmapped is held, dead-lettered or sent to an
// explicit default, as configured — never guessed. A changed destination (a rotated password) gets
// a new Sink for every insert that starts after the change.
import type { Config, DestinationConfig, RouteConfig } from '../config/load.ts';
import type { Sink } from '../sink/types.ts';
import type { Logger } from '../telemetry/logger.ts';
import { diffSnapshots, type DestinationProvider, type DestinationSnapshot } from './provider.ts';

export type RouteDecision =
  | { readonly kind: 'destination'; readonly destination: DestinationConfig }
  /** `lookup`: the team is unknown to the snapshot and being asked for; the row waits for it. */
  | { readonly kind: 'hold'; readonly lookup: boolean }
  | { readonly kind: 'deadLetter'; readonly reason: 'unknown_team' | 'no_team' };

export type SinkFactory = (destination: DestinationConfig) => Sink;

/** Old sinks are closed this long after a change, so inserts already using them can finish. */
const RETIRE_AFTER_MS = 120_000;
/** At most this many looked-up teams are remembered; the oldest answer is forgotten first. */
export const MAX_LOOKED_UP_TEAMS = 100_000;

interface LookedUp {
  /** The destination id, or null when the source says the team has no mapping. */
  readonly id: string | null;
  /** A "no mapping" answer is asked again after the negative-cache TTL. */
  readonly expiresAt: number;
}

export class DestinationDirectory {
  readonly #provider: DestinationProvider;
  readonly #configured: ReadonlyMap<string, DestinationConfig>;
  readonly #unknown: Config['teams']['unknown'];
  readonly #factory: SinkFactory;
  readonly #logger: Logger | undefined;
  readonly #sinks = new Map<string, Sink>();
  readonly #handles = new Map<string, Sink>();
  /** Answers of on-demand lookups, oldest first (bounded by MAX_LOOKED_UP_TEAMS). */
  readonly #looked = new Map<number, LookedUp>();
  readonly #negativeTtlMs: number;
  readonly #retiring = new Set<NodeJS.Timeout>();
  /** Decisions naming a destination id, per id: immutable, built once per snapshot (decide runs per record). */
  readonly #decisions = new Map<string, RouteDecision>();
  #snapshot: DestinationSnapshot;
  #unsubscribe: () => void;

  constructor(config: Config, provider: DestinationProvider, factory: SinkFactory, logger?: Logger) {
    this.#provider = provider;
    this.#configured = new Map(config.destinations.map((d) => [d.id, d]));
    this.#unknown = config.teams.unknown;
    this.#factory = factory;
    this.#logger = logger;
    this.#negativeTtlMs = config.destinationsApi?.negativeCacheTtlMs ?? 30_000;
    this.#snapshot = provider.snapshot();
    this.#unsubscribe = () => undefined;
  }

  /** Follows the provider; `onChange` runs after the directory switched to the new snapshot. */
  follow(onChange: () => void): void {
    this.#unsubscribe = this.#provider.onChange((next) => {
      const diff = diffSnapshots(this.#snapshot, next);
      this.#snapshot = next;
      this.#decisions.clear();
      this.#looked.clear();
      for (const id of [...diff.changed, ...diff.removed]) this.#retire(id);
      this.#logger?.info({ version: next.version, ...diff }, 'destinations changed');
      onChange();
    });
  }

  decide(route: RouteConfig, teamId: number | undefined): RouteDecision {
    if (route.destination !== 'team') return this.#destination(route.destination);
    if (teamId === undefined) return { kind: 'deadLetter', reason: 'no_team' };
    const mapped = this.#snapshot.teams.get(teamId) ?? this.#lookedUp(teamId);
    if (typeof mapped === 'string') return this.#destination(mapped);
    if (mapped === undefined) return { kind: 'hold', lookup: true };
    switch (this.#unknown.action) {
      case 'hold':
        return { kind: 'hold', lookup: false };
      case 'deadLetter':
        return { kind: 'deadLetter', reason: 'unknown_team' };
      case 'destination':
        return this.#destination(this.#unknown.destination);
    }
  }

  /**
   * Asks the provider for a team the snapshot lacks and remembers the answer ("no mapping" only for
   * the negative-cache TTL). Throws when nobody knows right now: the caller retries, rows stay held.
   */
  async lookup(team: number, signal: AbortSignal): Promise<void> {
    const id = await this.#provider.lookupTeam(team, signal);
    this.#looked.delete(team);
    this.#looked.set(team, { id: id ?? null, expiresAt: id === undefined ? Date.now() + this.#negativeTtlMs : Number.POSITIVE_INFINITY });
    if (this.#looked.size > MAX_LOOKED_UP_TEAMS) {
      const oldest = this.#looked.keys().next();
      if (oldest.done !== true) this.#looked.delete(oldest.value);
    }
  }

  /** Looked-up teams remembered now (bounded), for tests and status. */
  get lookedUpTeams(): number {
    return this.#looked.size;
  }

  #lookedUp(team: number): string | null | undefined {
    const entry = this.#looked.get(team);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.#looked.delete(team);
      return undefined;
    }
    return entry.id;
  }

  /** The destination's current settings: the provider's snapshot first, then the YAML config. */
  destination(id: string): DestinationConfig | undefined {
    return this.#snapshot.destinations.get(id) ?? this.#configured.get(id);
  }

  /**
   * A stable handle for the destination: every call goes to the Sink built from its current
   * settings, so a delivery that is retrying picks up a rotated password on its next attempt.
   */
  sink(destination: DestinationConfig): Sink {
    let handle = this.#handles.get(destination.id);
    if (handle === undefined) {
      const id = destination.id;
      // A sink that cannot be built (its TLS files gone, say) fails the call, never throws into a
      // timer or a caller that expects a promise.
      const call = <T>(use: (sink: Sink) => Promise<T>): Promise<T> => {
        try {
          return use(this.#current(id, destination));
        } catch (error) {
          return Promise.reject(error instanceof Error ? error : new Error(String(error)));
        }
      };
      handle = {
        destinationId: id,
        describe: (table, signal) => call((sink) => sink.describe(table, signal)),
        createTable: (table, template, signal) => call((sink) => sink.createTable(table, template, signal)),
        insert: (batch, signal) => call((sink) => sink.insert(batch, signal)),
        close: async () => undefined,
      };
      this.#handles.set(id, handle);
    }
    return handle;
  }

  #current(id: string, fallback: DestinationConfig): Sink {
    let sink = this.#sinks.get(id);
    if (sink === undefined) {
      sink = this.#factory(this.destination(id) ?? fallback);
      this.#sinks.set(id, sink);
    }
    return sink;
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    for (const timer of this.#retiring) clearTimeout(timer);
    await Promise.allSettled([this.#provider.close(), ...[...this.#sinks.values()].map((s) => s.close())]);
  }

  #retire(id: string): void {
    const sink = this.#sinks.get(id);
    if (sink === undefined) return;
    this.#sinks.delete(id);
    const timer = setTimeout(() => {
      this.#retiring.delete(timer);
      void sink.close().catch(() => undefined);
    }, RETIRE_AFTER_MS);
    timer.unref();
    this.#retiring.add(timer);
  }

  #destination(id: string): RouteDecision {
    let decision = this.#decisions.get(id);
    if (decision === undefined) {
      const destination = this.destination(id);
      // A mapping naming a destination nobody knows is held, never guessed.
      decision = destination === undefined ? { kind: 'hold', lookup: false } : { kind: 'destination', destination };
      this.#decisions.set(id, decision);
    }
    return decision;
  }
}
