// Owns delivering one lane batch: its inserts under deterministic tokens (one attempt: attempt.ts),
// and acting on failures as the error policy says (src/errors/policy.ts): back off and retry
// the same rows with the same token, split what is too big for one insert, isolate rows the
// warehouse rejects (bisecting, guided by ClickHouse's "at row N"), bisect a rejection no class
// lists until it follows a row (dead-lettered) or every part fails alike (the destination's), then
// dead-letter, pause the destination, drop or stop. The batch's records resolve only when every
// row is in the warehouse, in the dead-letter topic or dropped by an explicit policy.
import type { PartReason } from '../ack/ledger.ts';
import type { Config } from '../config/load.ts';
import { ErrorClasses } from '../errors/classes.ts';
import { AbortedError } from '../errors/inserter-error.ts';
import { ErrorPolicy, PolicyStopError, type ClassPolicy } from '../errors/policy.ts';
import type { DeadLetterReason } from '../deadletter/types.ts';
import type { DestinationDirectory } from '../route/destinations.ts';
import type { WarehouseError } from '../sink/errors.ts';
import type { BackoffPolicy } from '../sink/retry.ts';
import type { SourceRecord } from '../source/types.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { ErrorReporter } from '../telemetry/sentry.ts';
import { AMBIGUOUS, Attempts, type BodyBudget } from './attempt.ts';
import { DestinationGates } from './destination-gates.ts';
import { inDoubt, rangeOf, type DeliveryJournal, type Range } from './delivery-range.ts';
import { excludeNamedRow, namedRow, noticeHold, refreshFingerprint } from './in-doubt.ts';
import { RangeLetters } from './range-letters.ts';
import { retryPhase, type Phase } from './retry-phase.ts';
import { Semaphore } from './semaphore.ts';
import { splitPoints } from './split-points.ts';
import { defaultStop, failureContext, reporterFor, tableName } from './failure-report.ts';
import type { Batch, Lane } from '../batch/lane.ts';
import type { TableSchemas } from './table-schemas.ts';

export interface DeliveryDeps {
  readonly config: Config;
  readonly directory: DestinationDirectory;
  readonly schemas: TableSchemas;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly deadLetter: (lane: Lane, record: SourceRecord, team: number | undefined, reason: DeadLetterReason) => Promise<void>;
  /** Counts each body in the memory budget while it is sent (none: bodies are not counted). */
  readonly budget?: BodyBudget;
  /** Defaults to the config's `errorPolicy` over the built-in policy. */
  readonly policy?: ErrorPolicy;
  /** Defaults to a reporter for `telemetry.sentryDsn` (none: nothing is sent). */
  readonly reporter?: ErrorReporter;
  /** Called once when a `then: stop` policy fires; defaults to a graceful stop with exit code 70. */
  readonly onStop?: (error: PolicyStopError) => void;
}

/** Rejections that depend on the server's state, not on the rows: an earlier attempt may have succeeded. */
const loadDependent: ReadonlySet<string> = new Set([ErrorClasses.memoryLimit]);

export class Deliverer {
  readonly #deps: DeliveryDeps;
  readonly #policy: ErrorPolicy;
  readonly #reporter: ErrorReporter;
  readonly #gates: DestinationGates;
  readonly #slots = new Map<string, Semaphore>();
  /** One insert of a range, the probe, and the inserts landed per table: the evidence of a `bisect` that the destination accepts rows. */
  readonly #attempts: Attempts;
  readonly #letters: RangeLetters;
  #stopped = false;

  constructor(deps: DeliveryDeps) {
    this.#deps = deps;
    this.#policy = deps.policy ?? new ErrorPolicy(deps.config.errorPolicy);
    this.#reporter = deps.reporter ?? reporterFor(deps.config, deps.logger);
    this.#gates = new DestinationGates(deps.metrics, deps.logger);
    this.#attempts = new Attempts(deps.schemas, deps.metrics, this.#gates, deps.budget);
    this.#letters = new RangeLetters(deps.logger, deps.deadLetter);
  }

  /** The fingerprint of the lane's live table schema now (undefined when it cannot be read: the insert will say why). */
  async fingerprint(lane: Lane, signal: AbortSignal): Promise<string | undefined> {
    try {
      return (await this.#deps.schemas.live(this.#deps.directory.sink(lane.destination), lane.route, lane.table, signal)).fingerprint;
    } catch (error) {
      if (error instanceof AbortedError || signal.aborted) throw error;
      return undefined;
    }
  }

  /**
   * Delivers the batch: as one insert, or — re-formed after a crash or rewind — as the ranges its
   * journal recorded: pending ones are inserted under their tokens, dead-lettered ones written again.
   */
  async deliver(lane: Lane, batch: Batch, signal: AbortSignal, journal?: DeliveryJournal): Promise<void> {
    const sink = this.#deps.directory.sink(lane.destination);
    const slots = this.#slotsFor(lane);
    await slots.acquire(signal);
    try {
      const leaves = journal?.leaves();
      if (leaves === undefined) {
        await this.#range(rangeOf(lane, sink, batch, 0, batch.size, signal, journal));
        return;
      }
      for (const leaf of [...leaves]) {
        if (leaf.state === 'pending') await this.#range(rangeOf(lane, sink, batch, leaf.from, leaf.to, signal, journal, leaf));
        else if (leaf.state === 'dead' && leaf.reason !== undefined) await this.#letters.rows(lane, batch, leaf.from, leaf.to, leaf.reason);
        else if (leaf.state === 'done' && leaf.excluded !== undefined && leaf.excludedReasons !== undefined) await this.#letters.excluded(lane, batch, leaf.excluded, leaf.excludedReasons);
      }
    } finally {
      slots.release();
    }
  }

  /**
   * Delivers rows [from, to) under their token. A part of a bisection passes `since` (the count of
   * inserts landed in its table when the bisection began) and `failed`: its first attempt, failed.
   */
  async #range(range: Range, since?: number, first?: WarehouseError): Promise<void> {
    const { lane, batch, from, to, signal, journal } = range;
    let failure = first ?? (await this.#attempts.run(range));
    let attempts = 1;
    // `bisect`: a lone row is guilty when it failed after an insert landed in its table since the
    // bisection began (a part of it, or another lane's): the destination took rows, then refused it.
    let bisectFrom = since;
    const guilty = (): boolean => to - from === 1 && bisectFrom !== undefined && range.failedAt > bisectFrom;
    if (failure === undefined) {
      await this.#inserted(range);
      return;
    }
    // Whether an attempt of exactly these rows may still land: then a load-dependent rejection is
    // retried with the same rows and token (it deduplicates) instead of splitting.
    let inLimbo = journal?.mayHaveLanded(from, to) === true;
    while (failure !== undefined) {
      if (AMBIGUOUS.has(failure.errorClass)) {
        inLimbo = true;
        journal?.mayHaveLandedNow(from, to); // a retried delivery of this batch must know it too
      }
      const policy = this.#policy.resolve(failure.errorClass, lane.route.name, lane.destination.id);
      const mustNotSplit = inLimbo && loadDependent.has(failure.errorClass);
      const cuts = policy.action === 'bisect' ? !mustNotSplit && !(inLimbo && AMBIGUOUS.has(failure.errorClass)) : policy.action !== 'retry' && to - from > 1 && !mustNotSplit;
      // In doubt (§11): an attempt that may have landed was sent under another schema, so this
      // refusal says nothing about it; a split's new tokens could insert its rows twice. The named
      // row is left out and the rest sent again under the same token; a refusal naming no row holds.
      // Judged against the table's schema of now (re-read: the server refused under it), whose
      // fingerprint carries the table's definition version, so a change and its revert count.
      const doubt = inLimbo && (cuts || policy.then === 'deadLetter') && ((await refreshFingerprint(this.#deps.schemas, range, this.#deps.config.retry)) || inDoubt(range));
      if (doubt && cuts && to - from > 1) {
        if (await this.#excludeNamedRow(range, failure, attempts)) {
          failure = await this.#attempts.run(range);
          attempts++;
          continue; // landed: recorded after the loop
        }
        // The hold's limits count from its start: other failures between its attempts (a network
        // error) must not start it over, or it never ends.
        range.doubtSince ??= Date.now();
        const limits = policy.backoff;
        const spent = (limits.maxElapsedMs !== undefined && Date.now() - range.doubtSince >= limits.maxElapsedMs) || (limits.maxAttempts !== undefined && attempts >= limits.maxAttempts);
        const phase: Phase = spent ? { failure, attempts } : await this.#holdInDoubt(range, failure, policy, attempts);
        if (phase.failure === undefined) {
          await this.#inserted(range);
          return;
        }
        ({ failure, attempts } = phase);
        if (phase.failure.errorClass === policy.errorClass && namedRow(range, phase.failure) === undefined) {
          // Held past the class's limits, no row named: nothing can be split safely, so the range is
          // dead-lettered whole, marked (each row is in the table exactly when the first attempt landed).
          this.#report(phase.failure, range, phase.attempts, 'deadLetter', policy);
          const reason = { ...reasonOf(phase.failure, phase.attempts), mayHaveLanded: true };
          await journal?.decide(from, to, 'dead', reason, signal);
          await this.#letters.rows(lane, batch, from, to, reason);
          return;
        }
        continue;
      }
      // A bisection cuts and dead-letters on the server's refusal; after an ambiguous failure of the
      // same class (an override bisecting `unknown`) the rows are retried whole instead.
      if (policy.action === 'bisect' && !mustNotSplit && !(inLimbo && AMBIGUOUS.has(failure.errorClass))) {
        const top = bisectFrom === undefined;
        bisectFrom ??= range.failedAt;
        if (to - from > 1) {
          await this.#bisect(range, failure, policy, bisectFrom, top);
          return;
        }
        if (guilty()) {
          this.#report(failure, range, attempts, 'deadLetter', policy);
          const reason = { ...reasonOf(failure, attempts), ...(doubt ? { mayHaveLanded: true } : {}) };
          await journal?.decide(from, to, 'dead', reason, signal);
          await this.#letters.rows(lane, batch, from, to, reason);
          return;
        }
        // No insert landed since: this row's failure, or the destination's? An empty insert into the
        // table tells (it stores nothing); once it lands, the row is tried again at once and judged.
        if (await this.#attempts.probe(range)) {
          failure = await this.#attempts.run(range);
          attempts++;
          if (failure === undefined) {
            await this.#inserted(range);
            return;
          }
          continue;
        }
        // The destination refuses even an empty insert: back off, probing again before every retry
        // (judged again whenever an insert lands in the table meanwhile), then `then`.
      } else if (policy.action !== 'retry' && to - from > 1 && !mustNotSplit) {
        this.#deps.metrics.splits.inc({ destination: lane.destination.id, table: lane.table.table, class: failure.errorClass });
        this.#deps.logger.warn(
          { destination: lane.destination.id, table: tableName(lane), class: failure.errorClass, code: failure.serverCode, action: policy.action, rows: to - from },
          'insert failed; splitting it',
        );
        if (policy.action === 'isolate' || !policy.transient) this.#report(failure, range, attempts, policy.action, policy);
        const parts = splitPoints(failure, from, to);
        await journal?.split(from, to, parts, signal);
        for (const [a, b] of parts) await this.#range(rangeOf(lane, range.sink, batch, a, b, signal, journal));
        return;
      }
      const judged = policy.action === 'bisect' ? guilty : undefined;
      const probing = judged !== undefined && to - from === 1 && bisectFrom !== undefined ? () => this.#attempts.probe(range) : undefined;
      let phase = await this.#retryPhase(range, failure, policy, policy.backoff, attempts, judged, probing);
      if (phase.failure === undefined) {
        await this.#inserted(range);
        return;
      }
      if (phase.failure.errorClass !== policy.errorClass || judged?.() === true) {
        ({ failure, attempts } = phase);
        continue; // another class now: its own policy decides; or a lone row now known guilty
      }
      this.#report(phase.failure, range, phase.attempts, policy.then, policy);
      switch (policy.then) {
        case 'deadLetter': {
          // After a failure that says nothing about the rows, an earlier attempt may have landed.
          const unproven = inLimbo && (AMBIGUOUS.has(phase.failure.errorClass) || loadDependent.has(phase.failure.errorClass));
          const reason = { ...reasonOf(phase.failure, phase.attempts), ...(doubt || unproven ? { mayHaveLanded: true } : {}) };
          await journal?.decide(from, to, 'dead', reason, signal);
          await this.#letters.rows(lane, batch, from, to, reason);
          return;
        }
        case 'drop':
          await journal?.decide(from, to, 'dropped', reasonOf(phase.failure, phase.attempts), signal);
          this.#drop(range, phase.failure, phase.attempts);
          return;
        case 'stop':
          throw this.#stop(range, phase.failure);
        case 'pauseDestination': {
          const probe: BackoffPolicy = { baseMs: policy.pauseMs, factor: 1, capMs: policy.pauseMs };
          const owner = this.#gates.pause(lane.destination.id, range, phase.failure);
          try {
            phase = await this.#retryPhase(range, phase.failure, policy, probe, phase.attempts, judged, probing);
          } finally {
            if (owner) this.#gates.resume(lane.destination.id, range);
          }
          ({ failure, attempts } = phase);
        }
      }
    }
    // Landed while the destination was paused for it.
    await this.#inserted(range);
  }

  /**
   * Bisects a range that failed with a `bisect` class: the split is recorded, then every part is
   * tried once before any is cut further, so a part that lands is evidence (it raises the table's
   * landed count) before the failing parts are judged. Failing parts bisect again; a lone row is
   * dead-lettered once evidence exists, else backed off (the destination's failure) by `#range`.
   */
  async #bisect(range: Range, failure: WarehouseError, policy: ClassPolicy, since: number, top: boolean): Promise<void> {
    const { lane, sink, batch, from, to, signal, journal } = range;
    this.#deps.metrics.splits.inc({ destination: lane.destination.id, table: lane.table.table, class: failure.errorClass });
    this.#deps.logger.warn(
      { destination: lane.destination.id, table: tableName(lane), class: failure.errorClass, code: failure.serverCode, action: policy.action, rows: to - from, err: failure },
      'insert rejected with a code no class lists; bisecting it',
    );
    if (top) this.#report(failure, range, 1, policy.action, policy);
    const parts = splitPoints(failure, from, to);
    await journal?.split(from, to, parts, signal);
    const failing: Array<{ part: Range; failure: WarehouseError }> = [];
    for (const [a, b] of parts) {
      const part = rangeOf(lane, sink, batch, a, b, signal, journal);
      const partFailure = await this.#attempts.run(part);
      if (partFailure === undefined) journal?.inserted(a, b);
      else failing.push({ part, failure: partFailure });
    }
    for (const { part, failure: partFailure } of failing) await this.#range(part, since, partFailure);
  }

  /** The range landed: recorded, then the rows left out of it (§11) are dead-lettered. */
  async #inserted(range: Range): Promise<void> {
    range.journal?.inserted(range.from, range.to);
    if (range.excluded.length > 0) await this.#letters.excluded(range.lane, range.batch, range.excluded, range.excludedReasons);
  }

  /** Leaves the row a refusal names out of the range in doubt (durably); false when no row is named. */
  async #excludeNamedRow(range: Range, failure: WarehouseError, attempts: number): Promise<boolean> {
    const policy = this.#policy.resolve(failure.errorClass, range.lane.route.name, range.lane.destination.id);
    return excludeNamedRow(range, failure, reasonOf(failure, attempts), {
      metrics: this.#deps.metrics,
      logger: this.#deps.logger,
      report: (error) => this.#report(error, range, attempts, 'exclude', policy),
    });
  }

  /** A range in doubt refused without naming a row: retried whole under its token within the class's limits (the lane holds meanwhile). */
  #holdInDoubt(range: Range, failure: WarehouseError, policy: ClassPolicy, attempts: number): Promise<Phase> {
    this.#report(noticeHold(range, failure, this.#deps.logger), range, attempts, 'hold', policy);
    return this.#retryPhase(range, failure, policy, policy.backoff, attempts);
  }

  /** Retries the range while it fails with `policy`'s class (retry-phase.ts). */
  #retryPhase(range: Range, first: WarehouseError, policy: ClassPolicy, backoff: BackoffPolicy, attemptsSoFar: number, stop?: () => boolean, before?: () => Promise<unknown>): Promise<Phase> {
    const steps = { attempt: (r: Range) => this.#attempts.run(r), report: (error: unknown, r: Range, attempts: number) => this.#report(error, r, attempts, 'retry', policy) };
    return retryPhase(range, first, policy, backoff, attemptsSoFar, { ...steps, metrics: this.#deps.metrics, logger: this.#deps.logger }, stop, before);
  }

  #drop(range: Range, failure: WarehouseError, attempts: number): void {
    const { lane, from, to } = range;
    this.#deps.metrics.droppedRows.inc({ destination: lane.destination.id, table: lane.table.table, class: failure.errorClass }, to - from);
    this.#deps.logger.error(
      { destination: lane.destination.id, table: tableName(lane), class: failure.errorClass, rows: to - from, attempts, token: range.token, err: failure },
      'rows dropped by the error policy',
    );
  }

  #stop(range: Range, failure: WarehouseError): PolicyStopError {
    const error = new PolicyStopError(failure.errorClass, failure.message, failure);
    if (!this.#stopped) {
      this.#stopped = true;
      this.#deps.logger.fatal(
        { destination: range.lane.destination.id, table: tableName(range.lane), class: failure.errorClass, err: failure },
        'error policy says stop: stopping without committing past this batch',
      );
      const onStop = this.#deps.onStop ?? defaultStop;
      void this.#reporter.flush().finally(() => onStop(error));
    }
    return error;
  }

  /** Sends the error reports still queued (at shutdown). */
  flushReports(): Promise<boolean> {
    return this.#reporter.flush();
  }

  #report(error: unknown, range: Range, attempts: number, action: string, policy: ClassPolicy): void {
    if (this.#reporter.enabled) this.#reporter.report(error, failureContext(error, range, attempts, action, policy));
  }

  #slotsFor(lane: Lane): Semaphore {
    let slots = this.#slots.get(lane.destination.id);
    if (slots === undefined) {
      slots = new Semaphore(lane.destination.concurrency);
      this.#slots.set(lane.destination.id, slots);
    }
    return slots;
  }
}

function reasonOf(failure: WarehouseError, attempts: number): PartReason {
  return { errorClass: failure.errorClass, code: failure.code, message: failure.message, attempts, ...(failure.serverCode === undefined ? {} : { serverCode: failure.serverCode }) };
}
