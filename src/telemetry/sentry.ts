// Owns reporting delivery failures to Sentry: a dedicated @sentry/node client (no global state, no
// default integrations, no PII), events fingerprinted by (class, destination, table) and
// rate-limited per fingerprint so a storm is one issue with a handful of events, and context that
// names the rows (route, topic, partition, offsets, team, table, code, attempts) with a truncated,
// scrubbed sample row. Credentials never leave the process: they are not in the context, and
// anything that looks like one is scrubbed from messages and samples.
// The SDK is loaded only when a DSN is configured (loadSentry): it brings OpenTelemetry with it,
// ~50 MiB resident (docs/benchmarks.md, session 14) that a process without Sentry need not hold.
import type * as Sentry from '@sentry/node';
import type { Logger } from './logger.ts';

type SentrySdk = typeof Sentry;
let sdk: SentrySdk | undefined;

/** Loads the Sentry SDK once per process; an ErrorReporter with a DSN needs it loaded first. */
export async function loadSentry(): Promise<void> {
  sdk ??= await import('@sentry/node');
}

export interface FailureContext {
  readonly errorClass: string;
  readonly destination: string;
  readonly table: string;
  readonly route: string;
  readonly topic: string;
  readonly partition: number;
  readonly fromOffset: bigint | undefined;
  readonly toOffset: bigint | undefined;
  readonly team?: number | undefined;
  readonly serverCode?: number | undefined;
  readonly attempts: number;
  readonly batchRows: number;
  /** What the policy did or will do (retry, pause, deadLetter, drop, stop). */
  readonly action: string;
  readonly transient: boolean;
  readonly sample?: Buffer | string | undefined;
}

export interface ReporterOptions {
  readonly dsn: string | undefined;
  readonly logger?: Logger;
  /** One event per fingerprint per window; later ones are counted into the next event. */
  readonly windowMs?: number;
  /** Transient failures are reported once they reach this many attempts. */
  readonly transientAttempts?: number;
  readonly sampleBytes?: number;
  readonly environment?: string;
  readonly release?: string;
}

interface Window {
  sentAt: number;
  suppressed: number;
}

export class ErrorReporter {
  readonly #client: Sentry.NodeClient | undefined;
  readonly #scope: SentrySdk['Scope'] | undefined;
  readonly #windowMs: number;
  readonly #transientAttempts: number;
  readonly #sampleBytes: number;
  readonly #windows = new Map<string, Window>();

  constructor(options: ReporterOptions) {
    this.#windowMs = options.windowMs ?? 60_000;
    this.#transientAttempts = options.transientAttempts ?? 5;
    this.#sampleBytes = options.sampleBytes ?? 1024;
    if (options.dsn === undefined || options.dsn === '') return;
    // A programming error, not a configuration one: the CLI loads the SDK when it reads a DSN.
    if (sdk === undefined) throw new Error('a Sentry DSN is configured but the SDK was not loaded: await loadSentry() first');
    this.#scope = sdk.Scope;
    this.#client = new sdk.NodeClient({
      dsn: options.dsn,
      transport: sdk.makeNodeTransport,
      stackParser: sdk.defaultStackParser,
      integrations: [],
      sendClientReports: false,
      tracesSampleRate: 0,
      ...(options.environment === undefined ? {} : { environment: options.environment }),
      ...(options.release === undefined ? {} : { release: options.release }),
      beforeSend: (event) => {
        delete event.request;
        delete event.user;
        delete event.server_name;
        if (event.message !== undefined) event.message = scrubText(event.message);
        for (const value of event.exception?.values ?? []) if (value.value !== undefined) value.value = scrubText(value.value);
        return event;
      },
    });
    this.#client.init();
  }

  get enabled(): boolean {
    return this.#client !== undefined;
  }

  /** Whether a failure at this point deserves a report (before rate limiting). */
  worthReporting(context: Pick<FailureContext, 'transient' | 'attempts' | 'action'>): boolean {
    return !context.transient || context.attempts >= this.#transientAttempts || context.action === 'pauseDestination' || context.action === 'stop';
  }

  /** Reports unless rate-limited or not worth it; returns the event id when one was sent. */
  report(error: unknown, context: FailureContext, now = Date.now()): string | undefined {
    if (this.#client === undefined || this.#scope === undefined || !this.worthReporting(context)) return undefined;
    const key = `${context.errorClass}\u0000${context.destination}\u0000${context.table}`;
    const window = this.#windows.get(key);
    if (window !== undefined && now - window.sentAt < this.#windowMs) {
      window.suppressed++;
      return undefined;
    }
    const suppressed = window?.suppressed ?? 0;
    this.#windows.set(key, { sentAt: now, suppressed: 0 });
    const scope = new this.#scope();
    scope.setClient(this.#client);
    scope.setFingerprint(['inserter', context.errorClass, context.destination, context.table]);
    scope.setLevel(context.transient ? 'warning' : 'error');
    scope.setTags({
      error_class: context.errorClass,
      destination: context.destination,
      table: context.table,
      route: context.route,
      action: context.action,
      ...(context.serverCode === undefined ? {} : { clickhouse_code: String(context.serverCode) }),
    });
    scope.setContext('delivery', {
      route: context.route,
      topic: context.topic,
      partition: context.partition,
      offsets: `${context.fromOffset ?? '?'}-${context.toOffset ?? '?'}`,
      team: context.team ?? null,
      destination: context.destination,
      table: context.table,
      error_class: context.errorClass,
      clickhouse_code: context.serverCode ?? null,
      attempts: context.attempts,
      batch_rows: context.batchRows,
      action: context.action,
      suppressed_since_last_event: suppressed,
      sample_row: context.sample === undefined ? null : sampleText(context.sample, this.#sampleBytes),
    });
    return this.#client.captureException(freshCopy(error), {}, scope);
  }

  async flush(timeoutMs = 2_000): Promise<boolean> {
    return this.#client === undefined ? true : this.#client.flush(timeoutMs);
  }

  async close(timeoutMs = 2_000): Promise<boolean> {
    return this.#client === undefined ? true : this.#client.close(timeoutMs);
  }
}

/** The SDK sends an Error object once only; a repeated failure (the same object) is a new event. */
function freshCopy(error: unknown): Error {
  if (!(error instanceof Error)) return new Error(String(error));
  const copy = new Error(error.message);
  copy.name = error.name;
  if (error.stack !== undefined) copy.stack = error.stack;
  return copy;
}

const secretKey = /pass(word)?|secret|token|auth|api[_-]?key|cookie|session|credential|private/i;

/** A sample row for a report: secret-looking fields blanked, truncated to `maxBytes`. */
export function sampleText(sample: Buffer | string, maxBytes: number): string {
  const text = typeof sample === 'string' ? sample : sample.subarray(0, maxBytes * 4).toString('utf8');
  let scrubbed: string;
  try {
    scrubbed = JSON.stringify(JSON.parse(text), (key, value: unknown) => (key !== '' && secretKey.test(key) ? '[scrubbed]' : value));
  } catch {
    scrubbed = scrubText(text);
  }
  return scrubbed.length > maxBytes ? `${scrubbed.slice(0, maxBytes)}…[truncated]` : scrubbed;
}

/** Removes credentials from free text: URL user info, basic auth, key=value secrets. */
export function scrubText(text: string): string {
  return text
    .replace(/\/\/[^/\s:@]+:[^/\s@]+@/g, '//[scrubbed]@')
    .replace(/\b(Basic|Bearer)\s+[A-Za-z0-9+/=._-]+/g, '$1 [scrubbed]')
    .replace(/("?(?:password|secret|token|api[_-]?key)"?\s*[:=]\s*)("[^"]*"|[^\s,&"}]+)/gi, '$1[scrubbed]');
}
