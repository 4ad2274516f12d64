// Owns the providers that need no API: the mapping written in the YAML config (fixed for the life
// of the process), and a separate YAML/JSON file in the API's document shape, re-read when it
// changes. A bad edit of the file is rejected whole and the last good snapshot stays in force.
import { readFile, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Registry } from 'prom-client';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { Config, DestinationConfig } from '../../config/load.ts';
import { AbortedError } from '../../errors/inserter-error.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { DestinationsError, type DestinationProvider, type DestinationSnapshot } from '../provider.ts';
import { parseDocument } from './document.ts';
import { DestinationMetrics } from './metrics.ts';
import { SnapshotState } from './state.ts';

/** The `destinations` and `teams.map` of the YAML config, as it is today. Never changes. */
export class StaticConfigProvider implements DestinationProvider {
  readonly #snapshot: DestinationSnapshot;

  constructor(config: Pick<Config, 'destinations' | 'teams'>, now: () => number = Date.now) {
    const destinations = new Map<string, DestinationConfig>(config.destinations.map((d) => [d.id, d]));
    const teams = new Map(Object.entries(config.teams.map).map(([team, dest]) => [Number(team), dest] as const));
    this.#snapshot = Object.freeze({ version: 'config', loadedAt: now(), destinations, teams });
  }

  async start(signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw new AbortedError('destinations start aborted', { cause: signal.reason });
  }

  snapshot(): DestinationSnapshot {
    return this.#snapshot;
  }

  async lookupTeam(team: number): Promise<string | undefined> {
    return this.#snapshot.teams.get(team);
  }

  onChange(): () => void {
    return () => undefined;
  }

  async close(): Promise<void> {}
}

export interface StaticFileOptions {
  readonly path: string;
  /** How often to check the file for changes; 0 reads it once. */
  readonly reloadIntervalMs: number;
}

export interface StaticFileDeps {
  readonly logger: Logger;
  /** Registers the destinations metrics when given (one provider per registry). */
  readonly registry?: Registry;
  readonly now?: () => number;
}

/** A YAML or JSON file holding the API's document; `version` may be left out (the file's mtime is used). */
export class StaticFileProvider implements DestinationProvider {
  readonly #options: StaticFileOptions;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #state: SnapshotState;
  readonly #metrics: DestinationMetrics | undefined;
  readonly #closing = new AbortController();
  #lastText: string | undefined;
  #lastSuccess: number | undefined;
  #poller: Promise<void> | undefined;

  constructor(options: StaticFileOptions, deps: StaticFileDeps) {
    this.#options = options;
    this.#logger = deps.logger.child({ component: 'destinations-file', file: options.path });
    this.#now = deps.now ?? Date.now;
    this.#state = new SnapshotState(this.#logger);
    this.#metrics = deps.registry === undefined ? undefined : new DestinationMetrics(deps.registry, () => this.#lastSuccess, this.#now);
  }

  async start(signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw new AbortedError('destinations start aborted', { cause: signal.reason });
    await this.reload();
    if (this.#options.reloadIntervalMs > 0) this.#poller = this.#poll(this.#closing.signal);
  }

  snapshot(): DestinationSnapshot {
    return this.#state.get();
  }

  async lookupTeam(team: number): Promise<string | undefined> {
    return this.#state.get().teams.get(team);
  }

  onChange(listener: (snapshot: DestinationSnapshot) => void): () => void {
    return this.#state.onChange(listener);
  }

  /** Reads the file now; applies it if it changed and is valid, else keeps the snapshot in force and throws. */
  async reload(): Promise<void> {
    try {
      const [text, info] = await Promise.all([readFile(this.#options.path, 'utf8'), stat(this.#options.path)]).catch((cause: unknown) => {
        throw new DestinationsError('read', `cannot read ${this.#options.path}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
      });
      if (text !== this.#lastText || this.#state.current === undefined) {
        const raw = decodeYaml(text, this.#options.path);
        const doc = raw !== null && typeof raw === 'object' && !('version' in raw) ? { ...raw, version: `file@${info.mtime.toISOString()}` } : raw;
        const parsed = parseDocument(doc, this.#now(), this.#options.path);
        if (this.#state.offer(parsed, 'destinations-file')) this.#metrics?.snapshot(parsed.snapshot.version, parsed.snapshot.destinations.size, parsed.snapshot.teams.size);
        this.#lastText = text;
      }
      this.#lastSuccess = this.#now();
    } catch (error) {
      if (error instanceof DestinationsError) {
        this.#metrics?.failure(error.reason);
        this.#logger.warn({ reason: error.reason, issues: error.issues.length > 0 ? error.issues : undefined, err: error }, 'destinations file rejected, keeping the last good snapshot');
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort(new AbortedError('destinations provider closed'));
    await this.#poller;
  }

  async #poll(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await sleep(this.#options.reloadIntervalMs, undefined, { signal });
        await this.reload();
      } catch (error) {
        if (signal.aborted) return;
        if (!(error instanceof DestinationsError)) this.#logger.error({ err: error }, 'destinations file check failed unexpectedly');
      }
    }
  }
}

/** YAML (JSON is YAML) without the parser's message, which quotes the offending line. */
function decodeYaml(text: string, path: string): unknown {
  try {
    return parseYaml(text);
  } catch (error) {
    const where = error instanceof YAMLParseError && error.linePos !== undefined ? ` at line ${error.linePos[0].line}` : '';
    const code = error instanceof YAMLParseError ? ` (${error.code})` : '';
    throw new DestinationsError('not_json', `${path} is not valid YAML or JSON${code}${where}, rejected whole`);
  }
}
