// Deterministic simulation of the delivery core. For one seed: generate a topic's records over a few
// partitions and teams (teams map onto 2–3 destinations; some records are undecodable, have an
// unknown team or are rejected by the warehouse), run a real `Pipeline` over the in-memory bus,
// warehouse, dead-letter topic and ledger store, kill it at a seeded step (kill -9: in-memory state
// is lost, in-flight requests land, are lost, or land later), start a new one on the same durable
// state, repeat, and finally run to completion with a graceful close() and check the invariants.
//
// Time is virtual: node:test mock timers drive setTimeout, setInterval, Date and (through
// syncBuiltinESMExports) the `node:timers/promises` setTimeout used for retry backoff; Math.random
// (the backoff jitter) is replaced by a seeded stream while a seed runs. Between 1 ms ticks every
// promise chain runs to quiescence (a real setImmediate), so a seed always replays identically.
import { MemoryLedgerStore } from '../../src/ack/ledger.ts';
import { defaultTableDdl } from '../../src/sink/clickhouse/ddl.ts';
import { Bus } from './bus.ts';
import { Checker, type ExpectedRecord } from './check.ts';
import { DeadLetters } from './dead-letters.ts';
import { uncommittedAfterClose } from './ledger-store.ts';
import { schemaFaultsFor } from './decoder.ts';
import { schemaChangesFor } from './alter.ts';
import { describeOffsets, sparseLayout } from './offsets.ts';
import { Rng } from './rng.ts';
import { clock, World } from './runtime.ts';
import { columnsOfDdl, simColumns, Warehouse } from './warehouse.ts';
import { DEFAULT_FEATURES, type Feature, type SimOptions, type SimResult, type SimStats } from './options.ts';
import { describeScenario, fatesOf, generateRecords, makeScenario, START, TOPIC, withMove, type Scenario } from './scenario.ts';
import { startPipeline, stopping } from './incarnation.ts';

export { DEFAULT_FEATURES, FEATURES, KNOWN_ISSUES, type Feature, type KnownIssue, type SimOptions, type SimResult, type SimStats } from './options.ts';

const LIFE_BUDGET_MS = 30_000;
/**
 * The final incarnation's time to drain: a range in doubt under schema changes retries within its
 * class's bounds before it is dead-lettered, which can take most of 30 virtual seconds (seed 770).
 */
const FINAL_BUDGET_MS = 60_000;
const CLOSE_BUDGET_MS = 40_000;

async function runUntil(done: () => boolean, budgetMs: number): Promise<boolean> {
  const until = Date.now() + budgetMs;
  for (;;) {
    await clock.settle();
    if (done()) return true;
    if (Date.now() >= until) return false;
    clock.tick(1);
  }
}

export async function simulate(options: SimOptions): Promise<SimResult> {
  const seed = options.seed;
  const features = { ...DEFAULT_FEATURES, ...options.known } as Record<Feature, boolean>;
  const exactlyOnce = options.exactlyOnce ?? true;
  const root = new Rng(seed);
  // Destination budgets from a stream of their own, so the other draws of a seed stay as they were.
  const budgets = ({ ...DEFAULT_FEATURES, ...options.known } as Record<Feature, boolean>).destinationBudgets ? new Rng(seed ^ 0xb0d6e7) : undefined;
  const scenarioDrawn = makeScenario(root.fork(), options);
  const budgeted: Scenario =
    budgets === undefined ? scenarioDrawn : { ...scenarioDrawn, destinationBudgets: scenarioDrawn.destinations.map(() => (budgets.chance(0.3) ? budgets.int(200, 3_000) : undefined)) };
  // A stalling destination in a quarter of the seeds, from a stream of its own as well.
  const stalls = ({ ...DEFAULT_FEATURES, ...options.known } as Record<Feature, boolean>).stalls ? new Rng(seed ^ 0x57a115) : undefined;
  const stalling = stalls?.chance(0.25) === true ? budgeted.destinations[stalls.int(0, budgeted.destinations.length - 1)] : undefined;
  const drawn: Scenario = stalling === undefined ? budgeted : { ...budgeted, stalling: { destination: stalling, seed } };
  const { records: generated, poison: drawnPoison, unlisted: drawnUnlisted, refused } = generateRecords(root.fork(), seed, drawn);
  // Schema changes, from a stream of their own. A range in doubt refused without naming a row is held
  // within its class's limits, then dead-lettered whole, marked may-have-landed (§11): in such seeds
  // the retrying classes are bounded (a few virtual seconds), and a marked dead letter resolves any
  // good row (it is in the table exactly when the first attempt landed).
  const goodUuids = generated.flatMap((g) => (g.kind === 'good' && g.uuid !== undefined ? [g.uuid] : []));
  const reverts = ({ ...DEFAULT_FEATURES, ...options.known } as Record<Feature, boolean>).reverts;
  const changes = schemaChangesFor(seed, goodUuids, START, (generated.at(-1)?.appendAt ?? START) - START, reverts, features.alterAfterRead);
  // Where there are schema changes, half the seeds have a second replica applying them 50 ms–2 s later
  // (FEATURES.replicaLag), from a stream of its own.
  const lagging = ({ ...DEFAULT_FEATURES, ...options.known } as Record<Feature, boolean>).replicaLag && changes !== undefined ? new Rng(seed ^ 0x7e91a6) : undefined;
  const replicaLagMs = lagging?.chance(0.5) === true ? lagging.int(50, 2_000) : 0;
  const slowSchemaReads = ({ ...DEFAULT_FEATURES, ...options.known } as Record<Feature, boolean>).slowSchemaReads;
  const poison = drawnPoison;
  const unlisted = drawnUnlisted;
  const worldRng = root.fork();
  const mathRng = root.fork();
  const driverRng = root.fork();
  // Drawn from a fork of its own, so the older features' schedules (and their regression seeds) stay as they were.
  const moved = withMove(drawn, root.fork());
  // From a stream of its own; a third of the seeds commit as rarely as production does, relative to their inserts.
  const commitRng = new Rng(seed ^ 0xc0111);
  const slowCommits = ({ ...DEFAULT_FEATURES, ...options.known } as Record<Feature, boolean>).slowCommits && commitRng.chance(1 / 3);
  const committing = slowCommits ? { ...moved, lives: moved.lives.map((life) => ({ ...life, commitIntervalMs: commitRng.int(200, 2_000) })) } : moved;
  // From a stream of its own; half the seeds read schemas again every 1–20 ms (FEATURES.shortSchemaRefresh).
  const refreshRng = new Rng(seed ^ 0x5c4e3a);
  const shortRefresh = features.shortSchemaRefresh && refreshRng.chance(0.5);
  // From a stream of its own; a third of the seeds read schemas through the cluster (FEATURES.clusterSchemaReads).
  const clusterSchemaReads = features.clusterSchemaReads && new Rng(seed ^ 0xc1a57e).chance(1 / 3);
  const scenario: Scenario = shortRefresh ? { ...committing, schemaRefreshMs: refreshRng.int(1, 20) } : committing;
  const world = new World(worldRng, options.trace === true);
  world.lateCommits = ({ ...DEFAULT_FEATURES, ...options.known } as Record<Feature, boolean>).lateCommit;
  // From a stream of its own; half the seeds have offset fetches that miss fresh transactional positions.
  const staleRng = new Rng(seed ^ 0x5a1e0f);
  const staleFetch = ({ ...DEFAULT_FEATURES, ...options.known } as Record<Feature, boolean>).staleOffsetFetch && staleRng.chance(0.5) ? staleRng : undefined;
  // From a stream of its own; half the seeds have commits whose position is not stored (ledger alone).
  const positionRng = new Rng(seed ^ 0x9051);
  const positionFaults = ({ ...DEFAULT_FEATURES, ...options.known } as Record<Feature, boolean>).positionFaults && positionRng.chance(0.5) ? positionRng : undefined;

  // From a stream of its own; offsets with gaps, each partition from its own base (FEATURES.sparseOffsets).
  const offsetsRng = features.sparseOffsets ? new Rng(seed ^ 0x0ff5e7) : undefined;
  const bus = new Bus();
  for (let p = 0; p < scenario.partitions; p++) bus.addPartition(TOPIC, p, offsetsRng === undefined ? undefined : sparseLayout(offsetsRng.fork()));
  const expected: Array<{ -readonly [K in keyof ExpectedRecord]: ExpectedRecord[K] }> = [];
  for (const g of generated) {
    const r = bus.append(TOPIC, g.partition, { timestamp: BigInt(g.appendAt), key: g.key, value: g.value, appendAt: g.appendAt });
    expected.push({
      topic: TOPIC,
      partition: g.partition,
      offset: r.offset,
      uuid: g.uuid,
      fates: fatesOf(g, scenario, changes),
      describe: `${TOPIC}/${g.partition}@${r.offset} ${g.kind}${g.uuid ? ` ${g.uuid}` : ''}${g.team !== undefined ? ` team ${g.team}` : ''}`,
    });
  }
  const warehouse = new Warehouse({ dedupWindow: options.dedupWindow ?? 1000, poison, poisonHint: scenario.poisonHint, unlisted, changes, replicaLagMs });
  for (const d of scenario.destinations) {
    for (const r of scenario.routes) if (!scenario.missingTables.has(`${d}\u0000${r.table}`)) warehouse.createTable(d, { database: 'sim', table: r.table }, simColumns);
  }
  const deadLetters = new DeadLetters();
  const ledgers = new MemoryLedgerStore();
  // With the ledger, positions move only in the owner's fenced ledger write: never backwards, late or not.
  const checker = new Checker(expected, bus, warehouse, deadLetters, changes !== undefined, exactlyOnce);
  const stats: SimStats = {
    records: generated.length,
    partitions: scenario.partitions,
    destinations: scenario.destinations.length,
    lives: 0,
    kills: 0,
    steps: 0,
    virtualMs: 0,
    inserts: 0,
    dedupHits: 0,
    rejected: 0,
    zombies: 0,
    lateCommits: 0,
    rows: 0,
    deadLetters: 0,
    repeatedDeadLetters: 0,
    commits: 0,
    rebalances: scenario.sourceFaults.rebalance > 0,
    pipelineErrors: {},
  };
  // Steps per record in a run without kills is about 6; crash points spread over the whole run.
  const stepBudget = Math.max(10, generated.length * 7);

  const originalRandom = Math.random;
  clock.install(START);
  Math.random = () => mathRng.float();
  try {
    for (const life of scenario.lives) {
      const inc = world.newIncarnation();
      stats.lives++;
      world.note(`START incarnation ${inc.id}: ${life.end} maxRows=${life.maxRows} maxAgeMs=${life.maxAgeMs} commitIntervalMs=${life.commitIntervalMs}`);
      const pipeline = startPipeline(
        world,
        inc,
        scenario,
        life,
        exactlyOnce,
        {
          bus,
          warehouse,
          deadLetters,
          ledgers,
          refused,
          changes,
          seed,
          schemaFaults: schemaFaultsFor(seed),
          staleFetch,
          positionFaults,
          slowSchemaReads,
          lateQueryStarts: features.lateQueryStarts,
          clusterSchemaReads,
        },
        driverRng,
        checker,
        stats,
      );
      const lifeStart = Date.now();
      const endAt = world.steps + driverRng.int(1, stepBudget);
      if (life.end === 'kill') {
        world.crashAtStep = endAt;
        const ended = await runUntil(() => !inc.alive || bus.drained(Date.now()) || Date.now() - lifeStart > LIFE_BUDGET_MS, Number.POSITIVE_INFINITY);
        world.crashAtStep = undefined;
        if (ended && inc.alive) world.kill(inc);
        stats.kills++;
      } else if (life.end === 'destroy' || life.end === 'close') {
        await runUntil(() => world.steps >= endAt || bus.drained(Date.now()) || Date.now() - lifeStart > LIFE_BUDGET_MS, Number.POSITIVE_INFINITY);
        world.note(`${life.end.toUpperCase()} incarnation ${inc.id}`);
        stopping.add(inc);
        const closing = Date.now();
        let closed = false;
        (life.end === 'destroy' ? pipeline.destroy() : pipeline.close()).then(
          () => (closed = true),
          (error: unknown) => checker.add('crashed', `${life.end}() rejected: ${String(error)}`),
        );
        if (!(await runUntil(() => closed, CLOSE_BUDGET_MS)))
          checker.add('stuck', `${life.end}() of incarnation ${inc.id} did not finish within ${CLOSE_BUDGET_MS} ms: ${JSON.stringify(pipeline.status())}`);
        else if (life.end === 'close') for (const left of uncommittedAfterClose(inc, pipeline.status(), closing)) checker.add('anomaly', `close() of incarnation ${inc.id} left ${left}`);
        // The process exits: Kafka requests it aborted land or are lost before anyone else owns its
        // partitions (as at a kill); an insert the server has may still land later.
        world.kill(inc);
      } else {
        const drained = await runUntil(() => bus.drained(Date.now()), FINAL_BUDGET_MS);
        if (!drained) {
          const committed = bus.partitions().map((p) => `${p.partition}:${bus.committedPosition(p.topic, p.partition)}/${bus.endPosition(p.topic, p.partition)}`);
          checker.add('stuck', `final incarnation did not commit to the log end within ${FINAL_BUDGET_MS} ms; committed ${committed.join(' ')}; status ${JSON.stringify(pipeline.status())}`);
        }
        world.note(`CLOSE final incarnation ${inc.id}`);
        stopping.add(inc);
        let closed = false;
        pipeline.close().then(
          () => (closed = true),
          (error: unknown) => checker.add('crashed', `close() rejected: ${String(error)}`),
        );
        if (!(await runUntil(() => closed, CLOSE_BUDGET_MS))) checker.add('stuck', `final close() did not finish within ${CLOSE_BUDGET_MS} ms`);
        // Everything resolved and closed: every byte reserved in the memory budget was released once
        // (a leak would stall the source, a double release would let it read past the budget).
        // The bodies expected for queued batches too (MemoryBudget.pending): a leaked one stalls the source.
        const status = pipeline.status();
        const unbalanced = Object.entries(status.bufferedBytesByDestination).filter(([, bytes]) => bytes !== 0);
        const pendingBodies = status.pendingBodyBytes ?? 0;
        if (pendingBodies !== 0) unbalanced.push(['pending bodies', pendingBodies]);
        if (drained && closed && unbalanced.length > 0) checker.add('anomaly', `memory budget not back to 0 after the final close: ${JSON.stringify(Object.fromEntries(unbalanced))}`);
        inc.alive = false;
      }
      if (life.gapMs > 0) clock.tick(life.gapMs);
    }
    // Requests still travelling (zombie inserts) land before the books are closed.
    if (!(await runUntil(() => world.pending.size === 0, 10_000))) checker.add('stuck', `${world.pending.size} requests never landed`);
    // A change that waited for its moment (FEATURES.alterAfterRead) chose its victims then: their fates anew.
    if (changes !== undefined) generated.forEach((g, i) => expected[i] !== undefined && (expected[i].fates = fatesOf(g, scenario, changes)));
    const final = checker.final();
    stats.rows = final.rows;
    stats.deadLetters = final.deadLetters;
    stats.repeatedDeadLetters = final.repeatedDeadLetters;
  } finally {
    stats.virtualMs = Date.now() - START;
    Math.random = originalRandom;
    clock.uninstall();
  }
  stats.steps = world.steps;
  stats.inserts = warehouse.inserts;
  stats.dedupHits = warehouse.dedupHits;
  stats.rejected = warehouse.rejected;
  stats.zombies = world.zombies;
  stats.lateCommits = world.lateCommitCount;
  stats.commits = bus.commits.length;
  return {
    seed,
    violations: checker.violations,
    stats,
    scenario: `${describeScenario(scenario, generated.length, poison.size + unlisted.size + refused.size)}${changes === undefined ? '' : `\nschema changes: ${changes.describe(START)}${replicaLagMs > 0 ? `; a second replica applies them ${replicaLagMs} ms later` : ''}`}${scenario.schemaRefreshMs === undefined ? '' : `\nschemaRefreshMs=${scenario.schemaRefreshMs}`}${clusterSchemaReads ? '\nschema reads through the cluster (3–30 ms)' : ''}${offsetsRng === undefined ? '' : `\noffsets: ${describeOffsets(bus.partitions().map((p) => ({ partition: p.partition, log: bus.log(p.topic, p.partition) })))}`}`,
    trace: world.trace ?? [],
  };
}

/** The default table's columns, for tests of the warehouse stand-in. */
export const defaultColumns = (): ReturnType<typeof columnsOfDdl> => columnsOfDdl(defaultTableDdl);
