// Owns the exactly-once state of one source partition: for every lane (route → table, destination)
// the batches whose insert was decided ("intents": offset range, row count, teams, token) and
// whether each is known to be in the warehouse. An intent is made durable *before* its insert, so
// after a crash the new owner re-forms exactly the same batch (same rows, same token) and the
// warehouse's token deduplication drops it if the first attempt had landed. docs/design/delivery.md
// explains the state machine; this file is its implementation.

export interface Intent {
  /** Lane identity: route name and destination id. */
  readonly route: string;
  readonly destination: string;
  readonly from: bigint;
  readonly to: bigint;
  readonly rows: number;
  /** Teams whose rows the batch holds; undefined for routes with one fixed destination. */
  readonly teams: readonly number[] | undefined;
  readonly token: string;
  /** The pipeline's parking epoch when the batch was decided; merges never cross a change. */
  readonly epoch?: number;
  done: boolean;
}

export interface LedgerJson {
  v: 1;
  /** Every record below this offset is resolved (the position this ledger was last pruned at). */
  resolvedBelow?: string;
  /** Offsets dead-lettered per route (not in any intent), kept until the position passes them. */
  dead?: Record<string, string[]>;
  intents: Array<{ route: string; destination: string; from: string; to: string; rows: number; teams?: number[]; token: string; epoch?: number; done: boolean }>;
}

export class Ledger {
  readonly #intents: Intent[] = [];
  readonly #dead = new Map<string, Set<bigint>>();
  readonly #deadPending = new Set<string>();
  #resolvedBelow = -1n;
  #dirty = false;

  static fromJson(json: LedgerJson | undefined): Ledger {
    const ledger = new Ledger();
    if (json?.resolvedBelow !== undefined) ledger.#resolvedBelow = BigInt(json.resolvedBelow);
    for (const [route, offsets] of Object.entries(json?.dead ?? {})) ledger.#dead.set(route, new Set(offsets.map((o) => BigInt(o))));
    for (const i of json?.intents ?? []) {
      ledger.#intents.push({ route: i.route, destination: i.destination, from: BigInt(i.from), to: BigInt(i.to), rows: i.rows, teams: i.teams, token: i.token, ...(i.epoch === undefined ? {} : { epoch: i.epoch }), done: i.done });
    }
    return ledger;
  }

  toJson(): LedgerJson {
    const dead: Record<string, string[]> = {};
    for (const [route, offsets] of this.#dead) if (offsets.size > 0) dead[route] = [...offsets].map(String);
    return {
      v: 1,
      ...(this.#resolvedBelow >= 0n ? { resolvedBelow: String(this.#resolvedBelow) } : {}),
      ...(Object.keys(dead).length > 0 ? { dead } : {}),
      intents: this.#intents.map((i) => ({ route: i.route, destination: i.destination, from: String(i.from), to: String(i.to), rows: i.rows, ...(i.teams ? { teams: [...i.teams] } : {}), token: i.token, ...(i.epoch === undefined ? {} : { epoch: i.epoch }), done: i.done })),
    };
  }

  get dirty(): boolean {
    return this.#dirty;
  }

  markClean(): void {
    this.#dirty = false;
  }

  /**
   * Records below this offset were resolved by an owner that committed past them. A later owner that
   * reads them again — the group's position went back, e.g. a commit sent before a rebalance landed
   * after the new owner's — skips them: their intents were pruned, so they could not be re-formed.
   */
  get resolvedBelow(): bigint {
    return this.#resolvedBelow;
  }

  get intents(): readonly Intent[] {
    return this.#intents;
  }

  add(intent: Intent): void {
    this.#intents.push(intent);
    this.#dirty = true;
  }

  /** A dead-letter write has started: in memory only (durable once the broker has it). */
  markDeadLettering(route: string, offset: bigint): void {
    this.#deadPending.add(`${route}\u0000${offset}`);
  }

  /** The write failed or was abandoned: the record is routed again when re-read. */
  unmarkDeadLettering(route: string, offset: bigint): void {
    this.#deadPending.delete(`${route}\u0000${offset}`);
  }

  markDeadLettered(route: string, offset: bigint): void {
    this.#deadPending.delete(`${route}\u0000${offset}`);
    let offsets = this.#dead.get(route);
    if (offsets === undefined) {
      offsets = new Set();
      this.#dead.set(route, offsets);
    }
    offsets.add(offset);
    this.#dirty = true;
  }

  /** Dead-lettered, or being dead-lettered right now (a re-read must not route it elsewhere). */
  isDeadLettered(route: string, offset: bigint): boolean {
    if (this.#deadPending.size > 0 && this.#deadPending.has(`${route}\u0000${offset}`)) return true;
    return this.#dead.size > 0 && this.#dead.get(route)?.has(offset) === true;
  }

  complete(intent: Intent): void {
    if (!intent.done) {
      intent.done = true;
      this.#dirty = true;
    }
  }

  /**
   * The intent that already decided the fate of this record, if any: same route, its offset inside
   * the intent's range, and its team among the intent's teams. Batches of one (route, team) never
   * overlap in offsets, because a lane holds a team's rows in offset order and a team's mapping
   * change is applied only after its open batches are flushed.
   */
  claim(route: string, offset: bigint, team: number | undefined): Intent | undefined {
    for (const intent of this.#intents) {
      if (intent.route !== route || offset < intent.from || offset > intent.to) continue;
      if (intent.teams === undefined || (team !== undefined && intent.teams.includes(team))) return intent;
    }
    return undefined;
  }

  /**
   * Forgets intents wholly below the committed position (those records are never re-read) and
   * merges each lane's consecutive done intents into one, so a ledger stays small while a parked
   * destination holds the committed position back. Merging is exact while a team's destination does
   * not change: a lane's batches hold its teams' rows in offset order with no gaps between them.
   */
  prune(committed: bigint): void {
    if (committed > this.#resolvedBelow) {
      this.#resolvedBelow = committed;
      this.#dirty = true;
    }
    for (const offsets of this.#dead.values()) {
      for (const offset of offsets) {
        if (offset < committed) {
          offsets.delete(offset);
          this.#dirty = true;
        }
      }
    }
    const before = this.#intents.length;
    for (let i = this.#intents.length - 1; i >= 0; i--) {
      const intent = this.#intents[i] as Intent;
      if (intent.done && intent.to < committed) this.#intents.splice(i, 1);
    }
    const lastDone = new Map<string, number>();
    for (let i = 0; i < this.#intents.length; i++) {
      const intent = this.#intents[i] as Intent;
      const lane = `${intent.route}\u0000${intent.destination}`;
      const previousIndex = lastDone.get(lane);
      if (!intent.done) {
        lastDone.delete(lane);
        continue;
      }
      const previous = previousIndex === undefined ? undefined : this.#intents[previousIndex];
      // Rows parked between two batches (a pause, a parked destination) are not in either of them:
      // batches decided in different parking epochs are never merged.
      if (previous !== undefined && previous.done && previous.epoch === intent.epoch && (previous.teams === undefined) === (intent.teams === undefined)) {
        const teams = previous.teams && intent.teams ? [...new Set([...previous.teams, ...intent.teams])].sort((a, b) => a - b) : undefined;
        this.#intents[previousIndex as number] = { ...previous, to: intent.to, rows: previous.rows + intent.rows, teams, token: '', done: true };
        this.#intents.splice(i, 1);
        i--;
        continue;
      }
      lastDone.set(lane, i);
    }
    if (this.#intents.length !== before) this.#dirty = true;
  }

  pending(): number {
    let n = 0;
    for (const i of this.#intents) if (!i.done) n++;
    return n;
  }
}

/** Durable home of partition ledgers (a compacted Kafka topic in production, memory in simulation). */
export interface LedgerStore {
  load(topic: string, partition: number, signal: AbortSignal): Promise<LedgerJson | undefined>;
  save(topic: string, partition: number, ledger: LedgerJson, signal: AbortSignal): Promise<void>;
  /** This process gave the partition up (optional: stores that fence owners release it here). */
  release?(topic: string, partition: number): Promise<void>;
  close(): Promise<void>;
}

export class MemoryLedgerStore implements LedgerStore {
  readonly #data = new Map<string, string>();
  async load(topic: string, partition: number): Promise<LedgerJson | undefined> {
    const text = this.#data.get(`${topic}/${partition}`);
    return text === undefined ? undefined : (JSON.parse(text) as LedgerJson);
  }
  async save(topic: string, partition: number, ledger: LedgerJson): Promise<void> {
    this.#data.set(`${topic}/${partition}`, JSON.stringify(ledger));
  }
  async close(): Promise<void> {}
}
