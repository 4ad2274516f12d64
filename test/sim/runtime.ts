// The simulated world's machinery: virtual time (node:test mock timers, including the
// `node:timers/promises` setTimeout the pipeline and retry() import), a step counter that can kill
// the current process incarnation at any step, and "remote calls" that model a request travelling
// to a durable service, landing there, and a reply travelling back. A kill -9 freezes the
// incarnation: nothing it started ever replies, and its requests in flight either land or are lost
// (warehouse inserts may also land later, after the next incarnation started: a zombie insert).
import { syncBuiltinESMExports } from 'node:module';
import { mock } from 'node:test';
import { setImmediate as realSetImmediate } from 'node:timers';
import type { Rng } from './rng.ts';

/** Virtual time. Only setTimeout, setInterval and Date are mocked; setImmediate stays real. */
export const clock = {
  install(nowMs: number): void {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: nowMs });
    // mock.timers patches `node:timers/promises` on its CommonJS object; this pushes the patch into
    // the ES module bindings that src/ imports (`import { setTimeout as sleep } ...`).
    syncBuiltinESMExports();
  },
  uninstall(): void {
    mock.timers.reset();
    syncBuiltinESMExports();
  },
  tick(ms: number): void {
    mock.timers.tick(ms);
  },
  /** Lets every promise chain that does not wait on a timer run to its end. */
  settle(): Promise<void> {
    return new Promise((resolve) => realSetImmediate(resolve));
  },
};

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** A promise that never settles: what a killed process waits on forever. */
export function hang<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}

export class Incarnation {
  readonly id: number;
  alive = true;
  readonly inflight = new Set<Op>();
  constructor(id: number) {
    this.id = id;
  }
}

type OpKind = 'kafka' | 'warehouse' | 'api';

export class Op {
  readonly kind: OpKind;
  readonly name: string;
  state: 'pending' | 'landed' | 'dropped' = 'pending';
  /** A zombie (an op of a dead incarnation) lands no earlier than this. */
  notBefore = 0;
  readonly #land: () => void;
  constructor(kind: OpKind, name: string, land: () => void) {
    this.kind = kind;
    this.name = name;
    this.#land = land;
  }
  land(): void {
    if (this.state !== 'pending') return;
    this.state = 'landed';
    this.#land();
  }
  drop(): void {
    if (this.state === 'pending') this.state = 'dropped';
  }
}

export interface RemoteOptions {
  readonly kind: OpKind;
  /** Time for the request to reach the service and be applied there. */
  readonly sendMs: number;
  /** Time for the reply to come back. */
  readonly replyMs: number;
  /** `before`: the request fails without effect; `after`: it takes effect but the client sees an error. */
  readonly fail?: 'before' | 'after' | undefined;
  readonly error?: () => Error;
  readonly signal?: AbortSignal | undefined;
  readonly abortError?: () => Error;
}

export class World {
  readonly rng: Rng;
  steps = 0;
  /** The current incarnation is killed when `steps` reaches this. */
  crashAtStep: number | undefined;
  incarnation: Incarnation = new Incarnation(0);
  readonly trace: string[] | undefined;
  /** Remote operations not yet landed or dropped, across incarnations (zombies included). */
  readonly pending = new Set<Op>();
  readonly #onKill: Array<(inc: Incarnation) => void> = [];
  zombies = 0;
  /** Commits applied again late, moving a position back (see FEATURES.lateCommit and SimSource). */
  lateCommits = false;
  lateCommitCount = 0;

  constructor(rng: Rng, trace: boolean) {
    this.rng = rng;
    this.trace = trace ? [] : undefined;
  }

  newIncarnation(): Incarnation {
    this.incarnation = new Incarnation(this.incarnation.id + 1);
    return this.incarnation;
  }

  note(message: string): void {
    this.trace?.push(`${Date.now() % 1_000_000} #${this.incarnation.id} s${this.steps} ${message}`);
  }

  onKill(listener: (inc: Incarnation) => void): void {
    this.#onKill.push(listener);
  }

  /** One observable step of the world; the current incarnation may be killed right here. */
  step(what: string): void {
    this.steps++;
    if (this.trace !== undefined) this.note(what);
    if (this.crashAtStep !== undefined && this.steps >= this.crashAtStep && this.incarnation.alive) {
      this.crashAtStep = undefined;
      this.kill(this.incarnation);
    }
  }

  /** kill -9: the incarnation stops; its requests in flight land or are lost, inserts maybe later. */
  kill(inc: Incarnation): void {
    if (!inc.alive) return;
    inc.alive = false;
    this.note(`KILL incarnation ${inc.id} (${inc.inflight.size} requests in flight)`);
    for (const op of inc.inflight) {
      if (op.state !== 'pending') continue;
      const roll = this.rng.float();
      if (op.kind === 'warehouse' && roll < 0.4) {
        // The server has the whole request: it applies it later, whatever happens to the client.
        op.notBefore = Date.now() + this.rng.int(0, 300);
        this.zombies++;
        this.note(`  ${op.name}: zombie, lands at +${op.notBefore - Date.now()}ms`);
      } else if (roll < 0.7) {
        this.note(`  ${op.name}: lands at the kill`);
        op.land();
      } else {
        this.note(`  ${op.name}: lost`);
        op.drop();
        this.pending.delete(op);
      }
    }
    inc.inflight.clear();
    for (const listener of this.#onKill) listener(inc);
  }

  /**
   * A request from `inc` to a durable service. `effect` runs when the request lands (it may throw
   * to answer with an error and no effect); the caller gets its value after the reply delay.
   */
  remote<T>(inc: Incarnation, name: string, options: RemoteOptions, effect: () => T): Promise<T> {
    if (!inc.alive) return hang(); // a dead process sends nothing (its timers may still fire)
    this.step(`${name} →`);
    if (!inc.alive) return hang();
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(options.abortError?.() ?? new Error('aborted'));
    return new Promise<T>((resolve, reject) => {
      let replied = false;
      let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
      const reply = (): void => {
        if (replied || !inc.alive || outcome === undefined) return;
        replied = true;
        signal?.removeEventListener('abort', onAbort);
        if (outcome.ok) resolve(outcome.value);
        else reject(outcome.error instanceof Error ? outcome.error : new Error(String(outcome.error)));
      };
      const op = new Op(options.kind, name, () => {
        this.pending.delete(op);
        inc.inflight.delete(op);
        if (options.fail === 'before') {
          outcome = { ok: false, error: options.error?.() ?? new Error(`${name} failed`) };
        } else {
          try {
            const value = effect();
            outcome = options.fail === 'after' ? { ok: false, error: options.error?.() ?? new Error(`${name} failed`) } : { ok: true, value };
          } catch (error) {
            outcome = { ok: false, error };
          }
        }
        this.step(`${name} ${options.fail === 'before' ? 'failed' : 'landed'}${options.fail === 'after' ? ' (reply: error)' : ''}${outcome.ok ? '' : `: ${String(outcome.error)}`}`);
        setTimeout(reply, options.replyMs);
      });
      const onAbort = (): void => {
        if (replied) return;
        replied = true;
        this.note(`${name} aborted by the client`);
        // The client gave up; a request that reached the server may still be applied.
        if (op.state === 'pending' && options.kind === 'kafka' && this.rng.chance(0.5)) {
          op.drop();
          this.pending.delete(op);
          inc.inflight.delete(op);
        }
        reject(options.abortError?.() ?? new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.add(op);
      inc.inflight.add(op);
      const arrive = (): void => {
        if (op.state !== 'pending') return;
        const wait = op.notBefore - Date.now();
        if (wait > 0) {
          setTimeout(arrive, wait);
          return;
        }
        op.land();
      };
      setTimeout(arrive, options.sendMs);
    });
  }
}
