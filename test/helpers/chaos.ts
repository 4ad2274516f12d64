// Test helper of test/e2e/chaos.test.ts: what the chaos run needs besides the run itself. Integer
// knobs from the environment; the events it produces (seeded, a few poison rows); `inserter verify`
// run as a child process; the topic-derived truth (what the topic holds, read back after the run) and
// the test's own check of the tables against it by partition:offset (duplicate inserts, lost,
// misrouted and unknown rows); and the evidence kept on a failure (the group's members as the broker
// sees them, where each id verify named sits in every endpoint).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Admin } from '@platformatic/kafka';
import type { VerifyReport } from '../../src/cli/verify.ts';
import type { Rng } from '../sim/rng.ts';
import type { OutRecord, ReadRecord } from './bus.ts';
import type { ClickHouseInstance } from './clickhouse.ts';
import { REPO_ROOT } from './inserter.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** An integer knob from the environment; undefined when unset. */
export function knob(name: string, min: number): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw.replace(/_/g, ''));
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name}=${raw}: an integer ≥ ${min} is needed`);
  return value;
}

function uuid(rng: Rng): string {
  const hex = Array.from({ length: 4 }, () => rng.uint32().toString(16).padStart(8, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${'89ab'[rng.int(0, 3)]}${hex.slice(17, 20)}-${hex.slice(20)}`;
}

/** What the run produces: `total` events of teams 1..`teams`. */
export interface EventsShape {
  total: number;
  teams: number;
  /** How many of them have uuid "not-a-uuid". */
  poison: number;
  partitions: number;
}

/** The events, in production order (record i goes to partition i % partitions); `poison` of them have uuid "not-a-uuid". */
export function chaosEvents(rng: Rng, shape: EventsShape): OutRecord[] {
  const poison = new Set<number>();
  while (poison.size < shape.poison) poison.add(rng.int(0, shape.total - 1));
  const records: OutRecord[] = [];
  for (let i = 0; i < shape.total; i++) {
    const team = rng.int(1, shape.teams);
    const value = { uuid: poison.has(i) ? 'not-a-uuid' : uuid(rng), team_id: team, n: i, s: 'x'.repeat(rng.int(10, 200)) };
    records.push({ key: Buffer.from(String(team)), value: Buffer.from(JSON.stringify(value)), partition: i % shape.partitions });
  }
  return records;
}

/** `bin/inserter verify --json` on a config file: its exit code and output. */
export function runVerify(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(join(REPO_ROOT, 'bin', 'inserter'), ['verify', '--config', file, '--json'], { maxBuffer: 256 * 1024 * 1024, timeout: 300_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** What the topic holds, read back after the run: the only source of what is expected where. */
export interface TopicTruth {
  records: number;
  /** partition:offset → the good record there (a valid uuid) and the endpoint its team maps to. */
  good: Map<string, { uuid: string; team: number; endpoint: string }>;
  /** partition:offset of every record that can only be a dead letter. */
  poison: Set<string>;
  /** Good records per endpoint. */
  expected: Map<string, number>;
  /** Duplicate records in the topic: one uuid at more than one partition:offset (the producer's doing, not inserter's). */
  duplicates: Array<{ uuid: string; positions: string[] }>;
}

/** The truth of `records` for endpoints `endpointIds`, each team going to `teamMap[team]`. */
export function topicTruthOf(records: readonly ReadRecord[], teamMap: Readonly<Record<string, string>>, endpointIds: readonly string[]): TopicTruth {
  const truth: TopicTruth = { records: records.length, good: new Map(), poison: new Set(), expected: new Map(endpointIds.map((id) => [id, 0])), duplicates: [] };
  const byUuid = new Map<string, string[]>();
  for (const r of records) {
    const position = `${r.partition}:${r.offset}`;
    let value: { uuid?: unknown; team_id?: unknown } = {};
    try {
      value = JSON.parse(r.value?.toString('utf8') ?? '') as typeof value;
    } catch {
      // not JSON: a dead letter
    }
    const endpoint = typeof value.team_id === 'number' ? teamMap[String(value.team_id)] : undefined;
    if (typeof value.uuid !== 'string' || !UUID.test(value.uuid) || endpoint === undefined || typeof value.team_id !== 'number') {
      truth.poison.add(position);
      continue;
    }
    truth.good.set(position, { uuid: value.uuid, team: value.team_id, endpoint });
    truth.expected.set(endpoint, (truth.expected.get(endpoint) ?? 0) + 1);
    const positions = byUuid.get(value.uuid);
    if (positions === undefined) byUuid.set(value.uuid, [position]);
    else positions.push(position);
  }
  for (const [id, positions] of byUuid) if (positions.length > 1) truth.duplicates.push({ uuid: id, positions });
  return truth;
}

/** The test's own check of the tables against the topic, by position (partition:offset), not by uuid. */
export interface Delivery {
  rows: Record<string, number>;
  /** One topic record in a table more than once: a duplicate insert (inserter's doing). */
  duplicateInserts: { count: number; sample: string[] };
  /** A good topic record in no table (or not in its team's). */
  lost: { count: number; perPartition: Record<number, string[]>; sample: string[] };
  /** A row in an endpoint its team is not mapped to. */
  misrouted: { count: number; sample: string[] };
  /** A row naming no good record of the topic (or another uuid than the record there). */
  unknown: { count: number; sample: string[] };
}

/** How many items a tally keeps as its sample. */
export const SAMPLE = 50;

function tally(into: { count: number; sample: string[] }, item: string): void {
  into.count++;
  if (into.sample.length < SAMPLE) into.sample.push(item);
}

/** Sorted offsets as ranges ("12-15", "40"). */
function ranges(offsets: readonly bigint[]): string[] {
  const sorted = [...offsets].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const out: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] ?? 0n) + 1n) j++;
    out.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out;
}

/** Checks the tables app.events of `chs` (endpoint `endpointIds[i]` each) against `truth`. */
export async function checkDeliveryIn(chs: readonly ClickHouseInstance[], endpointIds: readonly string[], truth: TopicTruth): Promise<Delivery> {
  const out: Delivery = {
    rows: {},
    duplicateInserts: { count: 0, sample: [] },
    lost: { count: 0, perPartition: {}, sample: [] },
    misrouted: { count: 0, sample: [] },
    unknown: { count: 0, sample: [] },
  };
  /** endpoint → partition:offset → times. */
  const landed = new Map<string, Map<string, number>>();
  for (const [i, ch] of chs.entries()) {
    const endpoint = endpointIds[i] ?? String(i);
    const here = new Map<string, number>();
    landed.set(endpoint, here);
    let rows = 0;
    for (const line of (await ch.query('SELECT toString(uuid), team_id, _partition, _offset FROM app.events FORMAT TSV')).split('\n')) {
      if (line === '') continue;
      rows++;
      const [id = '', team = '', partition = '', offset = ''] = line.split('\t');
      const position = `${partition}:${offset}`;
      const record = truth.good.get(position);
      if (record === undefined || record.uuid !== id) {
        tally(out.unknown, `${id} team ${team} at ${position} in ${endpoint}`);
        continue;
      }
      if (record.endpoint !== endpoint) tally(out.misrouted, `${id} team ${team} at ${position} in ${endpoint} (mapped to ${record.endpoint})`);
      here.set(position, (here.get(position) ?? 0) + 1);
    }
    out.rows[endpoint] = rows;
    for (const [position, times] of here) if (times > 1) tally(out.duplicateInserts, `${truth.good.get(position)?.uuid ?? '?'} at ${position} ×${times} in ${endpoint}`);
  }
  const lost = new Map<number, bigint[]>();
  for (const [position, record] of truth.good) {
    if (landed.get(record.endpoint)?.has(position) === true) continue;
    tally(out.lost, `${record.uuid} at ${position} team ${record.team} → ${record.endpoint}`);
    const [partition = '0', offset = '0'] = position.split(':');
    const list = lost.get(Number(partition)) ?? [];
    list.push(BigInt(offset));
    lost.set(Number(partition), list);
  }
  for (const [partition, offsets] of lost) out.lost.perPartition[partition] = ranges(offsets).slice(0, 200);
  return out;
}

/** The group's members and their assignments as the broker sees them (member ids, not pids: see the logs). */
export async function groupMembersOf(bootstrap: string, group: string): Promise<string> {
  const admin = new Admin({ clientId: 'inserter-chaos-admin', bootstrapBrokers: [bootstrap] });
  try {
    const groups = await admin.describeGroups({ groups: [group] });
    const g = groups.get(group);
    const members = [...(g?.members.values() ?? [])].map((m) => `${m.id.slice(-8)}=[${[...(m.assignments?.values() ?? [])].flatMap((a) => a.partitions).join(',')}]`);
    return `${g?.state ?? 'unknown'} ${members.join(' ')}`;
  } catch (error) {
    return `describeGroups failed: ${String(error)}`;
  } finally {
    await admin.close();
  }
}

/** Where each duplicated, lost or misrouted id sits in every endpoint (partition, offset): the evidence. */
export async function whereaboutsIn(chs: readonly ClickHouseInstance[], endpointIds: readonly string[], report: VerifyReport): Promise<Record<string, string>> {
  const ids = new Set<string>();
  for (const r of report.routes) {
    for (const d of r.destinations) for (const x of [...d.duplicates.sample, ...d.missing.sample, ...d.misrouted.sample]) ids.add(x.id);
  }
  const out: Record<string, string> = {};
  for (const [i, ch] of chs.entries()) {
    if (ids.size === 0) break;
    const list = [...ids].map((id) => `'${id.replace(/'/g, '')}'`).join(',');
    out[endpointIds[i] ?? String(i)] = await ch.query(`SELECT uuid, team_id, _partition, _offset, count() FROM app.events WHERE toString(uuid) IN (${list}) GROUP BY ALL ORDER BY uuid FORMAT TSV`);
  }
  return out;
}
