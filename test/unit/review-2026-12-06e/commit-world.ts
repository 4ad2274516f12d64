// Review 2026-12-06e of d2805e0 (positions committed in the ledger's transaction): the fakes the
// review's tests share. A ledger store that commits positions like KafkaLedgerStore — the ledger and
// the group's position in one write that lands whole or not at all, refused once the save signal is
// aborted (KafkaLedgerStore#save: signal.throwIfAborted), and saving the ledger alone (false) while
// the group coordinator is unknown (KafkaLedgerStore#commit, since the review's finding 1) —
// whose writes a test can hold, fail or fence; the group position it moves is a FedSource's commits,
// so the source's rewinds read from it.
import { MemoryLedgerStore, type LedgerJson } from '../../../src/ack/ledger.ts';
import { InserterError } from '../../../src/errors/inserter-error.ts';
import type { CommitPosition } from '../../../src/source/types.ts';
import type { FedSource } from '../../helpers/pipeline-world.ts';

export interface StoreWrite {
  readonly kind: 'save' | 'commit';
  readonly partition: number;
  /** The position committed with the ledger (commits only). */
  readonly offset?: bigint;
  readonly ledger: LedgerJson;
}

export class CommittingLedgerStore extends MemoryLedgerStore {
  /** Where a landed commit moves the group's position (a FedSource's commits); none: kept here only. */
  group: FedSource | undefined;
  /** Writes that landed, in order. */
  readonly landed: StoreWrite[] = [];
  /** Writes that were refused (with the reason), in order. */
  readonly refused: Array<{ kind: 'save' | 'commit'; offset?: bigint; error: Error }> = [];
  /** While false, a commit is refused before anything is sent (KafkaLedgerStore: the coordinator is not known). */
  coordinatorKnown = true;
  /** The next n commits fail as a transient (not fenced) error after nothing landed. */
  failCommits = 0;
  /** While set, writes wait for `releaseHeld()`. */
  holding = false;
  readonly #held: Array<() => void> = [];

  get heldCount(): number {
    return this.#held.length;
  }

  /** Lets every held write go, in the order they were sent. */
  releaseHeld(): void {
    for (const go of this.#held.splice(0)) go();
  }

  async #gate(): Promise<void> {
    if (!this.holding) return;
    await new Promise<void>((resolve) => this.#held.push(resolve));
  }

  override async save(topic: string, partition: number, ledger: LedgerJson, signal?: AbortSignal): Promise<void> {
    try {
      signal?.throwIfAborted();
      await this.#gate();
    } catch (error) {
      this.refused.push({ kind: 'save', error: error as Error });
      throw error;
    }
    await super.save(topic, partition, ledger);
    this.landed.push({ kind: 'save', partition, ledger });
  }

  async commit(position: CommitPosition, ledger: LedgerJson, signal: AbortSignal): Promise<boolean> {
    if (!this.coordinatorKnown) {
      this.refused.push({ kind: 'commit', offset: position.offset, error: new Error('the group coordinator is not known: the ledger alone') });
      await this.save(position.topic, position.partition, ledger, signal);
      return false;
    }
    try {
      signal.throwIfAborted();
      await this.#gate();
      if (this.failCommits > 0) {
        this.failCommits--;
        throw new InserterError('INSERTER_LEDGER_SAVE_FAILED', 'commit failed (simulated)', { retryable: true });
      }
    } catch (error) {
      this.refused.push({ kind: 'commit', offset: position.offset, error: error as Error });
      throw error;
    }
    await super.save(position.topic, position.partition, ledger);
    this.landed.push({ kind: 'commit', partition: position.partition, offset: position.offset, ledger });
    this.group?.commits.push(position);
    return true;
  }

  /** Offsets committed with the ledger, in order (for partition 0 unless told). */
  committedOffsets(partition = 0): bigint[] {
    return this.landed.filter((w) => w.kind === 'commit' && w.partition === partition).map((w) => w.offset as bigint);
  }
}
