// The exactly-once ledger's durable home in the simulation: a MemoryLedgerStore that survives
// incarnations, reached through a per-incarnation client with latency (saves land in the order
// they were sent, like one idempotent producer) and optional faults. A save is serialised when it
// is sent, as a produced message would be. Like the Kafka store's transactional takeover, a load
// fences the partition's earlier writers: a save sent under an older load that has not landed when
// the newer load lands is refused (INSERTER_LEDGER_FENCED) and never applied. A commit writes the
// ledger and the partition's position together, under the same fence (docs/design/delivery.md §4).
import type { LedgerJson, LedgerStore, MemoryLedgerStore } from '../../src/ack/ledger.ts';
import { AbortedError, InserterError } from '../../src/errors/inserter-error.ts';
import type { PipelineStatus } from '../../src/pipeline/status.ts';
import type { CommitPosition } from '../../src/source/types.ts';
import type { Bus } from './bus.ts';
import type { Rng } from './rng.ts';
import type { Incarnation, World } from './runtime.ts';

export interface LedgerFaults {
  /** Probability that a save is slow (the producer retries inside). */
  readonly slow: number;
  /** Probability that a save fails with an error reaching the core. */
  readonly throws: number;
}

/** Per durable store and partition: how many loads (takeovers) have landed. */
const takeovers = new WeakMap<MemoryLedgerStore, Map<string, number>>();

function takeoversOf(store: MemoryLedgerStore): Map<string, number> {
  let map = takeovers.get(store);
  if (map === undefined) {
    map = new Map();
    takeovers.set(store, map);
  }
  return map;
}

export class SimLedgerStore implements LedgerStore {
  /** Each incarnation's client: the driver checks what a graceful close left uncommitted. */
  static readonly clients = new WeakMap<Incarnation, SimLedgerStore>();
  /** When a write of each partition last failed or stored the ledger without its position. */
  readonly #troubledAt = new Map<string, number>();
  /** The takeover each partition was loaded under by this client. */
  readonly #held = new Map<string, number>();
  readonly #world: World;
  readonly #inc: Incarnation;
  readonly #durable: MemoryLedgerStore;
  readonly #rng: Rng;
  readonly #faults: LedgerFaults;
  readonly #bus: Bus;
  /** Draws how long offset fetches miss a committed position (FEATURES.staleOffsetFetch); none: never. */
  readonly #staleFetch: Rng | undefined;
  #lastLanding = 0;
  saves = 0;

  /** Draws which commits store the ledger alone (FEATURES.positionFaults); none: never. */
  readonly #commitFaults: Rng | undefined;

  constructor(world: World, inc: Incarnation, durable: MemoryLedgerStore, bus: Bus, rng: Rng, faults: LedgerFaults, staleFetch: Rng | undefined, commitFaults?: Rng) {
    this.#commitFaults = commitFaults;
    this.#bus = bus;
    this.#staleFetch = staleFetch;
    this.#world = world;
    this.#inc = inc;
    this.#durable = durable;
    this.#rng = rng;
    this.#faults = faults;
    SimLedgerStore.clients.set(inc, this);
  }

  /** Whether a write of the partition failed, or stored the ledger without its position, since `time`. */
  troubledSince(topic: string, partition: number, time: number): boolean {
    return (this.#troubledAt.get(`${topic}/${partition}`) ?? Number.NEGATIVE_INFINITY) >= time;
  }

  load(topic: string, partition: number, signal: AbortSignal): Promise<LedgerJson | undefined> {
    return this.#world
      .remote(
        this.#inc,
        `ledger load ${topic}/${partition}`,
        { kind: 'kafka', sendMs: this.#rng.int(0, 4), replyMs: this.#rng.int(0, 2), signal, abortError: () => new AbortedError('ledger load aborted') },
        () => {
          const key = `${topic}/${partition}`;
          const epochs = takeoversOf(this.#durable);
          const epoch = (epochs.get(key) ?? 0) + 1;
          epochs.set(key, epoch);
          this.#held.set(key, epoch);
          return this.#durable.load(topic, partition);
        },
      )
      .then((p) => p);
  }

  save(topic: string, partition: number, ledger: LedgerJson, signal: AbortSignal): Promise<void> {
    return this.#write(topic, partition, ledger, signal, undefined);
  }

  /**
   * The ledger and the partition's position in one write (Kafka: one transaction), refused whole
   * once a newer load took the partition over. Offset fetches may miss the position for a few ms
   * after it lands (its transaction markers: Bus.fetchedPosition), where the scenario says so.
   */
  commit(position: CommitPosition, ledger: LedgerJson, signal: AbortSignal): Promise<boolean> {
    // Sometimes the position cannot be committed now (the group coordinator unknown or moved): the
    // ledger is saved alone, and the committer must commit the position again later.
    if (this.#commitFaults?.chance(0.1) === true) {
      this.#troubledAt.set(`${position.topic}/${position.partition}`, Date.now());
      return this.#write(position.topic, position.partition, ledger, signal, undefined).then(() => false);
    }
    return this.#write(position.topic, position.partition, ledger, signal, position).then(() => true);
  }

  #write(topic: string, partition: number, ledger: LedgerJson, signal: AbortSignal, position: CommitPosition | undefined): Promise<void> {
    const snapshot = JSON.stringify(ledger);
    const held = this.#held.get(`${topic}/${partition}`);
    const fail = this.#rng.chance(this.#faults.throws) ? 'before' : undefined;
    const slow = this.#rng.chance(this.#faults.slow);
    const now = Date.now();
    const landing = Math.max(now + (slow ? this.#rng.int(10, 150) : this.#rng.int(0, 3)), this.#lastLanding);
    this.#lastLanding = landing;
    this.saves++;
    const pending = ledger.intents.length;
    const detail =
      this.#world.trace === undefined
        ? ''
        : ` [${ledger.intents.map((i) => `${i.destination}:${i.token}/${i.rows}${i.parts ? ` parts=${JSON.stringify(i.parts.map(([a, b, st]) => `${a}-${b}:${st}`))}` : ''}`).join(' ')}] resolved=${JSON.stringify(ledger.resolved ?? {})}`;
    const written = this.#world.remote(
      this.#inc,
      `ledger ${position === undefined ? 'save' : `commit @${position.offset}`} ${topic}/${partition} intents=${ledger.intents.length} pending=${pending}${detail}`,
      {
        kind: 'kafka',
        sendMs: landing - now,
        replyMs: this.#rng.int(0, 2),
        fail,
        error: () => new InserterError('INSERTER_LEDGER_SAVE_FAILED', 'ledger save failed: simulated', { retryable: true }),
        signal,
        abortError: () => new AbortedError('ledger save aborted'),
      },
      () => {
        const key = `${topic}/${partition}`;
        if (takeoversOf(this.#durable).get(key) !== held) throw new InserterError('INSERTER_LEDGER_FENCED', 'ledger write fenced by a newer owner: simulated', { retryable: false });
        void this.#durable.save(topic, partition, JSON.parse(snapshot) as LedgerJson);
        if (position !== undefined) this.#bus.applyCommit(position, this.#inc.id, false, this.#staleFetch === undefined ? undefined : Date.now() + this.#staleFetch.int(0, 40));
      },
    );
    return written.catch((error: unknown) => {
      this.#troubledAt.set(`${topic}/${partition}`, Date.now());
      throw error;
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * After a graceful close: the partitions it left with a resolved position not committed, though no
 * write of theirs failed since the close began (every ledger write carries the position, but the
 * commit interval skips partitions written lately; the final commit must not).
 */
export function uncommittedAfterClose(inc: Incarnation, status: PipelineStatus, since: number): string[] {
  const store = SimLedgerStore.clients.get(inc);
  if (store === undefined) return [];
  return status.partitions
    .filter((p) => p.committable !== p.committed && !store.troubledSince(p.topic, p.partition, since))
    .map((p) => `${p.topic}/${p.partition} committed ${p.committed}, resolved below ${p.committable}`);
}
