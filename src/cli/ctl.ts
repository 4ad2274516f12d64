// Owns `inserter ctl`: the operator's client for a replica's admin API (status, pauses, pause,
// resume). Exit codes: 0 done, 1 the call failed, 2 usage, 3 paused but not quiet before the timeout.
// The token is read from --token-file (or $INSERTER_ADMIN_TOKEN) and never printed.
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { parseScopeKey } from '../control/wire.ts';

export const ctlUsage = `usage:
  inserter ctl status  --admin URL [--json]
  inserter ctl pauses  --admin URL [--json]
  inserter ctl pause   --admin URL --token-file F --scope KEY --reason TEXT [--by WHO] [--timeout MS] [--no-wait] [--json]
  inserter ctl resume  --admin URL --token-file F --scope KEY [--json]
scope KEY: all | route:NAME | table:[DB.]TABLE | destination:ID | team:N
exit codes: 0 done, 1 failed, 2 usage, 3 paused but inserts still in flight at the timeout`;

interface Out {
  write(text: string): void;
}

export interface CtlIo {
  readonly stdout: Out;
  readonly stderr: Out;
  readonly env: NodeJS.ProcessEnv;
  readonly fetch: typeof fetch;
}

const defaultIo: CtlIo = { stdout: process.stdout, stderr: process.stderr, env: process.env, fetch: (input, init) => fetch(input, init) };

class UsageError extends Error {}

export async function ctl(argv: string[], io: CtlIo = defaultIo): Promise<number> {
  const [sub, ...rest] = argv;
  let values: { admin?: string; 'token-file'?: string; scope?: string; reason?: string; by?: string; timeout?: string; 'no-wait'?: boolean; json?: boolean };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        admin: { type: 'string' },
        'token-file': { type: 'string' },
        scope: { type: 'string' },
        reason: { type: 'string' },
        by: { type: 'string' },
        timeout: { type: 'string' },
        'no-wait': { type: 'boolean' },
        json: { type: 'boolean' },
      },
    }));
    if (values.admin === undefined) throw new UsageError('--admin URL is required');
  } catch (error) {
    io.stderr.write(`ctl: ${(error as Error).message}\n${ctlUsage}\n`);
    return 2;
  }
  const base = values.admin.replace(/\/+$/, '');
  try {
    switch (sub) {
      case 'status':
        return print(io, values.json, await call(io, 'GET', `${base}/v1/status`), formatStatus);
      case 'pauses':
        return print(io, values.json, await call(io, 'GET', `${base}/v1/pauses`), formatPauses);
      case 'pause': {
        const scope = requireScope(values.scope);
        if (values.reason === undefined || values.reason === '') throw new UsageError('--reason TEXT is required');
        const timeoutMs = values.timeout === undefined ? 30_000 : Number(values.timeout);
        if (!Number.isInteger(timeoutMs) || timeoutMs < 0) throw new UsageError('--timeout must be milliseconds');
        const by = values.by ?? `${safeUser()}@${hostname()}`;
        const res = await call(io, 'POST', `${base}/v1/pauses`, token(io, values['token-file']), { scope, reason: values.reason, by, wait: values['no-wait'] !== true, timeoutMs }, timeoutMs + 15_000);
        const code = print(io, values.json, res, formatOutcome);
        return code === 0 && (res.body as { state?: string }).state === 'timeout' ? 3 : code;
      }
      case 'resume': {
        const scope = requireScope(values.scope);
        return print(
          io,
          values.json,
          await call(io, 'DELETE', `${base}/v1/pauses/${encodeURIComponent(scope)}`, token(io, values['token-file'])),
          (b) => `resumed ${(b as { resumed: { key: string } }).resumed.key}\n`,
        );
      }
      default:
        throw new UsageError(sub === undefined ? 'name a subcommand' : `unknown subcommand ${sub}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`ctl: ${error.message}\n${ctlUsage}\n`);
      return 2;
    }
    io.stderr.write(`ctl: ${(error as Error).message}\n`);
    return 1;
  }
}

function requireScope(text: string | undefined): string {
  if (text === undefined || parseScopeKey(text) === undefined) throw new UsageError('--scope must be all, route:NAME, table:[DB.]TABLE, destination:ID or team:N');
  return text;
}

function token(io: CtlIo, file: string | undefined): string {
  const value = file === undefined ? io.env.INSERTER_ADMIN_TOKEN : readFileSync(file, 'utf8').trim();
  if (value === undefined || value === '') throw new UsageError('--token-file F (or $INSERTER_ADMIN_TOKEN) is required for changes');
  return value;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

async function call(io: CtlIo, method: string, url: string, bearer?: string, body?: unknown, timeoutMs = 30_000): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await io.fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: shown as text
  }
  return { status: res.status, body: parsed };
}

function print(io: CtlIo, json: boolean | undefined, answer: Answer, format: (body: unknown) => string): number {
  if (answer.status >= 400) {
    const b = answer.body as { error?: string; message?: string };
    io.stderr.write(`ctl: HTTP ${answer.status} ${b.error ?? ''} ${b.message ?? (typeof answer.body === 'string' ? answer.body : '')}\n`);
    return 1;
  }
  io.stdout.write(json === true ? `${JSON.stringify(answer.body, null, 2)}\n` : format(answer.body));
  return 0;
}

interface Ack {
  replicaId: string;
  applied: boolean;
  inflight: number | null;
}

function formatOutcome(body: unknown): string {
  const b = body as { state: string; created: boolean; pause: { key: string; reason: string; by: string }; replicas: Ack[]; waitingFor: Ack[] };
  const lines = [`${b.pause.key}: ${b.created ? 'paused' : 'already paused'} (${b.pause.reason}, by ${b.pause.by}) — ${b.state}`];
  if (b.state === 'quiet') lines.push(`quiet on ${b.replicas.length} replica(s): no insert touching it in flight`);
  for (const w of b.waitingFor) lines.push(`  waiting for ${w.replicaId}: ${w.applied ? `${w.inflight} insert(s) in flight` : 'not applied yet'}`);
  return `${lines.join('\n')}\n`;
}

function formatPauses(body: unknown): string {
  const b = body as { pauses: Array<{ quiet: boolean; pause: { key: string; reason: string; by: string; at: number }; waitingFor: Ack[] }> };
  if (b.pauses.length === 0) return 'no pauses\n';
  return `${b.pauses.map((p) => `${p.pause.key}\t${p.quiet ? 'quiet' : `waiting for ${p.waitingFor.map((w) => w.replicaId).join(',')}`}\tsince ${new Date(p.pause.at).toISOString()}\tby ${p.pause.by}: ${p.pause.reason}`).join('\n')}\n`;
}

function formatStatus(body: unknown): string {
  const b = body as {
    replicaId: string;
    ready: boolean;
    routes: Array<{ route: string; destination: string; state: string; lag: number | null; lastInsertAt: number | null; lastErrorClass: string | null }>;
    pauses: Array<{ key: string }>;
    replicas: Array<{ replicaId: string; live: boolean }>;
  };
  const lines = [
    `replica ${b.replicaId} (${b.ready ? 'ready' : 'not ready'}); live replicas: ${b.replicas
      .filter((r) => r.live)
      .map((r) => r.replicaId)
      .join(', ')}`,
  ];
  lines.push(`pauses: ${b.pauses.length === 0 ? 'none' : b.pauses.map((p) => p.key).join(', ')}`);
  for (const r of b.routes) {
    lines.push(
      `${r.route} → ${r.destination}\t${r.state}\tlag ${r.lag ?? '?'}\tlast insert ${r.lastInsertAt === null ? 'never' : new Date(r.lastInsertAt).toISOString()}${r.lastErrorClass === null ? '' : `\tlast error ${r.lastErrorClass}`}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
