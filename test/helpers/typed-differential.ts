// Owns the harness of the typed-encoding differential test (test/e2e/typed-differential.test.ts): for
// one table, the same records are encoded twice — pass-through JSONEachRow (the reference: what
// ClickHouse's own JSON parsing makes of the producer's bytes) and the encoder under test — and
// inserted through the inserter's own ClickHouse sink into twin tables of the same columns. Which rows
// each side rejects is found by inserting into Null-engine twins (bisection), the accepted rows land
// in Memory-engine twins, and every column of every row is compared as ClickHouse prints it. Every
// difference (a row one side rejects and the other takes, a column whose value differs, an encoder
// that throws something other than its EncodeError) is a Divergence naming the table, the column,
// the input and both outcomes.
import type { ColumnInfo } from '../../src/sink/types.ts';
import type { RowEncoder } from '../../src/encode/types.ts';
import type { ByteSink } from '../../src/encode/byte-chunks.ts';
import { JsonEachRowEncoder } from '../../src/encode/json-each-row.ts';
import { decodeJsonRecord, type DecodedRecord } from '../../src/decode/json.ts';
import { ClickHouseSink } from '../../src/sink/clickhouse/sink.ts';
import { WarehouseError } from '../../src/sink/errors.ts';
import { Secret } from '../../src/config/secret.ts';
import type { DiffCase } from './typed-differential-inputs.ts';
import { basicAuth, type ClickHouseInstance } from './clickhouse.ts';
import { readRows, rowText, shown, twinStatements, type ColumnRow } from './typed-differential-rows.ts';

/** The encoder under test for a table's live columns and time zone (as `describe` read them), or why it cannot be exact. */
export type EncoderFactory = (columns: readonly ColumnInfo[], timezone: string | undefined) => RowEncoder | { readonly uncovered: string };

export interface Divergence {
  readonly table: string;
  readonly offset: string;
  /** typed-rejects: JSONEachRow took the row; typed-accepts: JSONEachRow rejected it; value: a column differs; encoder-threw: not an EncodeError. */
  readonly kind: 'typed-rejects' | 'typed-accepts' | 'value' | 'encoder-threw';
  readonly column: string | undefined;
  readonly type: string | undefined;
  readonly what: readonly string[];
  readonly input: Buffer;
  readonly passthrough: string;
  readonly typed: string;
}

export interface TableOutcome {
  readonly table: string;
  readonly uncovered: string | undefined;
  readonly cases: number;
  /** Cases the JSON decoder refuses (they never reach an encoder). */
  readonly undecodable: number;
  readonly acceptedByPassthrough: number;
  readonly rejectedByPassthrough: number;
  readonly rejectedByEncoder: number;
  readonly rejectedByServerTyped: number;
  readonly inserts: number;
  readonly divergences: readonly Divergence[];
  readonly ms: number;
}

const REJECTED_CODE = 'INSERTER_ENCODE_REJECTED';
const PROBE_CONCURRENCY = 8;
/** Below ClickHouse's min_chunk_bytes_for_parallel_parsing (10 MiB) an insert is parsed in one piece. */
const TRUSTED_ROW_HINT_BYTES = 4 << 20;

/** Collects one row's bytes as ByteChunks keeps them: small writes and ranges copied, large writes referenced. */
class RowParts implements ByteSink {
  readonly parts: Buffer[] = [];
  bytes = 0;
  writeUtf8(text: string): void {
    const b = Buffer.from(text, 'utf8');
    this.parts.push(b);
    this.bytes += b.length;
  }
  writeBytes(whole: Buffer, start = 0): void {
    const bytes = whole.subarray(start);
    this.parts.push(bytes.length > 64 * 1024 ? bytes : Buffer.from(bytes));
    this.bytes += bytes.length;
  }
  writeDecimal(value: number, minDigits = 1): void {
    this.writeUtf8(`${value}`.padStart(minDigits, '0'));
  }
  writeRange(bytes: Buffer, start: number, end: number): void {
    if (end <= start) return;
    this.parts.push(Buffer.from(bytes.subarray(start, end)));
    this.bytes += end - start;
  }
}

type Decoded = DecodedRecord;
type Encoded = { readonly parts: Buffer[]; readonly bytes: number } | { readonly rejected: string };

interface Side {
  readonly encoder: RowEncoder;
  readonly rows: Encoded[];
}

/** A ClickHouse server with the inserter's sink on it, as the differential test uses it. */
export class DiffServer {
  readonly ch: ClickHouseInstance;
  readonly sink: ClickHouseSink;
  readonly database: string;
  #token = 0;
  readonly #user: { name: string; password: string };

  /** Inserts run as `user` (default the admin; e.g. a user whose profile sets session_timezone). */
  constructor(ch: ClickHouseInstance, database: string, user: { name: string; password: string } = ch.admin) {
    this.ch = ch;
    this.database = database;
    this.#user = user;
    this.sink = new ClickHouseSink({
      id: 'differential',
      kind: 'clickhouse',
      url: ch.url,
      user: user.name,
      password: new Secret(user.password),
      database,
      tls: undefined,
      maxBufferedBytes: 1 << 30,
      concurrency: PROBE_CONCURRENCY,
      requestTimeoutMs: 120_000,
      stalledAfterMs: 30_000,
      compression: 'none',
    });
  }

  /** Raw bytes of a query's output (never decoded as UTF-8: strings may hold any bytes), as the admin or as the inserting user. */
  async raw(sql: string, settings: Record<string, string> = {}, asUser = false): Promise<Buffer> {
    const url = new URL(this.ch.url);
    for (const [k, v] of Object.entries(settings)) url.searchParams.set(k, v);
    const who = asUser ? this.#user : this.ch.admin;
    const response = await fetch(url, { method: 'POST', headers: { Authorization: basicAuth(who.name, who.password) }, body: sql });
    const body = Buffer.from(await response.arrayBuffer());
    if (!response.ok) throw new Error(`ClickHouse error (HTTP ${response.status}) for ${sql.slice(0, 200)}: ${body.toString('utf8').trim()}`);
    return body;
  }

  /** Inserts rows (each a list of parts) in one insert; undefined, or the server's rejection (and the row it named, 1-based). */
  async insert(table: string, encoder: RowEncoder, rows: readonly (readonly Buffer[])[], bytes: number): Promise<{ message: string; row: number | undefined } | undefined> {
    try {
      await this.sink.insert({
        table: { database: this.database, table },
        body: rows.flat(),
        format: encoder.format,
        columns: encoder.columns,
        rows: rows.length,
        bytes,
        token: `differential-${process.pid}-${++this.#token}`,
      });
      return undefined;
    } catch (error) {
      if (error instanceof WarehouseError && error.serverCode !== undefined && !['transient_network', 'memory_limit', 'overloaded', 'authentication', 'missing_object'].includes(error.errorClass)) {
        return { message: error.message, row: error.row };
      }
      throw error;
    }
  }

  close(): Promise<void> {
    return this.sink.close();
  }
}

function encodeAll(encoder: RowEncoder, cases: readonly DiffCase[], rows: readonly Decoded[], passthrough: boolean): { side: Side; threw: Map<number, string> } {
  const encoded: Encoded[] = [];
  const threw = new Map<number, string>();
  cases.forEach((c, i) => {
    const out = new RowParts();
    try {
      const row = rows[i] as Decoded;
      encoder.write(out, c.record, row.row, row.teamId);
      encoded.push({ parts: out.parts, bytes: out.bytes });
    } catch (error) {
      const code = (error as { code?: unknown } | undefined)?.code;
      const message = error instanceof Error ? error.message : String(error);
      if (passthrough || code !== REJECTED_CODE) threw.set(i, `${error instanceof Error ? error.name : typeof error}${typeof code === 'string' ? ` ${code}` : ''}: ${message}`);
      encoded.push({ rejected: message });
    }
  });
  return { side: { encoder, rows: encoded }, threw };
}

/**
 * Which of `indices` the server rejects (index → message), found by inserting them into the Null
 * `probe` table in chunks, halving every failing chunk down to single rows.
 */
async function rejectedRows(
  server: DiffServer,
  probe: string,
  side: Side,
  indices: readonly number[],
  firstChunk: (index: number) => number,
  counter: { inserts: number },
): Promise<Map<number, string>> {
  const rejected = new Map<number, string>();
  const queue: number[][] = [];
  // Rows of one first-chunk size are probed together (generated rows in large chunks, mutated ones in small).
  const bySize = new Map<number, number[]>();
  for (const i of indices) {
    const n = firstChunk(i);
    const list = bySize.get(n) ?? [];
    list.push(i);
    bySize.set(n, list);
  }
  for (const [n, list] of bySize) for (let k = 0; k < list.length; k += n) queue.push(list.slice(k, k + n));
  const worker = async (): Promise<void> => {
    for (let chunk = queue.shift(); chunk !== undefined; chunk = queue.shift()) {
      const rows = chunk.map((i) => side.rows[i] as { parts: Buffer[]; bytes: number });
      counter.inserts++;
      const bytes = rows.reduce((n, r) => n + r.bytes, 0);
      const failure = await server.insert(
        probe,
        side.encoder,
        rows.map((r) => r.parts),
        bytes,
      );
      if (failure === undefined) continue;
      if (chunk.length === 1) rejected.set(chunk[0] as number, failure.message);
      else if (failure.row !== undefined && failure.row >= 1 && failure.row <= chunk.length) {
        // The row the server named is taken as rejected when the insert was small enough to be
        // parsed in one piece (the row number is then exact); else it is probed alone. Rows both
        // sides disagree on are probed alone again before they count (runTable).
        const r = failure.row - 1;
        if (bytes < TRUSTED_ROW_HINT_BYTES) rejected.set(chunk[r] as number, failure.message);
        for (const part of [chunk.slice(0, r), bytes < TRUSTED_ROW_HINT_BYTES ? [] : chunk.slice(r, r + 1), chunk.slice(r + 1)]) if (part.length > 0) queue.push(part);
      } else queue.push(chunk.slice(0, chunk.length >> 1), chunk.slice(chunk.length >> 1));
    }
  };
  // Workers start together and pick up the halves the others push.
  let active = 0;
  await new Promise<void>((resolve, reject) => {
    const spawn = (): void => {
      while (active < PROBE_CONCURRENCY && queue.length > 0) {
        active++;
        worker().then(
          () => {
            active--;
            if (queue.length > 0) spawn();
            else if (active === 0) resolve();
          },
          (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))),
        );
      }
      if (active === 0) resolve();
    };
    spawn();
  });
  return rejected;
}

/**
 * Runs the cases made for the table's columns through both encoders into twins of `ddl` named
 * `table` (created here, dropped after) and returns every divergence. The encoder under test comes from `factory(columns)` with the live columns
 * read the way the inserter reads them (the sink's describe).
 */
export async function runTable(server: DiffServer, table: string, ddl: string, casesFor: (columns: readonly ColumnInfo[]) => readonly DiffCase[], factory: EncoderFactory): Promise<TableOutcome> {
  const started = Date.now();
  const since = (await server.raw("SELECT toString(now64(6, 'UTC') - 1)")).toString('utf8').trim();
  for (const statement of twinStatements(ddl, server.database, table)) await server.raw(statement);
  const described = await server.sink.describe({ database: server.database, table: `${table}__a` });
  if (described === undefined) throw new Error(`${table}__a has no columns`);
  const columns = described.columns;
  const cases = casesFor(columns);
  const empty = { table, cases: cases.length, undecodable: 0, acceptedByPassthrough: 0, rejectedByPassthrough: 0, rejectedByEncoder: 0, rejectedByServerTyped: 0, inserts: 0, divergences: [] };
  const typed = factory(columns, described.timezone);
  if ('uncovered' in typed) return { ...empty, uncovered: typed.uncovered, ms: Date.now() - started };

  // What the JSON decoder passes on is what reaches an encoder in production.
  const decoded: DiffCase[] = [];
  const rows: Decoded[] = [];
  for (const c of cases) {
    try {
      rows.push(decodeJsonRecord(c.record, { maxMessageBytes: 1 << 20, teamId: { from: 'field', field: 'team_id' }, teamRequired: false }));
      decoded.push(c);
    } catch {
      // Dead-lettered before encoding, on either path.
    }
  }
  const a = encodeAll(new JsonEachRowEncoder(columns), decoded, rows, true);
  if (a.threw.size > 0) throw new Error(`${table}: pass-through threw: ${[...a.threw.values()][0]}`);
  const b = encodeAll(typed, decoded, rows, false);

  const counter = { inserts: 0 };
  const all = decoded.map((_, i) => i);
  const encodedB = all.filter((i) => !('rejected' in (b.side.rows[i] as Encoded)));
  // Generated rows are probed in large chunks, mutated ones (often rejected) in small ones.
  const firstChunk = (i: number): number => (['generated', 'valid'].includes((decoded[i] as DiffCase).what[0] ?? '') ? 512 : 32);
  const [rejectedA, rejectedServerB] = await Promise.all([
    rejectedRows(server, `${table}__a_probe`, a.side, all, firstChunk, counter),
    rejectedRows(server, `${table}__b_probe`, b.side, encodedB, firstChunk, counter),
  ]);
  const encodedSet = new Set(encodedB);
  // A disagreement is confirmed row by row, alone on both sides, before it counts.
  for (const i of all) {
    if (rejectedA.has(i) === (rejectedServerB.has(i) || !encodedSet.has(i))) continue;
    for (const [probe, side, rejected] of [
      [`${table}__a_probe`, a.side, rejectedA],
      [`${table}__b_probe`, b.side, rejectedServerB],
    ] as const) {
      const row = side.rows[i] as Encoded;
      if ('rejected' in row) continue;
      counter.inserts++;
      const failure = await server.insert(probe, side.encoder, [row.parts], row.bytes);
      if (failure === undefined) rejected.delete(i);
      else rejected.set(i, failure.message);
    }
  }
  const acceptedA = all.filter((i) => !rejectedA.has(i));
  const acceptedB = encodedB.filter((i) => !rejectedServerB.has(i));
  for (const [side, accepted, name] of [
    [a.side, acceptedA, 'a'],
    [b.side, acceptedB, 'b'],
  ] as const) {
    const rows = accepted.map((i) => side.rows[i] as { parts: Buffer[]; bytes: number });
    for (let i = 0; i < rows.length; i += 2000) {
      const chunk = rows.slice(i, i + 2000);
      const failure = await server.insert(
        `${table}__${name}`,
        side.encoder,
        chunk.map((r) => r.parts),
        chunk.reduce((n, r) => n + r.bytes, 0),
      );
      counter.inserts++;
      if (failure !== undefined) throw new Error(`${table}__${name}: rows each accepted by the probe failed together: ${failure.message}`);
    }
  }

  const columnRows = JSON.parse(
    `[${(
      await server.raw(
        `SELECT name, type, default_kind, default_expression FROM system.columns WHERE database = '${server.database}' AND table = '${table}__a' AND default_kind NOT IN ('ALIAS', 'EPHEMERAL') ORDER BY position FORMAT JSONEachRow`,
      )
    )
      .toString('utf8')
      .trim()
      .split('\n')
      .join(',')}]`,
  ) as ColumnRow[];
  const [rowsA, rowsB] = await Promise.all([readRows(server, `${table}__a`, columnRows, since), readRows(server, `${table}__b`, columnRows, since)]);

  const divergences: Divergence[] = [];
  const base = (i: number): Pick<Divergence, 'table' | 'offset' | 'what' | 'input'> => {
    const c = decoded[i] as DiffCase;
    return { table, offset: String(c.record.offset), what: c.what, input: c.record.value as Buffer };
  };
  for (const i of all) {
    const offset = String((decoded[i] as DiffCase).record.offset);
    const threw = b.threw.get(i);
    const encodedRow = b.side.rows[i] as Encoded;
    const bRejected = 'rejected' in encodedRow ? `encoder: ${encodedRow.rejected}` : rejectedServerB.get(i) !== undefined ? `server: ${rejectedServerB.get(i)}` : undefined;
    const aRejected = rejectedA.get(i);
    if (threw !== undefined) {
      divergences.push({ ...base(i), kind: 'encoder-threw', column: undefined, type: undefined, passthrough: aRejected === undefined ? 'accepted' : `rejected: ${aRejected}`, typed: threw });
    } else if (aRejected === undefined && bRejected !== undefined) {
      divergences.push({
        ...base(i),
        kind: 'typed-rejects',
        column: undefined,
        type: undefined,
        passthrough: `accepted: ${rowText(columnRows, rowsA.get(offset), decoded[i] as DiffCase)}`,
        typed: `rejected by ${bRejected}`,
      });
    } else if (aRejected !== undefined && bRejected === undefined) {
      divergences.push({
        ...base(i),
        kind: 'typed-accepts',
        column: undefined,
        type: undefined,
        passthrough: `rejected: ${aRejected}`,
        typed: `accepted: ${rowText(columnRows, rowsB.get(offset), decoded[i] as DiffCase)}`,
      });
    } else if (aRejected === undefined) {
      const rowA = rowsA.get(offset);
      const rowB = rowsB.get(offset);
      if (rowA === undefined || rowB === undefined) throw new Error(`${table}: accepted row at _offset ${offset} missing (${rowA === undefined ? 'pass-through' : 'typed'})`);
      columnRows.forEach((column, k) => {
        if (rowA[k] !== rowB[k]) divergences.push({ ...base(i), kind: 'value', column: column.name, type: column.type, passthrough: shown(rowA[k] ?? ''), typed: shown(rowB[k] ?? '') });
      });
    }
  }
  if (rowsA.size !== acceptedA.length || rowsB.size !== acceptedB.length)
    throw new Error(`${table}: row counts read back ${rowsA.size}/${rowsB.size}, inserted ${acceptedA.length}/${acceptedB.length}`);
  for (const suffix of ['a', 'b', 'a_probe', 'b_probe']) await server.raw(`DROP TABLE ${server.database}.\`${table}__${suffix}\``);
  return {
    table,
    uncovered: undefined,
    cases: cases.length,
    undecodable: cases.length - decoded.length,
    acceptedByPassthrough: acceptedA.length,
    rejectedByPassthrough: rejectedA.size,
    rejectedByEncoder: all.length - encodedB.length,
    rejectedByServerTyped: rejectedServerB.size,
    inserts: counter.inserts,
    divergences,
    ms: Date.now() - started,
  };
}
