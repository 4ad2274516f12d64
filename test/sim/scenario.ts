// One seed's scenario: partitions, destinations, routes and teams, the lives of its incarnations
// (how each ends, its batch and commit settings, its pauses), the faults of every fake, the records
// generated with what must become of each, and the configuration each incarnation runs with.
import { buildConfig, type Config } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import type { PauseScope } from '../../src/control/scope.ts';
import { type SourceFaults } from './bus.ts';
import { type LookupFaults } from './destinations-api.ts';
import { type Fate } from './check.ts';
import { type DeadLetterFaults } from './dead-letters.ts';
import { type LedgerFaults } from './ledger-store.ts';
import { type SchemaChanges } from './alter.ts';
import type { Rng } from './rng.ts';
import { type WarehouseFaults } from './warehouse.ts';
import { DEFAULT_FEATURES, type Feature, type SimOptions } from './options.ts';

export const TOPIC = 'events';
export const START = Date.UTC(2026, 0, 1);
/** stalledAfterMs of the destinations in seeds with a stalling destination. */
export const STALLED_AFTER_MS = 150;

export interface RouteSpec {
  readonly name: string;
  readonly table: string;
  readonly destination: string;
}

export interface Scenario {
  readonly partitions: number;
  readonly destinations: readonly string[];
  readonly teamMap: Readonly<Record<string, string>>;
  readonly unknown: { action: 'deadLetter' } | { action: 'destination'; destination: string };
  readonly routes: readonly RouteSpec[];
  readonly concurrency: readonly number[];
  readonly missingTables: ReadonlySet<string>;
  /** Per destination (same order), its own maxBufferedBytes when the seed gives it one (feature destinationBudgets). */
  readonly destinationBudgets?: ReadonlyArray<number | undefined>;
  /** A destination whose inserts sometimes stall for 0.2–1.2 s, and the seed of its stalls (feature stalls). */
  readonly stalling?: { readonly destination: string; readonly seed: number };
  /** How often a table's schema is read again (feature shortSchemaRefresh); else every 500 ms. */
  readonly schemaRefreshMs?: number;
  readonly poisonHint: boolean;
  readonly lives: ReadonlyArray<{
    end: 'kill' | 'destroy' | 'close' | 'final';
    maxRows: number;
    maxAgeMs: number;
    commitIntervalMs: number;
    capMs: number;
    maxAttempts: number | undefined;
    pauseMs: number;
    maxBufferedBytes: number;
    gapMs: number;
    /** For this long after the life starts, inserts above warehouseFaults.splitAboveRows rows fail for memory. */
    pressureMs: number;
    /** Virtual times (ms after the life starts) of pause → resume pairs, and what each pauses. */
    pauses: ReadonlyArray<{ at: number; forMs: number; scope: PauseScope }>;
  }>;
  readonly lookups: LookupFaults | undefined;
  readonly warehouseFaults: WarehouseFaults;
  readonly sourceFaults: SourceFaults;
  readonly deadLetterFaults: DeadLetterFaults;
  readonly ledgerFaults: LedgerFaults;
}

export function makeScenario(rng: Rng, options: SimOptions): Scenario {
  const destinations = Array.from({ length: rng.int(2, 3) }, (_, i) => `d${i}`);
  const teamMap: Record<string, string> = {};
  const teamCount = rng.int(3, 6);
  for (let t = 1; t <= teamCount; t++) teamMap[String(t)] = destinations[(t - 1) % destinations.length] as string;
  const routes: RouteSpec[] = [{ name: 'events', table: 'events', destination: 'team' }];
  if (rng.chance(0.3)) routes.push({ name: 'copy', table: 'events_copy', destination: rng.pick(destinations) });
  const missingTables = new Set<string>();
  for (const d of destinations) for (const r of routes) if (rng.chance(0.15)) missingTables.add(`${d}\u0000${r.table}`);
  const level = rng.pick([0, 1, 1, 2]);
  const p = (low: number, high: number): number => (level === 0 ? 0 : level === 1 ? low : high);
  const known: Record<Feature, boolean> = { ...DEFAULT_FEATURES, ...options.known };
  const crashes = options.crashes ?? rng.int(0, 4);
  const lives: Array<Scenario['lives'][number]> = [];
  const buffer = rng.chance(0.2) ? rng.int(100, 600) : 1 << 20;
  for (let i = 0; i <= crashes; i++) {
    const roll = rng.float();
    const lifeBuffer = rng.chance(0.2) ? rng.int(100, 600) : 1 << 20;
    lives.push({
      end: i === crashes ? 'final' : roll < (known.abortedDeadLetter === true ? 0.5 : 0.8) ? 'kill' : roll < 0.9 ? 'destroy' : 'close',
      maxRows: rng.pick([1, 2, 3, 5, 8, 13, 20, 50]),
      maxAgeMs: rng.int(2, 40),
      commitIntervalMs: known.commitReorder === true ? rng.int(3, 60) : rng.int(30, 80),
      capMs: rng.int(2, 25),
      maxAttempts: rng.chance(0.3) ? rng.int(1, 4) : undefined,
      pauseMs: rng.int(2, 50),
      maxBufferedBytes: known.replayBackpressure === true ? lifeBuffer : buffer,
      gapMs: rng.chance(0.5) ? 0 : rng.int(1, 400),
      pressureMs: known.splits === true && rng.chance(0.5) ? rng.int(50, 1500) : 0,
      pauses:
        known.pauses === true && rng.chance(0.4)
          ? Array.from({ length: rng.int(1, 3) }, () => ({ at: rng.int(0, 600), forMs: rng.int(1, 200), scope: pauseScope(rng, destinations, routes, teamCount) }))
          : [],
    });
  }
  const teamIds = Object.keys(teamMap).map(Number);
  const lookups: LookupFaults | undefined =
    known.lookups === true && rng.chance(0.6) ? { known: new Set(teamIds.filter(() => rng.chance(0.5))), fail: rng.pick([0, 0.2, 0.5]), slowMs: rng.pick([2, 30, 150]) } : undefined;
  const throwing = options.throwingKafkaClients === true;
  return {
    partitions: rng.int(1, 3),
    destinations,
    teamMap,
    unknown: rng.chance(0.7) ? { action: 'deadLetter' } : { action: 'destination', destination: rng.pick(destinations) },
    routes,
    concurrency: destinations.map(() => rng.int(1, 3)),
    missingTables,
    poisonHint: rng.chance(0.7),
    lives,
    warehouseFaults: { insertFailBefore: p(0.05, 0.2), insertFailAfter: p(0.05, 0.2), slow: p(0.05, 0.15), describeFail: p(0.05, 0.2), splitAboveRows: known.splits === true ? rng.int(1, 6) : 0 },
    lookups,
    sourceFaults: {
      commitFailBefore: p(0.05, 0.2),
      commitFailAfter: p(0.05, 0.2),
      rebalance: known.revokeRace === true && rng.chance(0.5) ? rng.pick([0.01, 0.03, 0.06]) : 0,
      maxRebalances: rng.int(1, 3),
      maxFetch: rng.int(1, 10),
    },
    deadLetterFaults: { slow: known.abortedDeadLetter === true ? 0.5 : p(0.05, 0.2), throws: throwing ? p(0.05, 0.2) : 0, abortable: known.abortedDeadLetter === true },
    ledgerFaults: { slow: known.commitReorder === true || known.revokeRace === true ? p(0.05, 0.2) : 0, throws: throwing ? p(0.05, 0.2) : 0 },
  };
}

export interface GeneratedRecord {
  readonly partition: number;
  readonly value: Buffer | undefined;
  readonly key: Buffer | undefined;
  readonly appendAt: number;
  readonly uuid: string | undefined;
  readonly kind: 'good' | 'poison' | 'undecodable' | 'bad_team' | 'unknown_team' | 'no_team';
  readonly team: number | undefined;
}

export function generateRecords(rng: Rng, seed: number, scenario: Scenario): { records: GeneratedRecord[]; poison: Set<string>; unlisted: Set<string>; refused: Set<string> } {
  const count = rng.int(20, 160);
  const spanMs = rng.int(0, 1500);
  const teams = Object.keys(scenario.teamMap).map(Number);
  const poison = new Set<string>();
  // Every other poison row is rejected with a code no class lists (chosen without drawing from the
  // RNG, so a seed's stream, and the regression seeds, stay as they were).
  const unlisted = new Set<string>();
  // Of the others, every other one is refused by the row encoder before any insert (a typed encoder
  // meeting a value the warehouse would reject): it never reaches the warehouse.
  const refused = new Set<string>();
  let rejectedByWarehouse = 0;
  const records: GeneratedRecord[] = [];
  for (let i = 0; i < count; i++) {
    const partition = rng.int(0, scenario.partitions - 1);
    const appendAt = START + Math.floor((spanMs * i) / count);
    const uuid = `u${seed}-${i}`;
    const roll = rng.float();
    const team = rng.pick(teams);
    let record: GeneratedRecord;
    if (roll < 0.04) {
      const value = rng.pick(['not json', '[1,2,3]', '', `{"uuid":"${uuid}","team_id":`, `{"uuid":"${uuid}","team_id":"abc"}`]);
      // A team id that is not an integer is undecodable only where the route routes by team; a
      // route with a fixed destination inserts the row (drop-in semantics).
      const badTeam = value.includes('"team_id":"abc"');
      record = { partition, value: Buffer.from(value), key: undefined, appendAt, uuid: badTeam ? uuid : undefined, kind: badTeam ? 'bad_team' : 'undecodable', team: undefined };
    } else if (roll < 0.08) {
      if ((poison.size + unlisted.size + refused.size) % 2 === 1) unlisted.add(uuid);
      else if (rejectedByWarehouse++ % 2 === 0) poison.add(uuid);
      else refused.add(uuid);
      record = { partition, value: Buffer.from(JSON.stringify({ uuid, team_id: team, n: i })), key: undefined, appendAt, uuid, kind: 'poison', team };
    } else if (roll < 0.11) {
      record = { partition, value: Buffer.from(JSON.stringify({ uuid, team_id: 900 + rng.int(0, 2), n: i })), key: undefined, appendAt, uuid, kind: 'unknown_team', team: undefined };
    } else if (roll < 0.13) {
      record = { partition, value: Buffer.from(JSON.stringify({ uuid, n: i })), key: undefined, appendAt, uuid, kind: 'no_team', team: undefined };
    } else {
      record = { partition, value: Buffer.from(JSON.stringify({ uuid, team_id: team, n: i })), key: Buffer.from(String(team)), appendAt, uuid, kind: 'good', team };
    }
    records.push(record);
  }
  return { records, poison, unlisted, refused };
}

/** With lookups on, sometimes one team's destination changes mid-run: its rows may land in either, once. */
export function withMove(scenario: Scenario, rng: Rng): Scenario {
  const lookups = scenario.lookups;
  if (lookups === undefined || !rng.chance(0.4)) return scenario;
  const team = rng.pick(Object.keys(scenario.teamMap).map(Number));
  const from = scenario.teamMap[String(team)];
  const others = scenario.destinations.filter((d) => d !== from);
  if (others.length === 0) return scenario;
  return { ...scenario, lookups: { ...lookups, move: { team, to: rng.pick(others), at: START + rng.int(20, 1500) } } };
}

export function pauseScope(rng: Rng, destinations: readonly string[], routes: readonly RouteSpec[], teams: number): PauseScope {
  const roll = rng.float();
  if (roll < 0.4) return { kind: 'table', table: rng.pick(routes).table };
  if (roll < 0.7) return { kind: 'team', team: rng.int(1, teams) };
  return { kind: 'destination', destination: rng.pick(destinations) };
}

export function fatesOf(record: GeneratedRecord, scenario: Scenario, changes: SchemaChanges | undefined): Map<string, Fate> {
  const fates = rowFatesOf(record, scenario);
  if (changes === undefined || record.uuid === undefined || !changes.isVictim(record.uuid)) return fates;
  for (const [route, fate] of fates) if (fate.kind === 'row') fates.set(route, { ...fate, orDead: true });
  return fates;
}

export function rowFatesOf(record: GeneratedRecord, scenario: Scenario): Map<string, Fate> {
  const fates = new Map<string, Fate>();
  for (const route of scenario.routes) {
    let fate: Fate;
    if (record.kind === 'undecodable' || record.kind === 'poison') fate = { kind: 'dead' };
    else if (route.destination !== 'team') fate = { kind: 'row', destination: route.destination, table: `sim.${route.table}` };
    else if (record.kind === 'no_team' || record.kind === 'bad_team') fate = { kind: 'dead' };
    else if (record.kind === 'unknown_team')
      fate = scenario.unknown.action === 'deadLetter' ? { kind: 'dead' } : { kind: 'row', destination: scenario.unknown.destination, table: `sim.${route.table}` };
    else {
      const move = scenario.lookups?.move;
      const destination = scenario.teamMap[String(record.team)] as string;
      fate = { kind: 'row', destination, ...(move !== undefined && move.team === record.team ? { alternatives: [move.to] } : {}), table: `sim.${route.table}` };
    }
    fates.set(route.name, fate);
  }
  return fates;
}

export function configFor(scenario: Scenario, life: Scenario['lives'][number], exactlyOnce: boolean, bounded = false): Config {
  const elapsed = bounded ? 2_000 : 3_600_000;
  const retrying = { baseMs: 1, factor: 2, capMs: life.capMs, pauseMs: life.pauseMs, ...(life.maxAttempts === undefined ? { maxElapsedMs: elapsed } : { maxAttempts: life.maxAttempts }) };
  const raw: ConfigInput = {
    kafka: { brokers: ['sim:9092'], groupId: 'sim' },
    destinations: scenario.destinations.map((id, i) => {
      const budget = scenario.destinationBudgets?.[i];
      return {
        id,
        url: `http://${id}.sim:8123`,
        database: 'sim',
        concurrency: scenario.concurrency[i] ?? 1,
        ...(budget === undefined ? {} : { maxBufferedBytes: budget }),
        // A request on the wire longer than this makes the destination stuck (a slow reply can too).
        ...(scenario.stalling === undefined ? {} : { stalledAfterMs: STALLED_AFTER_MS }),
      };
    }),
    teams: { map: { ...scenario.teamMap }, unknown: scenario.unknown },
    routes: scenario.routes.map((r) => ({ name: r.name, topic: TOPIC, table: r.table, destination: r.destination })),
    batch: { maxRows: life.maxRows, maxBytes: 1 << 20, maxAgeMs: life.maxAgeMs },
    maxBufferedBytes: life.maxBufferedBytes,
    commitIntervalMs: life.commitIntervalMs,
    exactlyOnce: { enabled: exactlyOnce },
    retry: { baseMs: 1, factor: 2, capMs: life.capMs },
    // Tiny backoffs for the classes the stand-ins raise; with an attempt limit the built-in
    // fallback (pause the destination, probe every pauseMs) runs too.
    errorPolicy: {
      defaults: { transient_network: retrying, unknown_insert_status: retrying, unknown: retrying, unknown_server_error: retrying, missing_object: retrying, row_data: { baseMs: 1, capMs: 2 } },
    },
    schemaRefreshMs: scenario.schemaRefreshMs ?? 500,
    telemetry: { logLevel: 'silent' },
  };
  return buildConfig(raw, '/nonexistent');
}

export function describeScenario(s: Scenario, records: number, poison: number): string {
  const lives = s.lives
    .map(
      (l) =>
        `${l.end}(rows=${l.maxRows},age=${l.maxAgeMs},commit=${l.commitIntervalMs},cap=${l.capMs},attempts=${l.maxAttempts ?? '∞'},pause=${l.pauseMs},buf=${l.maxBufferedBytes},gap=${l.gapMs}${l.pressureMs > 0 ? `,pressure=${l.pressureMs}` : ''}${l.pauses.length > 0 ? `,pauses=${JSON.stringify(l.pauses)}` : ''})`,
    )
    .join(' ');
  return [
    `partitions=${s.partitions} records=${records} poison=${poison} hint=${s.poisonHint}`,
    `destinations=${s.destinations.join(',')} concurrency=${s.concurrency.join(',')}${s.destinationBudgets?.some((b) => b !== undefined) === true ? ` budgets=${s.destinationBudgets.map((b) => b ?? '-').join(',')}` : ''} teams=${JSON.stringify(s.teamMap)} unknown=${JSON.stringify(s.unknown)}`,
    `routes=${s.routes.map((r) => `${r.name}->${r.table}@${r.destination}`).join(',')} missingTables=${[...s.missingTables].map((t) => t.replace('\u0000', ':')).join(',') || '-'}`,
    `lookups: ${s.lookups === undefined ? 'none' : `known teams ${[...s.lookups.known].join(',') || '-'}, fail=${s.lookups.fail}, slow=${s.lookups.slowMs}${s.lookups.move === undefined ? '' : `, team ${s.lookups.move.team} moves to ${s.lookups.move.to} at +${s.lookups.move.at - START} ms`}`}`,
    `faults: warehouse=${JSON.stringify(s.warehouseFaults)} source=${JSON.stringify(s.sourceFaults)} dlq=${JSON.stringify(s.deadLetterFaults)} ledger=${JSON.stringify(s.ledgerFaults)}`,
    `lives: ${lives}`,
  ].join('\n');
}

/** Runs the clock until `done()` holds or `budgetMs` of virtual time passes; returns whether it held. */
