// Owns the destinations provider's Prometheus metrics, registered on the registry it is given.
// Labels are bounded: a failure reason, a lookup outcome, the one version in force.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DestinationsFailure } from '../provider.ts';
import type { RejectionReason } from './trust.ts';

export type LookupOutcome = 'cache_hit' | 'found' | 'not_found' | 'stale' | 'error';

export class DestinationMetrics {
  readonly #failures: Counter<'reason'>;
  readonly #lookups: Counter<'outcome'>;
  readonly #info: Gauge<'version'>;
  readonly #destinations: Gauge;
  readonly #teams: Gauge;
  readonly #rejected: Counter<'destination' | 'reason'>;

  /** `lastSuccess` is when the source last answered well (a 304 counts); before that, since creation. */
  constructor(registry: Registry, lastSuccess: () => number | undefined, now: () => number) {
    const created = now();
    const registers = [registry];
    new Gauge({
      name: 'inserter_destinations_config_age_seconds',
      help: 'Seconds since the destinations source last answered well (load or not-modified)',
      registers,
      collect() {
        this.set(Math.max(0, (now() - (lastSuccess() ?? created)) / 1000));
      },
    });
    this.#failures = new Counter({
      name: 'inserter_destinations_refresh_failures_total',
      help: 'Failed destinations loads by reason (the last good snapshot stays in force)',
      labelNames: ['reason'],
      registers,
    });
    this.#lookups = new Counter({ name: 'inserter_destinations_team_lookups_total', help: 'On-demand team lookups by outcome', labelNames: ['outcome'], registers });
    this.#info = new Gauge({ name: 'inserter_destinations_snapshot_info', help: 'The destinations snapshot in force (value 1, labelled by version)', labelNames: ['version'], registers });
    this.#destinations = new Gauge({ name: 'inserter_destinations_destinations', help: 'Destinations in the snapshot in force', registers });
    this.#teams = new Gauge({ name: 'inserter_destinations_teams', help: 'Teams mapped in the snapshot in force', registers });
    this.#rejected = new Counter({
      name: 'inserter_destinations_rejected_total',
      help: 'Destinations served by the API and rejected (host not allowed, scheme, TLS file outside tlsDir, incomplete TLS): the last good one stays, or its teams are held',
      labelNames: ['destination', 'reason'],
      registers,
    });
  }

  failure(reason: DestinationsFailure): void {
    this.#failures.inc({ reason });
  }

  rejected(destination: string, reason: RejectionReason): void {
    this.#rejected.inc({ destination: destination.slice(0, 64), reason });
  }

  lookup(outcome: LookupOutcome): void {
    this.#lookups.inc({ outcome });
  }

  snapshot(version: string, destinations: number, teams: number): void {
    this.#info.reset();
    this.#info.set({ version: version.slice(0, 64) }, 1);
    this.#destinations.set(destinations);
    this.#teams.set(teams);
  }
}
