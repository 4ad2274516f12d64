// Where ClickHouse's CPU per inserted PostHog event goes (docs/benchmarks.md, "Session 5"): the same
// generated events inserted over HTTP into variants of the `events` table, CPU of the server process
// per insert (/proc), background merges stopped, so each figure is the insert alone.
//
//   node_modules/.bin/node bench/ch-insert-cost.ts [--events N] [--batch ROWS,...] [--rounds R]
//
// Tables: `events` (dev/posthog/ddl/events.sql: ReplacingMergeTree, 7 MATERIALIZED columns that
// JSONExtractRaw the properties), `events_nomat` (the same without the MATERIALIZED columns) and
// `events_null` (the columns of events_nomat, ENGINE = Null: parsing and defaults only, no part).
// Bodies: JSONEachRow as the inserter sends it (pass-through: `_offset`/`_timestamp` spliced in,
// src/encode/json-each-row.ts) and RowBinaryWithDefaults (typed: src/encode/rowbinary/encoder.ts),
// both uncompressed. Each (table, format, batch size) inserts all N events in batches of ROWS rows
// with the sink's settings, R rounds alternated; medians of CPU-s per million events.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadDdl } from '../dev/posthog/ddl.ts';
import { generate } from '../dev/posthog/generator.ts';
import { ByteChunks } from '../src/encode/byte-chunks.ts';
import { rowShapeFor, writeRow } from '../src/encode/json-each-row.ts';
import { typedEncoderFor } from '../src/encode/rowbinary/encoder.ts';
import type { RowEncoder } from '../src/encode/types.ts';
import type { ColumnInfo } from '../src/sink/types.ts';
import type { SourceRecord } from '../src/source/types.ts';
import { startClickHouse } from '../test/helpers/clickhouse.ts';
import { fmt, fmtInt, summarize, table } from './lib/stats.ts';

const { values: argv } = parseArgs({
  options: {
    events: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '8000,50000' },
    rounds: { type: 'string', default: '3' },
  },
  strict: true,
});
const EVENTS = Number(argv.events);
const BATCHES = argv.batch.split(',').map(Number);
const ROUNDS = Number(argv.rounds);
const say = (text: string): boolean => process.stderr.write(`${text}\n`);

const records: SourceRecord[] = [];
let offset = 0n;
for (const m of generate('clickhouse_events_json', { seed: 11, count: EVENTS, teams: 1000 })) {
  records.push({ topic: 'clickhouse_events_json', partition: 0, offset: offset++, timestamp: 1_900_000_000_000n + offset, key: m.key ?? undefined, value: m.value, headers: [], epoch: 0 });
}

const ch = await startClickHouse();
const cpu = (): number => {
  const pid = readFileSync(`${ch.dir}/pid`, 'utf8').trim();
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const auth = `Basic ${Buffer.from(`${ch.admin.name}:${ch.admin.password}`).toString('base64')}`;
const settings = 'input_format_skip_unknown_fields=1&input_format_defaults_for_omitted_fields=1&input_format_null_as_default=1&async_insert=0';

async function insert(tableName: string, format: string, body: Buffer): Promise<void> {
  const query = encodeURIComponent(`INSERT INTO posthog.${tableName} FORMAT ${format}`);
  const response = await fetch(`${ch.url}/?${settings}&query=${query}`, { method: 'POST', headers: { Authorization: auth }, body });
  if (!response.ok) throw new Error(`${tableName} ${format}: ${response.status} ${(await response.text()).slice(0, 300)}`);
  await response.arrayBuffer();
}

try {
  await ch.query('CREATE DATABASE posthog');
  const ddl = await loadDdl('events', 'posthog');
  await ch.query(ddl);
  const nomat = ddl
    .split('\n')
    .filter((line) => !line.includes(' MATERIALIZED '))
    .join('\n')
    .replace('posthog.events', 'posthog.events_nomat');
  await ch.query(nomat);
  await ch.query('CREATE TABLE posthog.events_null AS posthog.events_nomat ENGINE = Null');
  await ch.query('SYSTEM STOP MERGES');
  const tables = ['events', 'events_nomat', 'events_null'];
  const encoders = new Map<string, { json: RowEncoder; typed: RowEncoder }>();
  for (const t of tables) {
    const rows = (await ch.query(`SELECT name, type, default_kind FROM system.columns WHERE database = 'posthog' AND table = '${t}' ORDER BY position FORMAT JSONEachRow`)).trim().split('\n');
    const columns: ColumnInfo[] = rows.map((r) => {
      const { name, type, default_kind } = JSON.parse(r) as { name: string; type: string; default_kind: string };
      return { name, type, defaultKind: default_kind };
    });
    const typed = typedEncoderFor(columns);
    if ('uncovered' in typed) throw new Error(`typed encoder does not cover ${t}: ${typed.uncovered}`);
    const shape = rowShapeFor(columns);
    const json: RowEncoder = { format: 'JSONEachRow', columns: undefined, write: (out, record, _row, team) => writeRow(out, shape, record, record.value as Buffer, team) };
    encoders.set(t, { json, typed });
  }
  const bodies = (encoder: RowEncoder, batch: number): Buffer[] => {
    const out: Buffer[] = [];
    for (let i = 0; i < records.length; i += batch) {
      const chunks = new ByteChunks();
      for (let j = i; j < Math.min(i + batch, records.length); j++) encoder.write(chunks, records[j] as SourceRecord, (records[j] as SourceRecord).value as Buffer, undefined);
      out.push(Buffer.concat(chunks.slice(0, chunks.length)));
    }
    return out;
  };
  const results = new Map<string, number[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const batch of BATCHES) {
      for (const t of round % 2 === 1 ? tables : [...tables].reverse()) {
        for (const format of ['JSONEachRow', 'RowBinaryWithDefaults'] as const) {
          const enc = encoders.get(t);
          if (enc === undefined) continue;
          const encoder = format === 'JSONEachRow' ? enc.json : enc.typed;
          const list = bodies(encoder, batch);
          await ch.query(`TRUNCATE TABLE posthog.${t}`).catch(() => undefined);
          const before = cpu();
          for (const body of list) await insert(t, encoder.format, body);
          const used = cpu() - before;
          const key = `${t}\t${format}\t${batch}`;
          results.set(key, [...(results.get(key) ?? []), (used / EVENTS) * 1e6]);
          say(`round ${round} ${t} ${format} batches of ${fmtInt(batch)}: ${fmt((used / EVENTS) * 1e6, 2)} CPU-s per M events (${list.length} inserts)`);
        }
      }
    }
  }
  const rows: string[][] = [['table', 'format', 'rows per insert', 'CPU-s per M events (median [min–max])']];
  for (const [key, values] of results) {
    const s = summarize(values);
    rows.push([...key.split('\t'), `${fmt(s.median, 2)} [${fmt(s.min, 2)}–${fmt(s.max, 2)}]`]);
  }
  process.stdout.write(`\n${fmtInt(EVENTS)} generated PostHog events, uncompressed bodies, merges stopped, ${ROUNDS} rounds\n${table(rows)}\n`);
} finally {
  await ch.stop();
}
