// Owns the contract between routing and wherever the team → destination mapping comes from (the
// YAML config, a static file, the destinations HTTP API): an immutable snapshot, the provider
// interface, the provider's error class and the diff that tells a consumer which sinks to rebuild.
import type { DestinationConfig } from '../config/load.ts';
import { InserterError, type InserterErrorOptions } from '../errors/inserter-error.ts';

/** One complete, validated mapping. Never mutated: a change is a new snapshot with a new version. */
export interface DestinationSnapshot {
  /** The source's version (the API document's `version`, or a content hash). */
  readonly version: string;
  /** When this snapshot was built (ms since epoch). */
  readonly loadedAt: number;
  readonly destinations: ReadonlyMap<string, DestinationConfig>;
  /** Team id → destination id; every id names an entry of `destinations`. */
  readonly teams: ReadonlyMap<number, string>;
}

export interface DestinationProvider {
  /** First load; resolves once a snapshot exists, or throws a DestinationsError / AbortedError. */
  start(signal: AbortSignal): Promise<void>;
  /** The snapshot in force; throws before start() resolved. */
  snapshot(): DestinationSnapshot;
  /**
   * The destination id of a team missing from the snapshot, asked on demand and cached (hits and
   * misses, each with a TTL). `undefined` means the source says the team has no mapping; a throw
   * means nobody knows right now (hold the row, never guess).
   */
  lookupTeam(team: number, signal: AbortSignal): Promise<string | undefined>;
  /** Called with each new snapshot (not the first); returns an unsubscribe function. */
  onChange(listener: (snapshot: DestinationSnapshot) => void): () => void;
  /** Stops polling and pending requests. Idempotent. */
  close(): Promise<void>;
}

/** Why a load or lookup failed; also the `reason` label of the refresh-failure counter. */
export type DestinationsFailure = 'network' | 'timeout' | 'http_status' | 'unauthorized' | 'too_large' | 'not_json' | 'invalid' | 'unknown_destination' | 'read' | 'rejected';

const permanent = new Set<DestinationsFailure>(['unauthorized', 'invalid', 'not_json']);

/**
 * A destinations source failed or answered something unusable. The message and `issues` name what
 * is wrong (field paths, HTTP status) and never carry response bodies, tokens or passwords.
 */
export class DestinationsError extends InserterError {
  readonly reason: DestinationsFailure;
  readonly issues: readonly string[];
  constructor(reason: DestinationsFailure, message: string, options: InserterErrorOptions & { issues?: readonly string[] } = {}) {
    super(`INSERTER_DESTINATIONS_${reason.toUpperCase()}` as `INSERTER_DESTINATIONS_${Uppercase<DestinationsFailure>}`, message, { retryable: !permanent.has(reason), ...options });
    this.name = 'DestinationsError';
    this.reason = reason;
    this.issues = options.issues ?? [];
  }
}

export interface SnapshotDiff {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Destinations whose settings differ, a rotated password included: rebuild their sinks. */
  readonly changed: readonly string[];
}

export function diffSnapshots(previous: DestinationSnapshot, next: DestinationSnapshot): SnapshotDiff {
  const added: string[] = [];
  const changed: string[] = [];
  for (const [id, destination] of next.destinations) {
    const before = previous.destinations.get(id);
    if (before === undefined) added.push(id);
    else if (!sameDestination(before, destination)) changed.push(id);
  }
  const removed = [...previous.destinations.keys()].filter((id) => !next.destinations.has(id));
  return { added, removed, changed };
}

export function sameDestination(a: DestinationConfig, b: DestinationConfig): boolean {
  return comparable(a) === comparable(b);
}

function comparable(d: DestinationConfig): string {
  const { password, tls, ...rest } = d;
  const sorted = Object.fromEntries(Object.entries(rest).sort(([x], [y]) => x.localeCompare(y)));
  return JSON.stringify([sorted, tls?.caFile, tls?.certFile, tls?.keyFile, password.reveal()]);
}
