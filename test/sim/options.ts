// The simulation's options, its scenario features (each once a delivery-core bug this simulation
// found, or still finds) and what one seed's run reports.
import type { Violation } from './check.ts';

export interface SimOptions {
  readonly seed: number;
  /** Keep a step-by-step trace (sim events and the pipeline's logs). */
  readonly trace?: boolean;
  /** Record intents before inserts (the exactly-once ledger); default true. */
  readonly exactlyOnce?: boolean;
  /** Tokens the warehouse remembers per table; 0 disables its deduplication. Default 1000. */
  readonly dedupWindow?: number;
  /** Override the number of kills before the final run. */
  readonly crashes?: number;
  /** Let dead-letter writes and ledger saves fail with an error (the real ones retry inside). */
  readonly throwingKafkaClients?: boolean;
  /**
   * Scenario features (FEATURES). Those that trigger an open bug (KNOWN_ISSUES) are off by default
   * so the seeded run stays green; enable them to reproduce the bug.
   */
  readonly known?: Partial<Record<Feature, boolean>>;
}

/** Scenario features that once triggered, or still trigger, a delivery-core bug found by this simulation. */
export const FEATURES = {
  revokeRace: 'rebalances: partitions revoked and re-assigned to the same process mid-run',
  commitReorder: 'commit intervals shorter than a chain of (sometimes slow) ledger saves',
  abortedDeadLetter: 'dead-letter writes that are slow and fail with AbortedError when destroy() aborts them',
  replayBackpressure: 'maxBufferedBytes that changes (and may shrink) across restarts',
  lateCommit: "commits in flight at a kill that land after the next incarnation's (a previous owner's late commit), moving the position back",
  lookups:
    'teams missing from the snapshot: rows held (parked past the held budget) until a slow, sometimes failing lookup answers; sometimes a team moves to another destination mid-run (a new snapshot)',
  splits: 'memory pressure in some lives: inserts above a few rows fail with MEMORY_LIMIT_EXCEEDED and are split (recorded before the sub-inserts)',
  pauses: 'operator pauses and resumes of a table, a team or a destination: lanes stop, rows park, resuming re-reads (rewinds with dead letters in flight)',
  reverts: 'schema changes reverted within 40 ms: rows valid only in between, an insert landing then and retried after the revert (alter.ts)',
  destinationBudgets: "a destination's own maxBufferedBytes a few rows large: a destination over it while failing is parked (open batches dropped, its rows re-read once it answers)",
  stalls:
    'a destination whose inserts sometimes stall (0.2–1.2 s on the wire, 8 % of inserts, stalledAfterMs 150 ms): stuck, it is parked while the shared budget is full (its bytes no longer hold the source back) and re-read once it answers',
  positionFaults:
    'commits whose position the ledger store cannot take now (the group coordinator unknown or moved): 10 % of them save the ledger alone, and the position must be committed by a later commit',
  slowCommits:
    'a third of the seeds commit every 0.2–2 s instead of every 3–60 ms (production: 5 s against inserts of ~0.1–1 s): the interval skips partitions whose batch intents carried a position lately, and a graceful close must still commit everything it resolved',
  replicaLag:
    "two replicas behind a destination's URL applying each schema change (and revert) 50 ms–2 s apart; every schema read and insert reaches one of them at random, and the table's version is read from both (src/sink/clickhouse/replica-versions.ts: review 2026-12-06c, finding B)",
  slowSchemaReads:
    "schema reads whose answer is slow (15 % of them, 20–300 ms after the server read the schema): it changed the schedules enough to show a bisected part whose ambiguous failure was not recorded before its delivery ended (seed 28, throwing); a fresh read must not join another lane's older read (review 2026-12-07b, finding 2: not caught here; see alterAfterRead)",
  lateQueryStarts:
    "inserts whose query starts at the server after the client sent it (ClickHouse takes its metadata snapshot then): 0–2 ms of headers on the wire, plus 3–60 ms for a quarter of them (a connection being opened, a proxy's or the server's queue); each is judged under the schema of when it starts, or of when it lands if sooner (at a kill). Another lane's schema read, and an ALTER, can come between an insert being sent and its start",
  shortSchemaRefresh:
    'half the seeds read schemas again every 1–20 ms instead of every 500 ms (schemaRefreshMs; in production an operator who wants DDL seen at once): reads of one table start all the time, by whichever lane needs it',
  clusterSchemaReads:
    'a third of the seeds read every schema through the cluster (destinations[].cluster: clusterAllReplicas waits for the slowest replica, then the views are read): each read is answered 3–30 ms after its snapshot, so reads are in flight while inserts of the same table start',
  alterAfterRead:
    "in half the seeds, a change that lands right after a schema read took its snapshot, while that read is still unanswered and an insert in doubt (retrying a token that landed) is on its way, not started; it refuses one or two of that insert's rows (alter.ts). The read straddling the change answers with the schema from before it; the fresh read after the refusal must start after the refusal (review 2026-12-07b, finding 2: joining reads regardless of TableSchemas' generations is caught at seed 273 of 1–1,500)",
  staleOffsetFetch:
    "offset fetches (assignment, rewind) that miss a position committed in a ledger transaction for up to 40 ms (its markers are still being written): reading starts below the ledger's resolvedBelow",
  sparseOffsets:
    "offsets that increase with gaps (Pulsar's packed message ids; Kafka's transaction markers and compaction): each partition starts at 0, a little way in or just under 2^50, and each next offset is 1 further (75 %), 2–5 (17 %), 1,000–99,999 (6 %) or 1–5 million (a ledger roll-over); committed positions fall in gaps and past the last record (offsets.ts)",
} as const;
export type Feature = keyof typeof FEATURES;

/** Open bugs (reported, not fixed in src/ yet) and the feature that triggers each: none today. */
export const KNOWN_ISSUES = {} as const satisfies Partial<Record<Feature, string>>;
export type KnownIssue = keyof typeof KNOWN_ISSUES;

/** Features on by default: those whose bugs are fixed. */
export const DEFAULT_FEATURES: Readonly<Record<Feature, boolean>> = {
  revokeRace: true,
  commitReorder: true,
  abortedDeadLetter: true,
  replayBackpressure: true,
  lateCommit: true,
  lookups: true,
  splits: true,
  pauses: true,
  reverts: true,
  destinationBudgets: true,
  staleOffsetFetch: true,
  positionFaults: true,
  stalls: true,
  slowCommits: true,
  replicaLag: true,
  slowSchemaReads: true,
  lateQueryStarts: true,
  shortSchemaRefresh: true,
  clusterSchemaReads: true,
  alterAfterRead: true,
  sparseOffsets: true,
};

export interface SimStats {
  records: number;
  partitions: number;
  destinations: number;
  lives: number;
  kills: number;
  steps: number;
  virtualMs: number;
  inserts: number;
  dedupHits: number;
  rejected: number;
  zombies: number;
  lateCommits: number;
  rows: number;
  deadLetters: number;
  repeatedDeadLetters: number;
  commits: number;
  rebalances: boolean;
  pipelineErrors: Record<string, number>;
}

export interface SimResult {
  readonly seed: number;
  readonly violations: readonly Violation[];
  readonly stats: SimStats;
  readonly scenario: string;
  readonly trace: readonly string[];
}
