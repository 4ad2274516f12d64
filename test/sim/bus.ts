// An in-memory message bus: one append-only log per (topic, partition), a consumer group's
// committed positions, and a `Source` over them that behaves like the Kafka source: records in order
// per partition from the committed position, partitions interleaved by the seeded RNG, fetch pauses,
// backpressure honoured, rebalances (revoke, then re-assign from the committed position), and
// commits that can fail (before or after they take effect). Offsets may be sparse (offsets.ts): a
// position is never an index — fetching from one starts at the first record at or above it.
import { InserterError } from '../../src/errors/inserter-error.ts';
import type { CommitPosition, PartitionRef, Source, SourceHandler, SourceRecord } from '../../src/source/types.ts';
import { partitionKey } from '../../src/source/types.ts';
import { indexAtOrAbove, type OffsetLayout } from './offsets.ts';
import type { Rng } from './rng.ts';
import { hang, sleep, type Incarnation, type World } from './runtime.ts';

export interface BusRecord extends SourceRecord {
  /** Virtual time at which the producer appends it (it is invisible before). */
  readonly appendAt: number;
}

export interface CommitEvent {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly incarnation: number;
  readonly previous: bigint | undefined;
  /** Landed after the partition was assigned again, or applied again late (SimSource.commit): it may move the position back. */
  readonly late: boolean;
}

export class Bus {
  readonly #logs = new Map<string, BusRecord[]>();
  readonly #refs: PartitionRef[] = [];
  /** Per partition, the offsets its records get (FEATURES.sparseOffsets); none: dense from 0. */
  readonly #layouts = new Map<string, OffsetLayout>();
  readonly committed = new Map<string, bigint>();
  readonly #stale = new Map<string, { previous: bigint; until: number }>();
  readonly commits: CommitEvent[] = [];
  /** Called when a commit takes effect (the invariant checker hooks in here). */
  onCommit: ((event: CommitEvent) => void) | undefined;

  addPartition(topic: string, partition: number, layout?: OffsetLayout): void {
    this.#refs.push({ topic, partition });
    this.#logs.set(partitionKey(topic, partition), []);
    if (layout !== undefined) this.#layouts.set(partitionKey(topic, partition), layout);
  }

  partitions(): readonly PartitionRef[] {
    return this.#refs;
  }

  log(topic: string, partition: number): readonly BusRecord[] {
    return this.#logs.get(partitionKey(topic, partition)) ?? [];
  }

  append(topic: string, partition: number, record: Omit<BusRecord, 'topic' | 'partition' | 'offset' | 'epoch' | 'headers'>): BusRecord {
    const log = this.#logs.get(partitionKey(topic, partition));
    if (log === undefined) throw new Error(`no partition ${topic}/${partition}`);
    const offset = this.#layouts.get(partitionKey(topic, partition))?.() ?? BigInt(log.length);
    const full: BusRecord = { ...record, topic, partition, offset, epoch: 0, headers: [] };
    log.push(full);
    return full;
  }

  /** Just past the last record appended by `now` (0 when none is): a position below it has a record to fetch. */
  visibleEnd(topic: string, partition: number, now: number): bigint {
    const log = this.log(topic, partition);
    let end = 0;
    while (end < log.length && (log[end] as BusRecord).appendAt <= now) end++;
    return end === 0 ? 0n : (log[end - 1] as BusRecord).offset + 1n;
  }

  /** The record a fetch from `position` returns: the first at or above it (a position may fall in a gap). */
  recordAtOrAbove(topic: string, partition: number, position: bigint): BusRecord | undefined {
    const log = this.log(topic, partition);
    return log[indexAtOrAbove(log, position)];
  }

  /** The position a consumer that read and resolved everything commits: just past the last record (0 for an empty log). */
  endPosition(topic: string, partition: number): bigint {
    const last = this.log(topic, partition).at(-1);
    return last === undefined ? 0n : last.offset + 1n;
  }

  committedPosition(topic: string, partition: number): bigint {
    return this.committed.get(partitionKey(topic, partition)) ?? 0n;
  }

  /**
   * The group's position as an offset fetch sees it: a position committed in a transaction whose
   * markers are still being written (until `staleUntil`) is not seen yet — the one before it is.
   */
  fetchedPosition(topic: string, partition: number): bigint {
    const stale = this.#stale.get(partitionKey(topic, partition));
    return stale !== undefined && Date.now() < stale.until ? stale.previous : this.committedPosition(topic, partition);
  }

  /** `staleUntil`: a transactional commit that offset fetches miss until then (fetchedPosition). */
  applyCommit(position: CommitPosition, incarnation: number, late = false, staleUntil?: number): void {
    const key = partitionKey(position.topic, position.partition);
    const previous = this.committed.get(key);
    const event: CommitEvent = { topic: position.topic, partition: position.partition, offset: position.offset, incarnation, previous, late };
    if (staleUntil !== undefined && staleUntil > Date.now()) this.#stale.set(key, { previous: previous ?? 0n, until: staleUntil });
    else this.#stale.delete(key);
    this.committed.set(key, position.offset);
    this.commits.push(event);
    this.onCommit?.(event);
  }

  /** Every record appended and every position committed at the log end. */
  drained(now: number): boolean {
    for (const ref of this.#refs) {
      const last = this.log(ref.topic, ref.partition).at(-1);
      if (last !== undefined && last.appendAt > now) return false;
      if (this.committedPosition(ref.topic, ref.partition) !== this.endPosition(ref.topic, ref.partition)) return false;
    }
    return true;
  }
}

export interface SourceFaults {
  /** Probability that a commit fails without effect / takes effect but replies with an error. */
  readonly commitFailBefore: number;
  readonly commitFailAfter: number;
  /** Probability, per fetch, of a rebalance that revokes some partitions and re-assigns them. */
  readonly rebalance: number;
  /** At most this many rebalances per incarnation (more would livelock a slow committer). */
  readonly maxRebalances: number;
  readonly maxFetch: number;
  /**
   * While the handler makes the source wait (a record waiting for its schema, the ledger, the memory
   * budget): per wait, the chance that *other* partitions are revoked then — as a KIP-848 group or the
   * Kafka source's assignment timer does concurrently — and assigned again only later. Drawn from
   * `waitRng`, a stream of its own, so older seeds keep their schedules.
   */
  readonly revokeWhileWaiting?: number;
  readonly waitRng?: Rng;
}

/** Share of commits applied a second time, late (with FEATURES.lateCommit). */
const LATE_COMMIT = 0.03;

export class SimSource implements Source {
  readonly #world: World;
  readonly #inc: Incarnation;
  readonly #bus: Bus;
  readonly #rng: Rng;
  readonly #faults: SourceFaults;
  /** Next offset to deliver, per owned partition. */
  readonly #positions = new Map<string, { ref: PartitionRef; next: bigint; assignedAt: bigint }>();
  /** Times each partition was assigned: a commit landing after a re-assignment is a previous owner's late one. */
  readonly #assignments = new Map<string, number>();
  #closed = false;
  #lastLanding = 0;

  /** Called before each record is handed to the pipeline; what it returns is called with the handler's answer (backpressure checks). */
  admit: (() => ((pending: unknown) => void) | undefined) | undefined;

  constructor(world: World, inc: Incarnation, bus: Bus, rng: Rng, faults: SourceFaults) {
    this.#world = world;
    this.#inc = inc;
    this.#bus = bus;
    this.#rng = rng;
    this.#faults = faults;
  }

  async run(handler: SourceHandler, signal: AbortSignal): Promise<void> {
    this.#assign(this.#bus.partitions(), handler);
    let rebalances = 0;
    while (true) {
      if (!this.#inc.alive) return hang();
      if (signal.aborted || this.#closed) return;
      if (this.#revokedWhileWaiting.length > 0 && this.#faults.waitRng?.chance(0.5) === true) {
        const back = this.#revokedWhileWaiting.splice(0);
        this.#world.step(`assign again after a wait: ${back.map((r) => `${r.topic}/${r.partition}`).join(',')}`);
        if (!this.#inc.alive) return hang();
        this.#assign(back, handler);
      }
      if (rebalances < this.#faults.maxRebalances && this.#rng.chance(this.#faults.rebalance) && this.#positions.size > 0) {
        rebalances++;
        const owned = [...this.#positions.values()].map((p) => p.ref);
        const revoked = owned.filter(() => this.#rng.chance(0.6));
        if (revoked.length === 0) revoked.push(this.#rng.pick(owned));
        for (const ref of revoked) this.#positions.delete(partitionKey(ref.topic, ref.partition));
        this.#world.step(`rebalance: revoke ${revoked.map((r) => `${r.topic}/${r.partition}`).join(',')}`);
        if (!this.#inc.alive) return hang();
        handler.onRevoked(revoked);
        await sleep(this.#rng.int(0, 20));
        if (!this.#inc.alive) return hang();
        if (signal.aborted || this.#closed) return;
        this.#assign(revoked, handler);
      }
      const now = Date.now();
      const ready = [...this.#positions.values()].filter((p) => p.next < this.#bus.visibleEnd(p.ref.topic, p.ref.partition, now));
      if (ready.length === 0) {
        await sleep(this.#rng.int(1, 5));
        continue;
      }
      const position = this.#rng.pick(ready);
      const count = this.#rng.int(1, this.#faults.maxFetch);
      for (let i = 0; i < count; i++) {
        const record = this.#bus.recordAtOrAbove(position.ref.topic, position.ref.partition, position.next);
        if (record === undefined || record.appendAt > Date.now()) break;
        if (this.#positions.get(partitionKey(record.topic, record.partition)) !== position) break; // revoked meanwhile
        // Like a consumer's fetch position: just past the record delivered, wherever the next one is.
        position.next = record.offset + 1n;
        this.#world.step(`deliver ${record.topic}/${record.partition}@${record.offset}`);
        if (!this.#inc.alive) return hang();
        const admitted = this.admit?.();
        const pending = handler.onRecord(toSourceRecord(record));
        admitted?.(pending);
        if (pending !== undefined) {
          this.#revokeOthersWhileWaiting(record, handler);
          await pending;
        }
        if (!this.#inc.alive) return hang();
        if (signal.aborted || this.#closed) return;
      }
      if (this.#rng.chance(0.5)) await sleep(this.#rng.int(0, 3));
    }
  }

  /** Partitions revoked while the handler made the source wait, to be assigned again later. */
  readonly #revokedWhileWaiting: PartitionRef[] = [];

  #revokeOthersWhileWaiting(record: BusRecord, handler: SourceHandler): void {
    const rng = this.#faults.waitRng;
    if (rng === undefined || !rng.chance(this.#faults.revokeWhileWaiting ?? 0)) return;
    const others = [...this.#positions.values()].map((p) => p.ref).filter((r) => r.topic !== record.topic || r.partition !== record.partition);
    const revoked = others.filter(() => rng.chance(0.6));
    if (revoked.length === 0) return;
    for (const ref of revoked) this.#positions.delete(partitionKey(ref.topic, ref.partition));
    this.#revokedWhileWaiting.push(...revoked);
    this.#world.step(`revoke while ${record.topic}/${record.partition}@${record.offset} waits: ${revoked.map((r) => `${r.topic}/${r.partition}`).join(',')}`);
    if (this.#inc.alive) handler.onRevoked(revoked);
  }

  #assign(refs: readonly PartitionRef[], handler: SourceHandler): void {
    for (const ref of refs) {
      const committed = this.#bus.fetchedPosition(ref.topic, ref.partition);
      this.#positions.set(partitionKey(ref.topic, ref.partition), { ref, next: committed, assignedAt: committed });
      this.#assignments.set(partitionKey(ref.topic, ref.partition), (this.#assignments.get(partitionKey(ref.topic, ref.partition)) ?? 0) + 1);
    }
    this.#world.step(`assign ${refs.map((r) => `${r.topic}/${r.partition}@${this.#bus.fetchedPosition(r.topic, r.partition)}`).join(',')}`);
    if (this.#inc.alive) handler.onAssigned(refs);
  }

  /**
   * Re-reads every owned partition from the group's committed position, like the Kafka source: the
   * positions are fetched (a round trip), then the streams switch; records of the old streams still
   * being delivered stop at the switch.
   */
  async rewind(onSwitch: () => void, signal: AbortSignal): Promise<void> {
    const committed = await this.#world.remote(
      this.#inc,
      'rewind: fetch committed positions',
      { kind: 'kafka', sendMs: this.#rng.int(0, 5), replyMs: this.#rng.int(0, 3), signal, abortError: () => new InserterError('INSERTER_ABORTED', 'rewind aborted') },
      () => new Map([...this.#positions].map(([key, p]) => [key, this.#bus.fetchedPosition(p.ref.topic, p.ref.partition)])),
    );
    if (!this.#inc.alive) return hang();
    for (const [key, p] of this.#positions) {
      const next = committed.get(key);
      if (next !== undefined) this.#positions.set(key, { ref: p.ref, next, assignedAt: p.assignedAt });
    }
    this.#world.step(`rewind: switch ${[...this.#positions.values()].map((p) => `${p.ref.topic}/${p.ref.partition}@${p.next}`).join(',')}`);
    if (!this.#inc.alive) return hang();
    onSwitch();
  }

  repairPosition(ref: PartitionRef): Promise<CommitPosition | undefined> {
    const position = this.#positions.get(partitionKey(ref.topic, ref.partition));
    if (position === undefined || this.#bus.committedPosition(ref.topic, ref.partition) >= position.assignedAt) return Promise.resolve(undefined);
    return Promise.resolve({ ...ref, offset: position.assignedAt, epoch: -1 });
  }

  commit(positions: readonly CommitPosition[]): Promise<void> {
    if (positions.length === 0) return Promise.resolve();
    const roll = this.#rng.float();
    const fail = roll < this.#faults.commitFailBefore ? 'before' : roll < this.#faults.commitFailBefore + this.#faults.commitFailAfter ? 'after' : undefined;
    const what = positions.map((p) => `${p.topic}/${p.partition}@${p.offset}`).join(',');
    const sentAt = positions.map((p) => this.#assignments.get(partitionKey(p.topic, p.partition)));
    // One connection to the group coordinator: commits take effect in the order they were sent.
    const now = Date.now();
    const landing = Math.max(now + this.#rng.int(0, 3), this.#lastLanding);
    this.#lastLanding = landing;
    // A previous owner's commit that the Kafka client held during a rejoin and sent after it lands
    // after newer commits and moves the position back: modelled as this commit applied again later.
    if (this.#world.lateCommits && this.#rng.chance(LATE_COMMIT)) {
      const lateMs = this.#rng.int(200, 3_000);
      this.#world.lateCommitCount++;
      setTimeout(() => {
        this.#world.step(`late commit ${what} (sent ${lateMs} ms ago) lands`);
        for (const p of positions) this.#bus.applyCommit(p, this.#inc.id, true);
      }, lateMs);
    }
    return this.#world.remote(
      this.#inc,
      `commit ${what}`,
      {
        kind: 'kafka',
        sendMs: landing - now,
        replyMs: this.#rng.int(0, 2),
        fail,
        error: () => new InserterError('INSERTER_SOURCE_COMMIT_FAILED', 'offset commit failed: simulated', { retryable: true }),
      },
      () => {
        for (const [i, p] of positions.entries()) this.#bus.applyCommit(p, this.#inc.id, this.#assignments.get(partitionKey(p.topic, p.partition)) !== sentAt[i]);
      },
    );
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

function toSourceRecord(record: BusRecord): SourceRecord {
  return { topic: record.topic, partition: record.partition, offset: record.offset, timestamp: record.timestamp, key: record.key, value: record.value, headers: record.headers, epoch: record.epoch };
}
