// Owns which destinations served by the destinations API inserter trusts with a team's rows and a
// cluster password: the host allowlist (`destinationsApi.allowedHosts`, the YAML destinations' hosts
// and loopback), the schemes (HTTPS; plain HTTP only to loopback unless `allowHttp`), TLS file paths
// and BigQuery key files inside `destinationsApi.tlsDir`, and a client certificate only with its key
// and CA. A destination
// outside is rejected whole: the last good one with its id stays, or its teams are held.
import { existsSync, realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import type { DestinationConfig } from '../../config/load.ts';
import { destinationTlsIssues } from '../../config/schema.ts';
import type { DestinationSnapshot } from '../provider.ts';

export interface TrustPolicy {
  /** Exact hosts and `*.domain` patterns (any name below the domain, not the domain itself). */
  readonly allowedHosts: readonly string[];
  /** Plain HTTP to hosts other than loopback. */
  readonly allowHttp: boolean;
  /** Absolute folder TLS files named by the API must be in; none: the API may name no TLS file. */
  readonly tlsDir?: string | undefined;
  /** Hosts of the YAML destinations: always allowed. */
  readonly configHosts: readonly string[];
}

/** Why a destination was rejected; also the `reason` label of inserter_destinations_rejected_total. */
export type RejectionReason = 'host' | 'scheme' | 'tls_dir' | 'tls_incomplete';

export interface Rejection {
  readonly destination: string;
  readonly reason: RejectionReason;
  /** Names the host, field or path at fault; never a password or a whole URL. */
  readonly message: string;
  /** Teams of the document mapped to it. */
  readonly teams: readonly number[];
  /** Whether the last good destination with this id stays in force (else its teams are held). */
  readonly keptLastGood: boolean;
}

export interface TrustedSnapshot {
  readonly snapshot: DestinationSnapshot;
  readonly rejections: readonly Rejection[];
}

/** 127.0.0.0/8, ::1 and localhost, as URL.hostname writes them. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost') || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '[::1]' || h === '::1';
}

export function hostMatches(host: string, pattern: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  const p = pattern.toLowerCase().replace(/\.$/, '');
  return p.startsWith('*.') ? h.endsWith(p.slice(1)) && h.length > p.length - 1 : h === p;
}

/** The destination as inserter will use it (TLS paths made absolute), or why it is refused. */
export function checkDestination(d: DestinationConfig, policy: TrustPolicy): { ok: DestinationConfig } | { reason: RejectionReason; message: string } {
  const url = new URL(d.url);
  const host = url.hostname;
  const loopback = isLoopback(host);
  const allowed = loopback || policy.configHosts.some((h) => hostMatches(host, h)) || policy.allowedHosts.some((p) => hostMatches(host, p));
  if (!allowed) return { reason: 'host', message: `host ${host} is not allowed (destinationsApi.allowedHosts; loopback and the hosts of the YAML destinations always are)` };
  if (url.protocol === 'http:' && !loopback && !policy.allowHttp)
    return { reason: 'scheme', message: `plain http to ${host}: HTTPS only, except to loopback (destinationsApi.allowHttp: true permits it)` };
  // A BigQuery key file is a credential on the inserter host, like a TLS key: only from tlsDir.
  const keyFile = d.bigquery?.credentialsFile;
  if (keyFile !== undefined) {
    if (policy.tlsDir === undefined) return { reason: 'tls_dir', message: 'bigquery.credentialsFile: key files from the API are refused while destinationsApi.tlsDir is not set' };
    const inside = insideDir(keyFile, policy.tlsDir);
    if (inside === undefined) return { reason: 'tls_dir', message: `bigquery.credentialsFile: ${keyFile} is outside destinationsApi.tlsDir (${policy.tlsDir})` };
    d = Object.freeze({ ...d, bigquery: Object.freeze({ ...d.bigquery, project: d.bigquery?.project ?? '', credentialsFile: inside }) });
  }
  if (d.tls === undefined) return { ok: d };
  const incomplete = destinationTlsIssues(d.tls);
  if (incomplete.length > 0) return { reason: 'tls_incomplete', message: incomplete.map((i) => `tls.${i.field}: ${i.message}`).join('; ') };
  const tls: { caFile?: string; certFile?: string; keyFile?: string } = {};
  for (const field of ['caFile', 'certFile', 'keyFile'] as const) {
    const file = d.tls[field];
    if (file === undefined) continue;
    if (policy.tlsDir === undefined) return { reason: 'tls_dir', message: `tls.${field}: TLS files from the API are refused while destinationsApi.tlsDir is not set` };
    const inside = insideDir(file, policy.tlsDir);
    if (inside === undefined) return { reason: 'tls_dir', message: `tls.${field}: ${file} is outside destinationsApi.tlsDir (${policy.tlsDir})` };
    tls[field] = inside;
  }
  return { ok: Object.freeze({ ...d, tls: Object.freeze(tls) }) };
}

/** `file` (relative ones from `dir`) as an absolute path if it is inside `dir`, symbolic links followed. */
function insideDir(file: string, dir: string): string | undefined {
  const path = resolve(dir, file);
  const within = (p: string, d: string): boolean => {
    const rel = relative(d, p);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  };
  if (!within(path, dir)) return undefined;
  if (existsSync(path) && existsSync(dir) && !within(realpathSync(path), realpathSync(dir))) return undefined;
  return path;
}

/**
 * Applies the policy to a new snapshot: every destination outside it is replaced by the last good
 * one with its id (from `previous`, checked when it came in), or dropped with its teams, which are
 * then held (never routed elsewhere).
 */
export function applyTrust(next: DestinationSnapshot, previous: DestinationSnapshot | undefined, policy: TrustPolicy): TrustedSnapshot {
  const destinations = new Map<string, DestinationConfig>();
  const rejections: Rejection[] = [];
  for (const [id, d] of next.destinations) {
    const checked = checkDestination(d, policy);
    if ('ok' in checked) {
      destinations.set(id, checked.ok);
      continue;
    }
    const lastGood = previous?.destinations.get(id);
    if (lastGood !== undefined) destinations.set(id, lastGood);
    const teams = [...next.teams].filter(([, dest]) => dest === id).map(([team]) => team);
    rejections.push({ destination: id, reason: checked.reason, message: checked.message, teams, keptLastGood: lastGood !== undefined });
  }
  const teams = new Map([...next.teams].filter(([, dest]) => destinations.has(dest)));
  return { snapshot: Object.freeze({ version: next.version, loadedAt: next.loadedAt, destinations, teams }), rejections };
}
