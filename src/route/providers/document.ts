// Owns the destinations document (docs/api/destinations.md): the shape served by the API and read
// from a static file, validated whole or not at all, turned into a snapshot with passwords wrapped
// in Secret at once. Problems name field paths only; values never reach a message.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { DestinationConfig } from '../../config/load.ts';
import { destinationSchema } from '../../config/schema.ts';
import { Secret } from '../../config/secret.ts';
import { DestinationsError, type DestinationSnapshot } from '../provider.ts';

const field = destinationSchema.shape;

const destinationDoc = z.object({
  id: field.id,
  kind: field.kind,
  bigquery: field.bigquery,
  url: field.url,
  user: field.user,
  password: z.string(),
  database: field.database,
  tls: field.tls,
  compression: field.compression,
  cluster: field.cluster,
  limits: z.object({ maxBufferedBytes: field.maxBufferedBytes, concurrency: field.concurrency, requestTimeoutMs: field.requestTimeoutMs, stalledAfterMs: field.stalledAfterMs }).prefault({}),
});

const teamDoc = z.object({ team_id: z.number().int().nonnegative(), destination: z.string().min(1) });

export const destinationsDocumentSchema = z.object({ version: z.string().min(1).max(200), destinations: z.array(destinationDoc), teams: z.array(teamDoc) }).superRefine((doc, ctx) => {
  const ids = new Set<string>();
  doc.destinations.forEach((d, i) => {
    if (d.kind === 'bigquery' && d.bigquery === undefined) ctx.addIssue({ code: 'custom', path: ['destinations', i, 'bigquery'], message: 'a bigquery destination needs bigquery.project' });
    if (d.kind !== 'bigquery' && d.bigquery !== undefined)
      ctx.addIssue({ code: 'custom', path: ['destinations', i, 'bigquery'], message: 'only a destination of kind bigquery takes bigquery settings' });
    if (ids.has(d.id)) ctx.addIssue({ code: 'custom', path: ['destinations', i, 'id'], message: `duplicate destination id "${d.id}"` });
    ids.add(d.id);
  });
  const teams = new Set<number>();
  doc.teams.forEach((t, i) => {
    if (teams.has(t.team_id)) ctx.addIssue({ code: 'custom', path: ['teams', i, 'team_id'], message: `duplicate team ${t.team_id}` });
    teams.add(t.team_id);
    if (!ids.has(t.destination)) ctx.addIssue({ code: 'custom', path: ['teams', i, 'destination'], message: `unknown destination "${t.destination}"` });
  });
});

export const teamDocumentSchema = teamDoc;

export interface ParsedDocument {
  readonly snapshot: DestinationSnapshot;
  /** Hash of the whole content, passwords included: tells a real change from a re-send. Never log it. */
  readonly fingerprint: string;
}

/** Validates a decoded document; throws DestinationsError('invalid') naming every problem. */
export function parseDocument(raw: unknown, loadedAt: number, what: string): ParsedDocument {
  const parsed = destinationsDocumentSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = redact(
      parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
      raw,
    );
    throw new DestinationsError('invalid', `${what} is malformed, rejected whole:\n  - ${issues.join('\n  - ')}`, { issues });
  }
  const doc = parsed.data;
  const destinations = new Map<string, DestinationConfig>();
  for (const d of doc.destinations) {
    const tls = d.tls === undefined ? undefined : Object.freeze({ ...d.tls });
    destinations.set(
      d.id,
      Object.freeze({
        id: d.id,
        kind: d.kind,
        ...(d.bigquery === undefined ? {} : { bigquery: Object.freeze({ ...d.bigquery }) }),
        url: d.url,
        user: d.user,
        password: new Secret(d.password),
        database: d.database,
        tls,
        compression: d.compression,
        ...(d.cluster === undefined ? {} : { cluster: d.cluster }),
        ...d.limits,
      }),
    );
  }
  const teams = new Map(doc.teams.map((t) => [t.team_id, t.destination] as const));
  const canonical = JSON.stringify([
    doc.destinations.map((d) => ({ ...d, tls: d.tls ?? null })).sort((a, b) => a.id.localeCompare(b.id)),
    doc.teams.map((t) => [t.team_id, t.destination]).sort((a, b) => Number(a[0]) - Number(b[0])),
  ]);
  const fingerprint = createHash('sha256').update(canonical).digest('hex');
  return { snapshot: Object.freeze({ version: doc.version, loadedAt, destinations, teams }), fingerprint };
}

/** JSON.parse without its native message, which quotes the input (and could quote a password). */
export function decodeJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new DestinationsError('not_json', `${what} is not valid JSON (${text.length} characters), rejected whole`);
  }
}

/** Belt and braces: any password string present in the input is cut out of the messages. */
function redact(issues: string[], raw: unknown): string[] {
  const secrets: string[] = [];
  const walk = (value: unknown, key: string): void => {
    if (typeof value === 'string' && /password|secret|token/i.test(key) && value.length >= 4) secrets.push(value);
    else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, Array.isArray(value) ? key : k);
  };
  walk(raw, '');
  return issues.map((issue) => secrets.reduce((text, s) => text.replaceAll(s, '[redacted]'), issue));
}
