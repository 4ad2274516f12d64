// Owns where the fetch path reads each owned partition (docs/design/kafka-fetch.md): the owned set,
// the next offset of each, the committed offset read when it was assigned (for repairPosition), where
// a partition resumes after a rewind or a reset, and the generation that makes a response requested
// before any of these changed stale.
import type { Consumer, GroupAssignment } from '@platformatic/kafka';
import { committedOffset } from './kafka.ts';
import type { CommitPosition, PartitionRef } from './types.ts';
import { partitionKey } from './types.ts';

type PositionsClient = Pick<Consumer, 'listOffsets' | 'listCommittedOffsets'>;

export interface AssignmentChange {
  readonly revoked: readonly PartitionRef[];
  readonly assigned: readonly PartitionRef[];
}

export interface LogBounds {
  readonly start: bigint;
  readonly end: bigint;
}

export class FetchPositions {
  readonly #client: PositionsClient;
  #owned = new Map<string, PartitionRef>();
  /** The next offset to read of each owned partition whose position is known (the hot path's). */
  readonly next = new Map<string, bigint>();
  /** Bumped by every assignment change, rewind and reset: a response requested before it is stale. */
  generation = 0;
  /** The group's committed offset of each owned partition, read when it was assigned. */
  readonly #committedAtAssignment = new Map<string, Promise<bigint | undefined>>();
  /** Where an owned partition without a position resumes: the committed offset read at assignment, after a rewind or a reset. */
  readonly #resumeFrom = new Map<string, Promise<bigint | undefined>>();
  /** The partitions being resolved (owned here: they settle by themselves, their outcome checked against the generation). */
  readonly #resolving = new Map<string, { readonly generation: number; readonly resolving: Promise<void> }>();
  /** Failed resolves in a row per partition, and when to try again. */
  readonly #failures = new Map<string, { attempt: number; retryAt: number }>();

  constructor(client: PositionsClient) {
    this.#client = client;
  }

  get owned(): ReadonlyMap<string, PartitionRef> {
    return this.#owned;
  }

  /**
   * The group's new assignment. A join (`rejoined`) with the same partitions still resumes them from
   * the committed positions, as the client's stream does: another member may have owned and
   * committed them meanwhile (the core drops what it tracked already). Undefined when nothing changed.
   */
  assign(assignments: readonly GroupAssignment[], rejoined: boolean): AssignmentChange | undefined {
    const owned = new Map<string, PartitionRef>();
    for (const { topic, partitions } of assignments) {
      for (const partition of partitions) owned.set(partitionKey(topic, partition), { topic, partition });
    }
    const revoked = [...this.#owned].filter(([key]) => !owned.has(key)).map(([, ref]) => ref);
    const assigned = [...owned].filter(([key]) => !this.#owned.has(key)).map(([, ref]) => ref);
    if (revoked.length === 0 && assigned.length === 0) {
      if (rejoined && owned.size > 0) this.startOver();
      return undefined;
    }
    this.#owned = owned;
    this.generation++;
    for (const ref of revoked) {
      const key = partitionKey(ref.topic, ref.partition);
      this.#committedAtAssignment.delete(key);
      this.#resumeFrom.delete(key);
      this.#failures.delete(key);
      this.next.delete(key);
    }
    for (const ref of assigned) {
      const key = partitionKey(ref.topic, ref.partition);
      const read = this.#readCommitted(ref);
      this.#committedAtAssignment.set(key, read);
      this.#resumeFrom.set(key, read);
    }
    return { revoked, assigned };
  }

  /** Every owned partition resumes from its committed position, read again. */
  startOver(): void {
    this.generation++;
    for (const [key, ref] of this.#owned) this.#resumeFrom.set(key, this.#readCommitted(ref));
    this.next.clear();
  }

  /**
   * Every owned partition resumes from its committed position. A read that fails fails the rewind
   * (never the log start instead); a partition assigned again meanwhile keeps the position read at
   * that assignment.
   */
  async rewind(): Promise<void> {
    const owned = [...this.#owned];
    const before = new Map(owned.map(([key]) => [key, this.#committedAtAssignment.get(key)]));
    const committed = await Promise.all(owned.map(([, ref]) => this.#committed(ref)));
    this.generation++;
    owned.forEach(([key], i) => {
      if (!this.#owned.has(key) || this.#committedAtAssignment.get(key) !== before.get(key)) return;
      this.#resumeFrom.set(key, Promise.resolve(committed[i]));
    });
    this.next.clear(); // every position is resolved again from the committed one before the next fetch
  }

  /**
   * Starts resolving every owned partition without a position and not being resolved: the
   * committed offset, kept within the log (its start where none). Each partition on its own, in the
   * background, so that one whose leader or committed offset cannot be read (a broker down, a read
   * that hangs) holds no other; `settled` is told of each outcome. A partition whose read failed is
   * tried again after a backoff of its own; returns the milliseconds until the next such retry.
   */
  resolveMissing(settled: (error: unknown, attempt: number) => void, backoffMs: (attempt: number) => number): number | undefined {
    const now = Date.now();
    let retryIn: number | undefined;
    for (const [key, ref] of this.#owned) {
      const generation = this.generation;
      if (this.next.has(key) || this.#resolving.get(key)?.generation === generation) continue;
      const failed = this.#failures.get(key);
      if (failed !== undefined && failed.retryAt > now) {
        retryIn = Math.min(retryIn ?? Infinity, failed.retryAt - now);
        continue;
      }
      // An outcome counts only for the ownership and generation it was started in: a stale one
      // (revoked, re-assigned, rewound meanwhile) only wakes the caller, which resolves again.
      const current = (): boolean => {
        const mine = this.#resolving.get(key)?.generation === generation;
        if (mine) this.#resolving.delete(key);
        return mine && generation === this.generation && this.#owned.has(key);
      };
      const resolving = this.#resolveOne(key, ref, generation).then(
        () => {
          if (current()) this.#failures.delete(key);
          settled(undefined, 0);
        },
        (error: unknown) => {
          if (!current()) return settled(undefined, 0);
          const attempt = (this.#failures.get(key)?.attempt ?? 0) + 1;
          this.#failures.set(key, { attempt, retryAt: Date.now() + backoffMs(attempt) });
          settled(error, attempt);
        },
      );
      this.#resolving.set(key, { generation, resolving });
    }
    return retryIn;
  }

  async #resolveOne(key: string, ref: PartitionRef, generation: number): Promise<void> {
    const read = this.#resumeFrom.get(key) ?? this.#readCommitted(ref);
    let committed: bigint | undefined;
    let bounds: LogBounds;
    try {
      [committed, bounds] = await Promise.all([read, this.#logBounds(ref)]);
    } catch (error) {
      // Never the log start instead: a failed committed read is read again next time.
      const failed = await read.then(
        () => false,
        () => true,
      );
      if (failed && this.#resumeFrom.get(key) === read) this.#resumeFrom.set(key, this.#readCommitted(ref));
      throw error;
    }
    if (generation !== this.generation || !this.#owned.has(key)) return;
    let position = committed !== undefined && committed > bounds.start ? committed : bounds.start;
    if (position > bounds.end) position = bounds.end;
    this.next.set(key, position);
  }

  /** The log bounds of `refs` (one leader's partitions, after OFFSET_OUT_OF_RANGE); undefined where unread. */
  logBoundsOf(refs: readonly PartitionRef[]): Promise<Array<LogBounds | undefined>> {
    return Promise.all(refs.map((ref) => this.#logBounds(ref).catch(() => undefined)));
  }

  /**
   * A position below the log start moves to it (records lost to retention; the stream's `earliest`
   * fallback). True when one is above the log end (a truncated log after an unclean election):
   * offsets handed over in this ownership come again, so the caller starts over, and positions are
   * then kept within the log. A partition whose bounds were not read is left (the fetch fails
   * again, and this runs again).
   */
  moveIntoLog(refs: readonly PartitionRef[], bounds: ReadonlyArray<LogBounds | undefined>): boolean {
    let truncated = false;
    refs.forEach((ref, i) => {
      const key = partitionKey(ref.topic, ref.partition);
      const next = this.next.get(key);
      const log = bounds[i];
      if (next === undefined || log === undefined) return;
      if (next < log.start) this.next.set(key, log.start);
      else if (next > log.end) truncated = true;
    });
    return truncated;
  }

  /** Forgets the owned set (a new run announces it again to its handler). */
  forget(): void {
    this.#owned = new Map();
    this.generation++;
    this.next.clear();
    this.#committedAtAssignment.clear();
    this.#resumeFrom.clear();
    this.#failures.clear();
  }

  /** The source's repairPosition (types.ts): the position committed at assignment, if the group's is below it now. */
  async repair(ref: PartitionRef): Promise<CommitPosition | undefined> {
    const atAssignment = await this.#committedAtAssignment.get(partitionKey(ref.topic, ref.partition))?.catch(() => undefined);
    if (atAssignment === undefined || atAssignment < 0n) return undefined;
    const now = await this.#committed(ref);
    return now !== undefined && now < atAssignment ? { ...ref, offset: atAssignment, epoch: -1 } : undefined;
  }

  /** One partition's log start and end (the client asks every partition of a topic unless told which). */
  async #logBounds(ref: PartitionRef): Promise<LogBounds> {
    const request = { topics: [ref.topic], partitions: { [ref.topic]: [ref.partition] } };
    const [starts, ends] = await Promise.all([this.#client.listOffsets({ ...request, timestamp: -2n }), this.#client.listOffsets(request)]);
    const start = starts.get(ref.topic)?.[ref.partition];
    const end = ends.get(ref.topic)?.[ref.partition];
    if (start === undefined || end === undefined) throw new Error(`no log bounds for ${ref.topic}/${ref.partition}`);
    return { start, end };
  }

  /** The committed offset of a partition, a rejection kept from being unhandled (it is awaited later). */
  #readCommitted(ref: PartitionRef): Promise<bigint | undefined> {
    const read = this.#committed(ref);
    read.catch(() => undefined);
    return read;
  }

  #committed(ref: PartitionRef): Promise<bigint | undefined> {
    return committedOffset(this.#client, ref);
  }
}
