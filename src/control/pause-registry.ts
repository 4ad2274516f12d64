// Owns cluster-wide pauses: the set of pauses in force (read from the control log and applied to the
// local pipeline), this replica's heartbeat (which pauses it applied and how many inserts touching each
// are still on the wire), and the confirmation that a pause is in force and quiet on every live
// replica. Protocol: docs/operations.md ("Pauses").
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { AbortedError, InserterError } from '../errors/inserter-error.ts';
import type { PipelineStatus } from '../pipeline/status.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ControlLog, ControlRecord } from './control-log.ts';
import { scopeKey, type Pause, type PauseScope } from './scope.ts';
import { HEARTBEAT_PREFIX, heartbeatKey, parseHeartbeat, parsePause, type AppliedPause, type Heartbeat } from './wire.ts';

/** What the registry needs from the pipeline (Pipeline satisfies it structurally). */
export interface PipelineControl {
  setPauses(pauses: readonly Pause[]): void;
  inflight(scope: PauseScope): number;
  status(): PipelineStatus;
}

/** Gauges the registry keeps current (a subset of Metrics). */
export interface RegistryGauges {
  readonly pauseAgeSeconds: { set(labels: { kind: string }, value: number): void; reset(): void };
  readonly controlReplicas: { set(value: number): void };
}

export interface PauseRegistryOptions {
  readonly log: ControlLog;
  readonly pipeline: PipelineControl;
  readonly replicaId: string;
  readonly logger: Logger;
  /** Heartbeat period; a changed heartbeat is sent at once. */
  readonly heartbeatMs: number;
  /** A replica whose last heartbeat is older than this is not live (dead, or partitioned away). */
  readonly replicaTimeoutMs: number;
  /**
   * A replica silent for longer than this is forgotten: dropped from the registry (status, replicas)
   * and its heartbeat tombstoned in the compacted topic, so that replicas killed without a goodbye do
   * not pile up. Default: the larger of 60 s and 12 × replicaTimeoutMs. One that speaks again is back.
   */
  readonly replicaExpireMs?: number;
  readonly gauges?: RegistryGauges;
  readonly now?: () => number;
}

export interface ReplicaView {
  readonly replicaId: string;
  readonly host: string;
  readonly pid: number;
  readonly live: boolean;
  /** Milliseconds since its last heartbeat was seen. */
  readonly silentMs: number;
  readonly applied: readonly AppliedPause[];
}

export interface ReplicaAck {
  readonly replicaId: string;
  readonly applied: boolean;
  /** Inserts still on the wire touching the scope; null while the pause is not applied there. */
  readonly inflight: number | null;
}

export interface Confirmation {
  readonly pause: Pause;
  /** Every live replica applied the pause and has nothing in flight for it. */
  readonly quiet: boolean;
  readonly replicas: readonly ReplicaAck[];
  /** Live replicas that have not applied it yet or still have inserts in flight. */
  readonly waitingFor: readonly ReplicaAck[];
}

export interface PauseOutcome extends Confirmation {
  /** false when the scope was already paused (pausing twice is harmless: the first pause stays). */
  readonly created: boolean;
  /** `quiet`: confirmed; `pending`: not awaited; `timeout`: awaited, not quiet in time. */
  readonly state: 'quiet' | 'pending' | 'timeout';
}

interface ReplicaEntry {
  heartbeat: Heartbeat;
  seenAt: number;
}

const TICK_MS = 100;

export class PauseRegistry {
  readonly #o: PauseRegistryOptions;
  readonly #now: () => number;
  readonly #stop = new AbortController();
  readonly #pauses = new Map<string, Pause>();
  readonly #replicas = new Map<string, ReplicaEntry>();
  readonly #waiters = new Set<() => void>();
  readonly #startedAt: number;
  #position = -1n;
  #caughtUp = false;
  #leaving = false;
  #timer: NodeJS.Timeout | undefined;
  #lastSent = { body: '', at: 0 };
  #sending: Promise<void> | undefined;
  #started: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: PauseRegistryOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#startedAt = this.#now();
  }

  get replicaId(): string {
    return this.#o.replicaId;
  }

  /** Reads the control log to its end and applies the pauses in force; resolves once caught up and announced. */
  start(signal: AbortSignal): Promise<void> {
    this.#started ??= (async () => {
      const both = AbortSignal.any([signal, this.#stop.signal]);
      await this.#o.log.follow((record) => this.#onRecord(record), both);
      this.#caughtUp = true;
      this.#apply();
      this.#o.logger.info({ replica: this.#o.replicaId, pauses: [...this.#pauses.keys()] }, 'control topic read; pauses applied');
      await this.#heartbeat(true);
      this.#timer = setInterval(
        () => {
          this.#expireReplicas();
          void this.#heartbeat(false);
        },
        Math.min(TICK_MS, this.#o.heartbeatMs),
      );
      this.#timer.unref();
    })();
    return this.#started;
  }

  get caughtUp(): boolean {
    return this.#caughtUp;
  }

  /** Milliseconds since the control log was last heard from (for readiness). */
  controlSilenceMs(): number {
    return this.#o.log.silenceMs();
  }

  pauses(): Pause[] {
    return [...this.#pauses.values()].sort((a, b) => a.at - b.at);
  }

  replicas(): ReplicaView[] {
    const now = this.#now();
    return [...this.#replicas.values()]
      .map(({ heartbeat: h, seenAt }) => ({
        replicaId: h.replicaId,
        host: h.host,
        pid: h.pid,
        live: now - seenAt <= this.#o.replicaTimeoutMs,
        silentMs: Math.max(0, now - seenAt),
        applied: h.applied,
      }))
      .sort((a, b) => a.replicaId.localeCompare(b.replicaId));
  }

  /** The pause on a scope key and how far it is confirmed; undefined when the scope is not paused. */
  confirmation(key: string): Confirmation | undefined {
    const pause = this.#pauses.get(key);
    if (pause === undefined) return undefined;
    const replicas = this.replicas()
      .filter((r) => r.live)
      .map((r): ReplicaAck => {
        const applied = r.applied.find((a) => a.id === pause.id);
        return { replicaId: r.replicaId, applied: applied !== undefined, inflight: applied?.inflight ?? null };
      });
    const waitingFor = replicas.filter((r) => !r.applied || r.inflight !== 0);
    // This replica must have confirmed too: if its own heartbeats stopped arriving it knows nothing.
    const selfSeen = replicas.some((r) => r.replicaId === this.#o.replicaId);
    return { pause, quiet: selfSeen && waitingFor.length === 0, replicas, waitingFor };
  }

  /**
   * Pauses a scope cluster-wide. With `wait` it resolves once every live replica applied the pause
   * and has no insert touching it on the wire, or at the timeout with the replicas still busy.
   */
  async pause(scope: PauseScope, reason: string, by: string, options: { wait?: boolean; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<PauseOutcome> {
    this.#assertStarted();
    const key = scopeKey(scope);
    const signal = this.#signal(options.signal);
    let created = false;
    if (!this.#pauses.has(key)) {
      const pause: Pause = { id: randomUUID(), scope, reason, by, at: this.#now() };
      const offset = await this.#o.log.append(key, JSON.stringify(pause), signal);
      await this.#waitUntil(() => this.#position >= offset, signal);
      created = true;
      this.#o.logger.info({ scope: key, reason, by, id: pause.id }, 'pause set');
    }
    if (options.wait === false) return this.#outcome(key, created, 'pending');
    const quiet = await this.#waitUntil(() => this.confirmation(key)?.quiet !== false, signal, options.timeoutMs ?? 30_000);
    return this.#outcome(key, created, quiet ? 'quiet' : 'timeout');
  }

  /** Waits (up to the timeout) until the pause on a scope key is quiet everywhere; undefined if not paused. */
  async waitQuiet(key: string, timeoutMs: number, signal?: AbortSignal): Promise<PauseOutcome | undefined> {
    this.#assertStarted();
    const quiet = await this.#waitUntil(() => this.confirmation(key)?.quiet !== false, this.#signal(signal), timeoutMs);
    if (!this.#pauses.has(key)) return undefined;
    return this.#outcome(key, false, quiet ? 'quiet' : 'timeout');
  }

  /** Lifts the pause on a scope key; resolves once this replica applied it. Undefined if not paused. */
  async resume(key: string, signal?: AbortSignal): Promise<Pause | undefined> {
    this.#assertStarted();
    const pause = this.#pauses.get(key);
    if (pause === undefined) return undefined;
    const s = this.#signal(signal);
    const offset = await this.#o.log.append(key, undefined, s);
    await this.#waitUntil(() => this.#position >= offset, s);
    this.#o.logger.info({ scope: key, id: pause.id }, 'pause lifted');
    return pause;
  }

  #outcome(key: string, created: boolean, state: PauseOutcome['state']): PauseOutcome {
    const confirmation = this.confirmation(key);
    if (confirmation === undefined) throw new InserterError('INSERTER_PAUSE_LIFTED', `the pause on ${key} was lifted while waiting`);
    return { ...confirmation, created, state };
  }

  #onRecord(record: ControlRecord): void {
    this.#position = record.offset;
    if (record.key.startsWith(HEARTBEAT_PREFIX)) {
      const id = record.key.slice(HEARTBEAT_PREFIX.length);
      const heartbeat = record.value === undefined ? undefined : parseHeartbeat(record.value);
      if (heartbeat === undefined) this.#replicas.delete(id);
      // While catching up the record's own time says how old it is; afterwards, arrival is now.
      else this.#replicas.set(id, { heartbeat, seenAt: this.#caughtUp ? this.#now() : Math.min(this.#now(), record.timestamp) });
    } else if (record.value === undefined) {
      this.#pauses.delete(record.key);
      if (this.#caughtUp) this.#apply();
    } else {
      const pause = parsePause(record.key, record.value);
      if (pause === undefined) this.#o.logger.warn({ key: record.key, offset: String(record.offset) }, 'malformed control record skipped');
      else this.#pauses.set(record.key, pause);
      if (this.#caughtUp) this.#apply();
    }
    for (const wake of [...this.#waiters]) wake();
  }

  /** Forgets replicas silent for longer than replicaExpireMs and tombstones their heartbeats (never this one). */
  #expireReplicas(): void {
    if (!this.#caughtUp || this.#leaving) return;
    const expireMs = this.#o.replicaExpireMs ?? Math.max(60_000, 12 * this.#o.replicaTimeoutMs);
    const now = this.#now();
    for (const [id, entry] of this.#replicas) {
      if (id === this.#o.replicaId || now - entry.seenAt <= expireMs) continue;
      this.#replicas.delete(id);
      this.#o.logger.info({ replica: id, host: entry.heartbeat.host, silentMs: now - entry.seenAt }, 'replica silent too long: forgotten, its heartbeat tombstoned');
      this.#o.log.append(heartbeatKey(id), undefined, this.#stop.signal).catch((error: unknown) => {
        if (!this.#stop.signal.aborted) this.#o.logger.warn({ err: error, replica: id }, 'tombstone of an expired replica not written; the next replica to read it expires it again');
      });
    }
  }

  #apply(): void {
    this.#o.pipeline.setPauses(this.pauses());
    this.#updateGauges();
    void this.#heartbeat(false);
  }

  #updateGauges(): void {
    const gauges = this.#o.gauges;
    if (gauges === undefined) return;
    gauges.pauseAgeSeconds.reset();
    const now = this.#now();
    const oldest = new Map<string, number>();
    for (const p of this.#pauses.values()) oldest.set(p.scope.kind, Math.max(oldest.get(p.scope.kind) ?? 0, (now - p.at) / 1000));
    for (const [kind, age] of oldest) gauges.pauseAgeSeconds.set({ kind }, age);
    gauges.controlReplicas.set(this.replicas().filter((r) => r.live).length);
  }

  /** Sends this replica's heartbeat when it changed, or when the period has passed. */
  #heartbeat(force: boolean): Promise<void> {
    if (!this.#caughtUp || this.#leaving) return Promise.resolve();
    if (this.#sending !== undefined) return force ? this.#sending.then(() => this.#heartbeat(true)) : this.#sending;
    const applied = this.pauses().map((p) => ({ id: p.id, inflight: this.#o.pipeline.inflight(p.scope) }));
    const body = JSON.stringify(applied);
    const now = this.#now();
    if (!force && body === this.#lastSent.body && now - this.#lastSent.at < this.#o.heartbeatMs) return Promise.resolve();
    this.#updateGauges();
    const heartbeat: Heartbeat = { replicaId: this.#o.replicaId, host: hostname(), pid: process.pid, startedAt: this.#startedAt, at: now, applied };
    this.#sending = (async () => {
      try {
        const offset = await this.#o.log.append(heartbeatKey(this.#o.replicaId), JSON.stringify(heartbeat), this.#stop.signal);
        this.#lastSent = { body, at: now };
        if (force) await this.#waitUntil(() => this.#position >= offset, this.#stop.signal);
      } catch (error) {
        if (!this.#stop.signal.aborted) this.#o.logger.warn({ err: error }, 'control heartbeat not sent; retrying');
      } finally {
        this.#sending = undefined;
      }
    })();
    return this.#sending;
  }

  /** Resolves true once `done()` holds (checked after each control record and tick), false at the timeout. */
  #waitUntil(done: () => boolean, signal: AbortSignal, timeoutMs?: number): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (done()) finish(() => resolve(true));
      };
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => finish(() => resolve(done())), timeoutMs);
      const poll = setInterval(check, TICK_MS); // liveness changes with time, not only with records
      const onAbort = (): void => finish(() => reject(new AbortedError('stopped while waiting for the control topic')));
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        clearInterval(poll);
        signal.removeEventListener('abort', onAbort);
        this.#waiters.delete(check);
        settle();
      };
      this.#waiters.add(check);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  #signal(signal: AbortSignal | undefined): AbortSignal {
    return signal === undefined ? this.#stop.signal : AbortSignal.any([signal, this.#stop.signal]);
  }

  #assertStarted(): void {
    if (!this.#caughtUp) throw new InserterError('INSERTER_CONTROL_NOT_READY', 'the control topic has not been read yet', { retryable: true });
  }

  /** Stops heartbeating, says goodbye (so this replica stops counting as live) and closes the log. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      this.#leaving = true;
      await this.#sending;
      const bye = AbortSignal.timeout(2_000);
      if (this.#caughtUp) await this.#o.log.append(heartbeatKey(this.#o.replicaId), undefined, bye).catch(() => undefined);
      this.#stop.abort();
      await this.#o.log.close();
    })();
    return this.#closing;
  }

  /** Stops at once without a goodbye: other replicas notice when the heartbeats stop. */
  async destroy(): Promise<void> {
    clearInterval(this.#timer);
    this.#leaving = true;
    this.#stop.abort();
    this.#closing ??= this.#o.log.close();
    await this.#closing;
  }
}
