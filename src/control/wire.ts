// Owns the control topic's record format: which keys exist, what their values hold, and parsing
// them defensively (a malformed record is skipped, never applied). Also parses scope keys typed by
// operators (`table:events`) back into scopes.
import type { Pause, PauseScope } from './scope.ts';
import { scopeKey } from './scope.ts';

/** Heartbeats live under `ack/<replicaId>`; every other key is a pause scope key (scopeKey()). */
export const HEARTBEAT_PREFIX = 'ack/';

export interface AppliedPause {
  readonly id: string;
  /** Insert attempts on the wire touching the pause's scope; 0: quiet. */
  readonly inflight: number;
}

export interface Heartbeat {
  readonly replicaId: string;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: number;
  /** Milliseconds since the epoch on the sender's clock. */
  readonly at: number;
  readonly applied: readonly AppliedPause[];
}

export function heartbeatKey(replicaId: string): string {
  return `${HEARTBEAT_PREFIX}${replicaId}`;
}

export function parseScopeKey(text: string): PauseScope | undefined {
  if (text === 'all') return { kind: 'all' };
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  const kind = text.slice(0, colon);
  const rest = text.slice(colon + 1);
  if (rest === '') return undefined;
  switch (kind) {
    case 'route':
      return { kind: 'route', route: rest };
    case 'table':
      return { kind: 'table', table: rest };
    case 'destination':
      return { kind: 'destination', destination: rest };
    case 'team':
      return /^\d+$/.test(rest) ? { kind: 'team', team: Number(rest) } : undefined;
    default:
      return undefined;
  }
}

export function parseScope(value: unknown): PauseScope | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  switch (v.kind) {
    case 'all':
      return { kind: 'all' };
    case 'route':
      return typeof v.route === 'string' && v.route !== '' ? { kind: 'route', route: v.route } : undefined;
    case 'table':
      return typeof v.table === 'string' && v.table !== '' ? { kind: 'table', table: v.table } : undefined;
    case 'destination':
      return typeof v.destination === 'string' && v.destination !== '' ? { kind: 'destination', destination: v.destination } : undefined;
    case 'team':
      return typeof v.team === 'number' && Number.isSafeInteger(v.team) && v.team >= 0 ? { kind: 'team', team: v.team } : undefined;
    default:
      return undefined;
  }
}

/** A pause record's value; undefined when malformed or stored under a key that is not its scope's. */
export function parsePause(key: string, text: string): Pause | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const v = raw as Record<string, unknown>;
  const scope = parseScope(v.scope);
  if (scope === undefined || scopeKey(scope) !== key) return undefined;
  if (typeof v.id !== 'string' || typeof v.reason !== 'string' || typeof v.by !== 'string' || typeof v.at !== 'number') return undefined;
  return { id: v.id, scope, reason: v.reason, by: v.by, at: v.at };
}

export function parseHeartbeat(text: string): Heartbeat | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const v = raw as Record<string, unknown>;
  if (typeof v.replicaId !== 'string' || typeof v.at !== 'number' || !Array.isArray(v.applied)) return undefined;
  const applied: AppliedPause[] = [];
  for (const a of v.applied as unknown[]) {
    const entry = a as Record<string, unknown> | null;
    if (entry === null || typeof entry.id !== 'string' || typeof entry.inflight !== 'number') return undefined;
    applied.push({ id: entry.id, inflight: entry.inflight });
  }
  return {
    replicaId: v.replicaId,
    host: typeof v.host === 'string' ? v.host : '',
    pid: typeof v.pid === 'number' ? v.pid : 0,
    startedAt: typeof v.startedAt === 'number' ? v.startedAt : 0,
    at: v.at,
    applied,
  };
}
