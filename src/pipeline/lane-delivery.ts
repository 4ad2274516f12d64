// Owns a lane's delivery queue: batches of one lane are delivered one after another. Before a new
// batch's first insert its intent — exactly its records, its token — is made durable in the
// partition's ledger (docs/design/delivery.md §3); splits and dead-letter decisions go through the
// same ledger before they act (the journal given to the Deliverer). A batch whose insert keeps
// failing for a reason no split or retry cures is kept and tried again; a paused, revoked or
// fenced one is left unresolved, to be read again.
import { setTimeout as sleep } from 'node:timers/promises';
import { OffsetSet } from '../ack/offset-set.ts';
import type { Batch, Lane } from '../batch/lane.ts';
import type { LaneControl } from '../control/lane-control.ts';
import { AbortedError } from '../errors/inserter-error.ts';
import { partitionKey } from '../source/types.ts';
import type { Deliverer } from './deliver.ts';
import type { DeliveryJournal } from './delivery-range.ts';
import type { PartitionState } from './partition-state.ts';
import type { PipelineRuntime } from './runtime.ts';

export class LaneDelivery {
  readonly #rt: PipelineRuntime;
  /** Per batch, ranges an attempt of which failed ambiguously: a retried delivery keeps them in limbo. */
  readonly #limbo = new WeakMap<Batch, Set<string>>();
  readonly #deliverer: Deliverer;
  readonly #control: LaneControl;
  /** The partition's ledger is not held any more (fenced, or its producer given up). */
  readonly #ledgerLost: (state: PartitionState, error: unknown) => void;

  constructor(rt: PipelineRuntime, deliverer: Deliverer, control: LaneControl, ledgerLost: (state: PartitionState, error: unknown) => void) {
    this.#rt = rt;
    this.#deliverer = deliverer;
    this.#control = control;
    this.#ledgerLost = ledgerLost;
  }

  /** Queues the lane's open batch, if any. */
  flush(lane: Lane): void {
    const batch = lane.take();
    if (batch === undefined) return;
    // What was read before this batch can resolve apart from what is read after it (its chunk ends here).
    this.#rt.partitions.get(partitionKey(lane.topic, lane.partition))?.tracker.cut();
    this.enqueue(lane, batch);
  }

  /**
   * Memory is full: when open batches hold at least half of it, the largest goes now instead of at
   * its age, so the source waits for an insert rather than for a clock (and batches stay as large
   * as the budget allows).
   */
  flushLargest(): void {
    let largest: Lane | undefined;
    let open = 0;
    for (const state of this.#rt.partitions.values()) {
      for (const lane of state.lanes.values()) {
        const bytes = lane.open?.bytes ?? 0;
        open += bytes;
        if (bytes > (largest?.open?.bytes ?? 0) && !lane.stop.signal.aborted) largest = lane;
      }
    }
    if (largest !== undefined && open * 2 >= this.#rt.config.maxBufferedBytes) this.flush(largest);
  }

  enqueue(lane: Lane, batch: Batch): void {
    batch.generation = this.#rt.partitions.get(partitionKey(lane.topic, lane.partition))?.generation ?? 0;
    // The source stops before its bodies are made, not after (released when its first body is).
    this.#rt.budget.expectBodies(batch, lane.destination.id);
    lane.queued.add(batch);
    const delivery = lane.tail.then(() => this.#deliverHolding(lane, batch));
    lane.tail = delivery;
    this.#rt.track(delivery);
  }

  /** Delivers a batch, and if it fails for a reason no split or retry cures, keeps it and tries again. */
  async #deliverHolding(lane: Lane, batch: Batch): Promise<void> {
    const rt = this.#rt;
    const state = rt.partitions.get(partitionKey(lane.topic, lane.partition));
    lane.queued.delete(batch);
    // Dropped while queued (its destination parked, its bytes released then): read again later.
    if (batch.dropped) return rt.budget.releaseBatch(batch, lane.destination.id);
    // A re-formed batch's intent is durable already; a new batch's intent is saved before its insert.
    let intentDurable = batch.intent !== undefined;
    batch.sortByOffset(); // before its token and any split: a re-formed batch must match it row for row
    rt.inflight.begin(lane, batch);
    try {
      // Queued before a rewind and not started: its records are being read again and will form
      // new batches (a started batch has an intent, which the re-read claims instead).
      if (batch.intent === undefined && state !== undefined && batch.generation !== state.generation) return;
      const signal = AbortSignal.any([rt.hardStop.signal, lane.stop.signal, batch.stop.signal]);
      for (let attempt = 1; !lane.abandoned && !signal.aborted; attempt++) {
        // An earlier delivery of the same intent (before a rewind) may have finished meanwhile.
        if (batch.intent?.done === true) {
          batch.acks.resolve();
          return;
        }
        if (this.#control.stopsBatch(lane, batch)) break;
        try {
          if (state?.ledger !== undefined && batch.intent === undefined) {
            // The live schema it will be sent under goes with it (saved once, not again before the insert).
            const fingerprint = await this.#deliverer.fingerprint(lane, signal);
            // A rewind meanwhile: its records are being read again and will form new batches.
            if (state.generation !== batch.generation || state.revoked || lane.abandoned) return;
            // Intent first: once it is durable, any future owner re-forms exactly this batch.
            batch.intent = {
              route: lane.route.name,
              destination: lane.destination.id,
              token: lane.token(batch, 0, batch.size),
              records: OffsetSet.fromRecords(batch.records),
              rows: batch.size,
              teams: lane.route.destination === 'team' ? [...batch.teamSet].sort((x, y) => x - y) : undefined,
              parts: undefined,
              schemas: fingerprint === undefined ? [] : [fingerprint],
              done: false,
            };
            state.ledger.add(batch.intent);
          }
          if (state?.ledger !== undefined && rt.ledgers !== undefined && !intentDurable) {
            if (state.revoked) return; // another owner decides this partition now
            await state.saveLedger(rt.ledgers, rt.hardStop.signal);
            intentDurable = true;
            // Revoked while the intent was being written: the new owner may not have seen it, so
            // inserting now could duplicate what it inserts. Leave the rows to the new owner.
            if (state.revoked || lane.abandoned) return;
          }
          // Act only on durable ledger state: a split, exclusion or decision whose save failed (the
          // delivery ended with it) or is still being written (a rewind re-formed the batch
          // meanwhile: seed 1456) is saved before anything is inserted on it again.
          if ((attempt > 1 || batch.replayed) && state?.ledger !== undefined && !state.ledgerDurable && rt.ledgers !== undefined) {
            await state.saveLedger(rt.ledgers, rt.hardStop.signal);
            if (state.revoked || lane.abandoned) return;
          }
          await this.#deliverer.deliver(lane, batch, signal, state === undefined ? undefined : this.#journal(state, batch));
          if (batch.intent !== undefined) state?.ledger?.complete(batch.intent);
          batch.acks.resolve();
          return;
        } catch (error) {
          if ((error as { code?: unknown }).code === 'INSERTER_LEDGER_FENCED') {
            // The ledger is not held any more: nothing more may be recorded or inserted from this state.
            if (state) this.#ledgerLost(state, error);
            return;
          }
          if (error instanceof AbortedError || signal.aborted) {
            // Paused, revoked or shutting down: the batch stays unresolved and is re-read later.
            if (state && !rt.hardStop.signal.aborted) state.needsRewind = true;
            return;
          }
          rt.logger.error({ destination: lane.destination.id, table: lane.table.table, attempt, err: error }, 'batch held: insert keeps failing');
          await sleep(rt.config.retry.capMs, undefined, { signal }).catch(() => undefined);
        }
      }
      if (state && !lane.abandoned) state.needsRewind = true;
    } finally {
      rt.inflight.end(lane, batch);
      rt.budget.releaseBatch(batch, lane.destination.id);
    }
  }

  /** The ledger side of a delivery: splits and dead-letter decisions are durable before they act. */
  #journal(state: PartitionState, batch: Batch): DeliveryJournal | undefined {
    const intent = batch.intent;
    const store = this.#rt.ledgers;
    const ledger = state.ledger;
    if (intent === undefined || store === undefined || ledger === undefined) return undefined;
    const durable = async (signal: AbortSignal): Promise<void> => {
      if (state.revoked) throw new AbortedError('partition revoked');
      await state.saveLedger(store, signal);
      if (state.revoked) throw new AbortedError('partition revoked');
    };
    // Row ranges only mean something for a batch holding exactly the intent's records; a re-formed
    // batch short of them (its missing records were resolved before the position it was read from:
    // an operator moved the group's position) is sent as one insert under the intent's token.
    if (batch.size !== intent.rows) return undefined;
    // The ranges a re-formed batch starts with may have been sent already (by a previous owner, or
    // by this process before a rewind); ranges this delivery makes by splitting have not.
    const sent = new Set(batch.replayed ? (intent.parts ?? [{ from: 0, to: intent.rows }]).map((p) => `${p.from}-${p.to}`) : []);
    let limbo = this.#limbo.get(batch);
    return {
      mayHaveLanded: (from, to) => sent.has(`${from}-${to}`) || limbo?.has(`${from}-${to}`) === true,
      mayHaveLandedNow: (from, to) => {
        if (limbo === undefined) this.#limbo.set(batch, (limbo = new Set()));
        limbo.add(`${from}-${to}`);
      },
      leaves: () => intent.parts,
      sentUnder: () => intent.schemas,
      sending: (fingerprint, signal) => (ledger.sentUnder(intent, fingerprint) ? durable(signal) : Promise.resolve()),
      exclude: (from, to, excluded, reasons, signal) => {
        ledger.exclude(intent, from, to, excluded, reasons);
        return durable(signal);
      },
      split: (from, to, ranges, signal) => {
        ledger.split(intent, from, to, ranges);
        return durable(signal);
      },
      decide: (from, to, settled, reason, signal) => {
        ledger.settle(intent, from, to, settled, reason);
        return durable(signal);
      },
      inserted: (from, to) => ledger.settle(intent, from, to, 'done'),
    };
  }
}
