// Owns the destinations HTTP API provider: loads GET /v1/destinations, polls it with ETags, looks
// teams up one by one (GET /v1/teams/{id}) with a TTL cache and one request per team in flight.
// Whatever the API does (down, slow, garbage), the last good snapshot stays in force.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Registry } from 'prom-client';
import type { Secret } from '../../config/secret.ts';
import { AbortedError } from '../../errors/inserter-error.ts';
import { retry, type BackoffPolicy } from '../../sink/retry.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { DestinationsError, type DestinationProvider, type DestinationSnapshot } from '../provider.ts';
import { decodeJson, parseDocument, teamDocumentSchema } from './document.ts';
import { apiGet } from './http-request.ts';
import { DestinationMetrics } from './metrics.ts';
import { SnapshotState } from './state.ts';
import { applyTrust, type Rejection, type TrustPolicy } from './trust.ts';

export interface HttpProviderOptions {
  /** Base URL; the provider requests `<url>/v1/destinations` and `<url>/v1/teams/{id}`. */
  readonly url: string;
  readonly token: Secret;
  readonly pollIntervalMs: number;
  readonly timeoutMs: number;
  readonly teamCacheTtlMs: number;
  readonly negativeCacheTtlMs: number;
  readonly teamCacheMaxEntries?: number;
  readonly maxBodyBytes?: number;
  /** Hosts (and `*.domain` patterns) destinations may point at besides loopback and `configHosts` (trust.ts); default none. */
  readonly allowedHosts?: readonly string[];
  /** Plain HTTP to non-loopback destinations; default false. */
  readonly allowHttp?: boolean;
  /** Absolute folder the TLS files named by the API must be in; none: TLS files are refused. */
  readonly tlsDir?: string | undefined;
  /** Hosts of the YAML destinations, always allowed. */
  readonly configHosts?: readonly string[];
  /** Retries of the first load in start(); unauthorized and malformed answers fail at once. */
  readonly startRetry?: BackoffPolicy;
}

export interface HttpProviderDeps {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly now?: () => number;
}

interface TeamEntry {
  readonly destination: string | undefined;
  readonly expiresAt: number;
}

const SOURCE = 'destinations-api';

export class HttpDestinationProvider implements DestinationProvider {
  readonly #options: HttpProviderOptions;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #state: SnapshotState;
  readonly #metrics: DestinationMetrics;
  readonly #closing = new AbortController();
  readonly #teams = new Map<number, TeamEntry>();
  readonly #lookups = new Map<number, Promise<string | undefined>>();
  readonly #base: URL;
  readonly #trust: TrustPolicy;
  /** Destinations of the document in force rejected with no last good one, by id: their teams are held. */
  #rejected = new Map<string, Rejection>();
  /** The teams of those destinations: held, never looked up elsewhere. */
  #heldTeams = new Map<number, Rejection>();
  #etag: string | undefined;
  #lastSuccess: number | undefined;
  #refreshing: Promise<void> | undefined;
  #poller: Promise<void> | undefined;
  #started = false;

  constructor(options: HttpProviderOptions, deps: HttpProviderDeps) {
    this.#options = options;
    this.#logger = deps.logger.child({ component: SOURCE });
    this.#now = deps.now ?? Date.now;
    this.#state = new SnapshotState(this.#logger);
    this.#metrics = new DestinationMetrics(deps.registry, () => this.#lastSuccess, this.#now);
    this.#trust = { allowedHosts: options.allowedHosts ?? [], allowHttp: options.allowHttp ?? false, tlsDir: options.tlsDir, configHosts: options.configHosts ?? [] };
    this.#base = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#started) throw new DestinationsError('read', 'destinations provider already started', { retryable: false });
    this.#started = true;
    const policy = this.#options.startRetry ?? { baseMs: 200, factor: 2, capMs: 5_000, maxElapsedMs: 60_000 };
    await retry(() => this.refresh(AbortSignal.any([signal, this.#closing.signal])), policy, signal, {
      onRetry: (error, attempt, delayMs) => this.#logger.warn({ err: error, attempt, delayMs }, 'first destinations load failed, retrying'),
    });
    this.#poller = this.#poll(this.#closing.signal);
  }

  snapshot(): DestinationSnapshot {
    return this.#state.get();
  }

  onChange(listener: (snapshot: DestinationSnapshot) => void): () => void {
    return this.#state.onChange(listener);
  }

  /**
   * Fetches the mapping now (joining a fetch already in flight). Applies a new snapshot when the
   * content changed; on any failure keeps the one in force, counts the failure and throws it.
   */
  async refresh(signal: AbortSignal): Promise<void> {
    this.#refreshing ??= this.#load(this.#closing.signal).finally(() => {
      this.#refreshing = undefined;
    });
    await abortable(this.#refreshing, signal);
  }

  async lookupTeam(team: number, signal: AbortSignal): Promise<string | undefined> {
    const mapped = this.#state.current?.teams.get(team);
    if (mapped !== undefined) return mapped;
    const held = this.#heldTeams.get(team);
    if (held !== undefined) throw rejectedError(`team ${team}`, held);
    const cached = this.#teams.get(team);
    if (cached !== undefined && cached.expiresAt > this.#now()) {
      this.#metrics.lookup('cache_hit');
      return cached.destination;
    }
    let pending = this.#lookups.get(team);
    if (pending === undefined) {
      pending = this.#fetchTeam(team, cached).finally(() => this.#lookups.delete(team));
      this.#lookups.set(team, pending);
    }
    return abortable(pending, signal);
  }

  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort(new AbortedError('destinations provider closed'));
    await Promise.allSettled([this.#poller, this.#refreshing, ...this.#lookups.values()]);
  }

  async #load(signal: AbortSignal): Promise<void> {
    try {
      const response = await apiGet(this.#request('v1/destinations', this.#state.current === undefined ? undefined : this.#etag), signal);
      if (response.status === 404) throw new DestinationsError('http_status', 'GET /v1/destinations: HTTP 404, check destinationsApi.url');
      if (response.status === 200) {
        const parsed = parseDocument(decodeJson(response.text, 'GET /v1/destinations'), this.#now(), 'GET /v1/destinations');
        if (!this.#state.isCurrent(parsed)) {
          const trusted = applyTrust(parsed.snapshot, this.#state.current, this.#trust);
          this.#reportRejections(trusted.rejections, parsed.snapshot.version);
          if (this.#state.offer({ snapshot: trusted.snapshot, fingerprint: parsed.fingerprint }, SOURCE)) {
            this.#teams.clear();
            const { version, destinations, teams } = trusted.snapshot;
            this.#metrics.snapshot(version, destinations.size, teams.size);
          }
        }
        this.#etag = response.etag;
      }
      this.#lastSuccess = this.#now();
    } catch (error) {
      if (error instanceof DestinationsError) {
        this.#metrics.failure(error.reason);
        this.#logger.warn(
          { reason: error.reason, issues: error.issues.length > 0 ? error.issues : undefined, err: error, version: this.#state.current?.version },
          'destinations refresh failed, keeping the last good snapshot',
        );
      }
      throw error;
    }
  }

  /** One log line and one count per destination rejected by the trust policy; ids, hosts and reasons only. */
  #reportRejections(rejections: readonly Rejection[], version: string): void {
    this.#rejected = new Map(rejections.filter((r) => !r.keptLastGood).map((r) => [r.destination, r]));
    this.#heldTeams = new Map([...this.#rejected.values()].flatMap((r) => r.teams.map((team) => [team, r] as const)));
    for (const r of rejections) {
      this.#metrics.rejected(r.destination, r.reason);
      this.#logger.warn(
        { destination: r.destination, reason: r.reason, teams: r.teams.slice(0, 100), teamCount: r.teams.length, version, kept: r.keptLastGood ? 'last good destination' : 'none: its teams are held' },
        `destination ${r.destination} rejected (${r.reason}): ${r.message}`,
      );
    }
  }

  async #poll(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await sleep(this.#options.pollIntervalMs, undefined, { signal });
        await this.refresh(signal);
      } catch (error) {
        if (signal.aborted) return;
        if (!(error instanceof DestinationsError)) this.#logger.error({ err: error }, 'destinations poll failed unexpectedly');
      }
    }
  }

  async #fetchTeam(team: number, previous: TeamEntry | undefined): Promise<string | undefined> {
    const what = `GET /v1/teams/${team}`;
    try {
      const response = await apiGet(this.#request(`v1/teams/${team}`, undefined), this.#closing.signal);
      if (response.status === 404) return this.#remember(team, undefined, 'not_found');
      if (response.status !== 200) throw new DestinationsError('http_status', `${what}: HTTP ${response.status}`);
      const parsed = teamDocumentSchema.safeParse(decodeJson(response.text, what));
      if (!parsed.success || parsed.data.team_id !== team) {
        const issues = parsed.success ? [`team_id: is ${parsed.data.team_id}, asked for ${team}`] : parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
        throw new DestinationsError('invalid', `${what} is malformed:\n  - ${issues.join('\n  - ')}`, { issues });
      }
      const destination = parsed.data.destination;
      if (!this.#state.get().destinations.has(destination)) {
        // A destination newer than our snapshot: fetch the mapping once before giving up.
        await this.refresh(this.#closing.signal).catch(() => undefined);
        const rejected = this.#rejected.get(destination);
        if (rejected !== undefined) throw rejectedError(what, rejected);
        if (!this.#state.get().destinations.has(destination)) {
          throw new DestinationsError('unknown_destination', `${what}: destination "${destination}" is not in snapshot ${this.#state.get().version}`);
        }
      }
      return this.#remember(team, destination, 'found');
    } catch (error) {
      if (this.#closing.signal.aborted) throw error;
      if (previous?.destination !== undefined) {
        this.#metrics.lookup('stale');
        this.#logger.warn({ team, err: error }, 'team lookup failed, using the expired mapping');
        return previous.destination;
      }
      this.#metrics.lookup('error');
      this.#logger.warn({ team, err: error }, 'team lookup failed');
      throw error;
    }
  }

  #remember(team: number, destination: string | undefined, outcome: 'found' | 'not_found'): string | undefined {
    this.#metrics.lookup(outcome);
    const ttl = destination === undefined ? this.#options.negativeCacheTtlMs : this.#options.teamCacheTtlMs;
    this.#teams.delete(team);
    this.#teams.set(team, { destination, expiresAt: this.#now() + ttl });
    const max = this.#options.teamCacheMaxEntries ?? 100_000;
    for (const oldest of this.#teams.keys()) {
      if (this.#teams.size <= max) break;
      this.#teams.delete(oldest);
    }
    return destination;
  }

  #request(path: string, etag: string | undefined): Parameters<typeof apiGet>[0] {
    const url = new URL(path, this.#base);
    return { url, token: this.#options.token, timeoutMs: this.#options.timeoutMs, maxBodyBytes: this.#options.maxBodyBytes ?? 64 * 1024 * 1024, etag, what: `GET /${path}` };
  }
}

function rejectedError(what: string, rejection: Rejection): DestinationsError {
  return new DestinationsError('rejected', `${what}: destination "${rejection.destination}" was rejected (${rejection.reason}: ${rejection.message}); its rows are held`);
}

/** Waits for a shared promise on behalf of one caller, who may stop waiting without cancelling it. */
async function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw new AbortedError('aborted', { cause: signal.reason });
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new AbortedError('aborted', { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    promise
      .then(resolve, reject)
      .finally(() => signal.removeEventListener('abort', onAbort))
      .catch(() => undefined);
  });
}
