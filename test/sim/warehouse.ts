// An in-memory ClickHouse stand-in: tables per destination with a live schema (so the real row
// encoder runs), JSONEachRow inserts parsed and stored as rows, and insert_deduplication_token
// honoured within a window of the last N tokens per table (like ClickHouse's deduplication
// window). Faults are chosen by the seeded RNG: failure before anything is stored (retryable),
// stored-then-failed (the client sees an error although the rows landed), slow replies, and
// designated poison rows that fail the whole insert with a row_data error naming "(at row N)", and
// others rejected with a server code no class lists (unknown_server_error: found by bisecting).
import type { ColumnInfo } from '../../src/sink/types.ts';
import type { DestinationConfig } from '../../src/config/load.ts';
import { ErrorClasses } from '../../src/errors/classes.ts';
import { renderTableDdl } from '../../src/sink/clickhouse/ddl.ts';
import { agreedVersion } from '../../src/sink/clickhouse/replica-versions.ts';
import { WarehouseError } from '../../src/sink/errors.ts';
import type { InsertBatch, InsertResult, Sink, TableRef, TableSchema } from '../../src/sink/types.ts';
import type { SchemaChanges } from './alter.ts';
import type { Rng } from './rng.ts';
import type { Incarnation, World } from './runtime.ts';

export interface StoredRow {
  readonly uuid: string | undefined;
  readonly team: number | undefined;
  readonly topic: string | undefined;
  readonly partition: number | undefined;
  readonly offset: number | undefined;
  readonly token: string;
  readonly incarnation: number;
}

interface Table {
  readonly columns: ColumnInfo[];
  readonly rows: StoredRow[];
  readonly tokens: string[];
  readonly tokenSet: Set<string>;
}

export interface WarehouseFaults {
  readonly insertFailBefore: number;
  readonly insertFailAfter: number;
  readonly slow: number;
  readonly describeFail: number;
  /** Under memory pressure (a window of each life), inserts of more rows than this fail with MEMORY_LIMIT_EXCEEDED (split by the policy); 0: never. */
  readonly splitAboveRows: number;
}

export interface WarehouseOptions {
  /** Tokens remembered per table; 0 disables deduplication. */
  readonly dedupWindow: number;
  /** uuids whose row the warehouse rejects (a value that cannot become its column). */
  readonly poison: ReadonlySet<string>;
  /** Whether a rejection names the row ("(at row N)") or only the error (forcing bisection). */
  readonly poisonHint: boolean;
  /** uuids whose row the warehouse rejects with a code no class lists (never naming the row). */
  readonly unlisted?: ReadonlySet<string>;
  /** Schema changes: columns added at virtual times, after which some rows are refused (naming the row). */
  readonly changes?: SchemaChanges | undefined;
  /**
   * A second replica behind each destination's URL applies every schema change this much later
   * (FEATURES.replicaLag); 0 or none: one server. A schema read or an insert names the replica it reached.
   */
  readonly replicaLagMs?: number;
}

/** The simulated table's uuid on every replica (one table generation). */
const SIM_TABLE_UUID = '5e1a0b36-5a59-4c6b-9d3c-2f1e0d9c8b7a';

export const simColumns: readonly ColumnInfo[] = [
  { name: 'uuid', type: 'String', defaultKind: '' },
  { name: 'team_id', type: 'Int64', defaultKind: '' },
  { name: 'n', type: 'Int64', defaultKind: '' },
  { name: '_topic', type: 'LowCardinality(String)', defaultKind: '' },
  { name: '_partition', type: 'UInt64', defaultKind: '' },
  { name: '_offset', type: 'UInt64', defaultKind: '' },
  { name: 'inserted_at', type: 'DateTime', defaultKind: 'DEFAULT' },
];

export class Warehouse {
  readonly #tables = new Map<string, Table>();
  readonly options: WarehouseOptions;
  inserts = 0;
  dedupHits = 0;
  rejected = 0;
  /** Problems the warehouse itself noticed (a body it could not parse). */
  readonly anomalies: string[] = [];
  /** Inserts on their way whose query has not started yet, while a change waits for its moment. */
  #starting: Array<{ readonly key: string; readonly token: string; readonly uuids: readonly string[]; readonly startAt: number }> = [];

  constructor(options: WarehouseOptions) {
    this.options = options;
  }

  static key(destination: string, table: TableRef): string {
    return `${destination}\u0000${table.database}.${table.table}`;
  }

  createTable(destination: string, table: TableRef, columns: readonly ColumnInfo[]): void {
    const key = Warehouse.key(destination, table);
    if (!this.#tables.has(key)) this.#tables.set(key, { columns: [...columns], rows: [], tokens: [], tokenSet: new Set() });
  }

  /** The replicas behind each destination's URL. */
  get replicas(): number {
    return (this.options.replicaLagMs ?? 0) > 0 ? 2 : 1;
  }

  /** Where replica `replica` is in the schema changes' time: the second applies them later. */
  #replicaTime(at: number, replica: number): number {
    return replica === 0 ? at : at - (this.options.replicaLagMs ?? 0);
  }

  /**
   * The schema a read reaching `replica` gives: its columns, and its version — with two replicas,
   * joined with both replicas' versions by the real agreedVersion, as ClickHouseSink reads them.
   */
  schema(destination: string, table: TableRef, replica = 0, answeredAt = Date.now()): TableSchema | undefined {
    const key = Warehouse.key(destination, table);
    const t = this.#tables.get(key);
    if (t === undefined) return undefined;
    const changes = this.options.changes;
    if (changes === undefined) return { columns: t.columns };
    const now = Date.now();
    const here = this.#replicaTime(now, replica);
    const local = String(changes.version(here));
    const rows = [0, 1].map((r) => ({
      replica: `replica-${r}:9000`,
      initiator: `replica-${replica}:9000`,
      engine: 'ReplicatedMergeTree',
      uuid: SIM_TABLE_UUID,
      metadata_version: changes.version(this.#replicaTime(now, r)),
      replicas: 2,
    }));
    const schema = { columns: changes.columns(t.columns, here), version: this.replicas === 1 ? local : agreedVersion(local, rows, [], `replica-${replica}:9000`) };
    // The snapshot is taken; a change waiting for a read that is answered only after an insert of
    // the table starts may land right after it (FEATURES.alterAfterRead).
    if (changes.waiting) {
      this.#starting = this.#starting.filter((s) => s.startAt > now);
      const straddled = this.#starting.filter((s) => s.key === key && s.startAt < answeredAt);
      changes.afterRead(
        now,
        straddled.map((s) => ({ uuids: s.uuids, landed: t.tokenSet.has(s.token) })),
      );
    }
    return schema;
  }

  /**
   * An insert sent now whose query starts at `startAt` (FEATURES.lateQueryStarts): on its way, not
   * started, until the returned function says it landed.
   */
  sending(destination: string, batch: InsertBatch, startAt: number): () => void {
    if (this.options.changes?.waiting !== true || startAt <= Date.now()) return () => undefined;
    const uuids = [
      ...Buffer.concat(batch.body)
        .toString('utf8')
        .matchAll(/"uuid":"([^"]+)"/g),
    ].map((m) => m[1] as string);
    const entry = { key: Warehouse.key(destination, batch.table), token: batch.token, uuids, startAt };
    this.#starting.push(entry);
    return () => {
      this.#starting = this.#starting.filter((s) => s !== entry);
    };
  }

  /** Every table as `destination`, `db.table` and its rows. */
  tables(): Array<{ destination: string; table: string; rows: readonly StoredRow[] }> {
    return [...this.#tables].map(([key, t]) => {
      const [destination = '', table = ''] = key.split('\u0000');
      return { destination, table, rows: t.rows };
    });
  }

  /**
   * Applies one insert as the server would; throws the server's error when it rejects it. Its rows
   * are judged under the schema of `startedAt`: ClickHouse takes an insert's metadata snapshot when
   * the query starts (its headers arrive), so a slow request — a zombie of a killed process
   * included — is parsed under the schema of when it was sent, not of when it ends.
   */
  apply(destination: string, batch: InsertBatch, incarnation: number, startedAt = Date.now(), replica = 0): InsertResult {
    const t = this.#tables.get(Warehouse.key(destination, batch.table));
    if (t === undefined) {
      throw new WarehouseError(ErrorClasses.missingObject, `Table ${batch.table.database}.${batch.table.table} does not exist. (UNKNOWN_TABLE)`, 60, undefined);
    }
    const text = Buffer.concat(batch.body).toString('utf8');
    const lines = text.split('\n').filter((l) => l.length > 0);
    if (lines.length !== batch.rows) this.anomalies.push(`insert ${batch.token}: ${lines.length} lines for rows=${batch.rows}`);
    const rows: StoredRow[] = [];
    for (let i = 0; i < lines.length; i++) {
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(lines[i] as string) as Record<string, unknown>;
      } catch {
        this.anomalies.push(`insert ${batch.token}: line ${i + 1} is not JSON: ${(lines[i] as string).slice(0, 80)}`);
        throw new WarehouseError(ErrorClasses.rowData, `Cannot parse JSON object here (at row ${i + 1})`, 117, undefined, i + 1);
      }
      const message = typeof obj._message === 'object' && obj._message !== null ? (obj._message as Record<string, unknown>) : obj;
      const uuid = typeof message.uuid === 'string' ? message.uuid : undefined;
      if (uuid !== undefined && this.options.poison.has(uuid)) {
        this.rejected++;
        const hint = this.options.poisonHint ? `: (at row ${i + 1})` : '';
        throw new WarehouseError(ErrorClasses.rowData, `Code: 27. DB::Exception: Cannot parse input: expected '"' before: 'oops'${hint}`, 27, undefined, this.options.poisonHint ? i + 1 : undefined);
      }
      const refusal = uuid === undefined ? undefined : this.options.changes?.serverRefuses(uuid, this.#replicaTime(startedAt, replica));
      if (refusal === 'named') {
        this.rejected++;
        throw new WarehouseError(ErrorClasses.rowData, `Code: 27. DB::Exception: Cannot parse input: the altered column refuses it: (at row ${i + 1})`, 27, undefined, i + 1);
      }
      if (refusal === 'unnamed') {
        this.rejected++;
        throw new WarehouseError(ErrorClasses.unknownServerError, 'Code: 99998. DB::Exception: the altered column refuses a row. (SIM_ALTERED)', 99998, undefined);
      }
      if (uuid !== undefined && this.options.unlisted?.has(uuid) === true) {
        this.rejected++;
        throw new WarehouseError(ErrorClasses.unknownServerError, 'Code: 99999. DB::Exception: a rejection no class lists. (SIM_UNLISTED)', 99999, undefined);
      }
      const team = typeof obj.team_id === 'number' ? obj.team_id : typeof message.team_id === 'number' ? message.team_id : undefined;
      rows.push({
        uuid,
        team,
        topic: typeof obj._topic === 'string' ? obj._topic : undefined,
        partition: typeof obj._partition === 'number' ? obj._partition : undefined,
        offset: typeof obj._offset === 'number' ? obj._offset : undefined,
        token: batch.token,
        incarnation,
      });
    }
    this.inserts++;
    if (this.options.dedupWindow > 0 && t.tokenSet.has(batch.token)) {
      this.dedupHits++;
      return { writtenRows: 0 };
    }
    t.rows.push(...rows);
    if (this.options.dedupWindow > 0) {
      t.tokens.push(batch.token);
      t.tokenSet.add(batch.token);
      while (t.tokens.length > this.options.dedupWindow) t.tokenSet.delete(t.tokens.shift() as string);
    }
    return { writtenRows: rows.length };
  }
}

/** Columns a CREATE TABLE statement declares (enough of the grammar for the default DDL). */
export function columnsOfDdl(ddl: string): ColumnInfo[] {
  const open = ddl.indexOf('(');
  const close = ddl.lastIndexOf(')\nENGINE');
  const body = ddl.slice(open + 1, close < 0 ? undefined : close);
  const columns: ColumnInfo[] = [];
  for (const raw of body.split('\n')) {
    const line = raw.trim().replace(/,$/, '');
    const nested = /^(\w+) Nested\((.*)\)$/.exec(line);
    if (nested) {
      for (const part of (nested[2] ?? '').split(',')) {
        const [name = '', type = ''] = part.trim().split(/\s+/);
        columns.push({ name: `${nested[1]}.${name}`, type: `Array(${type})`, defaultKind: '' });
      }
      continue;
    }
    const match = /^(\w+)\s+(.+)$/.exec(line);
    if (match) columns.push({ name: match[1] as string, type: match[2] as string, defaultKind: '' });
  }
  return columns;
}

/** One destination's sink as one incarnation sees it. */
export class SimSink implements Sink {
  readonly destinationId: string;
  readonly #world: World;
  readonly #inc: Incarnation;
  readonly #warehouse: Warehouse;
  readonly #rng: Rng;
  readonly #faults: WarehouseFaults;
  /** Virtual time until which the server is under memory pressure. */
  readonly #pressureUntil: number;

  /** Draws this destination's stalls (an insert on the wire for 0.2–1.2 s); none: it never stalls. */
  readonly #stalls: Rng | undefined;
  /** Draws which replica each schema read and insert reaches (a stream of its own); none: one server. */
  readonly #replicas: Rng | undefined;
  /** Draws which schema reads answer late (FEATURES.slowSchemaReads, a stream of its own); none: all answer at once. */
  readonly #slowReads: Rng | undefined;
  /** Draws which inserts start late at the server (FEATURES.lateQueryStarts, a stream of its own); none: each starts as it is sent. */
  readonly #lateStarts: Rng | undefined;
  /** Draws how long a schema read through the cluster takes to answer (FEATURES.clusterSchemaReads, a stream of its own); none: at once. */
  readonly #clusterReads: Rng | undefined;

  constructor(
    world: World,
    inc: Incarnation,
    warehouse: Warehouse,
    destination: DestinationConfig,
    rng: Rng,
    faults: WarehouseFaults,
    pressureUntil: number,
    stalls?: Rng,
    replicas?: Rng,
    slowReads?: Rng,
    lateStarts?: Rng,
    clusterReads?: Rng,
  ) {
    this.#lateStarts = lateStarts;
    this.#clusterReads = clusterReads;
    this.#stalls = stalls;
    this.#replicas = replicas;
    this.#slowReads = slowReads;
    this.destinationId = destination.id;
    this.#world = world;
    this.#inc = inc;
    this.#warehouse = warehouse;
    this.#rng = rng;
    this.#faults = faults;
    this.#pressureUntil = pressureUntil;
  }

  describe(table: TableRef, signal?: AbortSignal): Promise<TableSchema | undefined> {
    const fail = this.#rng.chance(this.#faults.describeFail) ? 'before' : undefined;
    const replica = this.#replicas?.int(0, 1) ?? 0;
    // The schema is read when the request arrives; a slow answer brings it back late.
    const late = this.#slowReads?.chance(0.15) === true ? this.#slowReads.int(20, 300) : 0;
    // Through the cluster, the answer waits for every replica's version and then the views' read.
    const replyMs = late + (this.#clusterReads?.int(3, 30) ?? 0) + this.#rng.int(0, 2);
    return this.#world.remote(
      this.#inc,
      `describe ${this.destinationId}:${table.table}`,
      { kind: 'warehouse', sendMs: this.#rng.int(0, 2), replyMs, fail, error: networkError, signal, abortError },
      () => this.#warehouse.schema(this.destinationId, table, replica, Date.now() + replyMs),
    );
  }

  createTable(table: TableRef, template: string | undefined, signal?: AbortSignal): Promise<void> {
    const ddl = renderTableDdl(table, template);
    return this.#world.remote(
      this.#inc,
      `create table ${this.destinationId}:${table.table}`,
      { kind: 'warehouse', sendMs: this.#rng.int(0, 3), replyMs: this.#rng.int(0, 2), signal, abortError },
      () => this.#warehouse.createTable(this.destinationId, table, columnsOfDdl(ddl)),
    );
  }

  insert(batch: InsertBatch, signal?: AbortSignal): Promise<InsertResult> {
    const roll = this.#rng.float();
    const f = this.#faults;
    const tooBig = Date.now() < this.#pressureUntil && f.splitAboveRows > 0 && batch.rows > f.splitAboveRows;
    const fail = tooBig || roll < f.insertFailBefore ? 'before' : roll < f.insertFailBefore + f.insertFailAfter ? 'after' : undefined;
    const slow = this.#rng.chance(f.slow);
    const stallMs = this.#stalls?.chance(0.08) === true ? this.#stalls.int(200, 1_200) : 0;
    const afterError = this.#rng.chance(0.5) ? networkError : unknownStatusError;
    // The query starts (ClickHouse takes its metadata snapshot) when its headers reach the server and
    // it is admitted: at once, or later (a connection being opened, a queue before max_concurrent_queries).
    const startMs = this.#lateStarts === undefined ? 0 : this.#lateStarts.int(0, 2) + (this.#lateStarts.chance(0.25) ? this.#lateStarts.int(3, 60) : 0);
    const startedAt = Date.now() + startMs;
    const started = this.#warehouse.sending(this.destinationId, batch, startedAt);
    const replica = this.#replicas?.int(0, 1) ?? 0;
    return this.#world.remote(
      this.#inc,
      `insert ${this.destinationId}:${batch.table.table} rows=${batch.rows} token=${batch.token}`,
      {
        kind: 'warehouse',
        sendMs: startMs + stallMs + (slow ? this.#rng.int(20, 300) : this.#rng.int(0, 4)),
        replyMs: slow ? this.#rng.int(5, 100) : this.#rng.int(0, 3),
        fail,
        error: tooBig ? memoryLimitError : fail === 'after' ? afterError : networkError,
        signal,
        abortError,
      },
      // Applied no earlier than it started: one that lands sooner (at a kill) started then at the latest.
      () => {
        started();
        return this.#warehouse.apply(this.destinationId, batch, this.#inc.id, Math.min(startedAt, Date.now()), replica);
      },
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function networkError(): WarehouseError {
  return new WarehouseError(ErrorClasses.transientNetwork, 'socket hang up', undefined, undefined);
}

function memoryLimitError(): WarehouseError {
  return new WarehouseError(ErrorClasses.memoryLimit, 'Code: 241. DB::Exception: Memory limit (for query) exceeded. (MEMORY_LIMIT_EXCEEDED)', 241, undefined);
}

function unknownStatusError(): WarehouseError {
  return new WarehouseError(ErrorClasses.unknownInsertStatus, 'Code: 319. DB::Exception: Unknown status, client must retry.', 319, undefined);
}

function abortError(): WarehouseError {
  return new WarehouseError(ErrorClasses.unknown, 'The user aborted a request.', undefined, undefined);
}
