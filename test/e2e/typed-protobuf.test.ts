// The typed encoder on object rows from the real Protobuf decoder: the eight PostHog topics,
// generated (dev/posthog/generator.ts), made posthog.v1 messages (dev/posthog/protobuf.ts), decoded
// by ProtobufDecoder from a descriptor set as in production, then inserted twice into twins of each
// PostHog table on a real server — pass-through (the row rendered by toJson into JSONEachRow) and
// typed (RowBinaryWithDefaults from the object row, encode/rowbinary/object-row.ts) — and every
// column of every row must be the same. Tables are Memory twins of the PostHog DDL (no merges).
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadDdl, posthogTables, topicForTable } from '../../dev/posthog/ddl.ts';
import { generate } from '../../dev/posthog/generator.ts';
import { descriptorSet, PROTOBUF_TYPES, toProtobuf } from '../../dev/posthog/protobuf.ts';
import { ProtobufDecoder } from '../../src/decode/protobuf/decoder.ts';
import { ByteChunks } from '../../src/encode/byte-chunks.ts';
import { JsonEachRowEncoder } from '../../src/encode/json-each-row.ts';
import { typedEncoderFor } from '../../src/encode/rowbinary/encoder.ts';
import type { RowEncoder } from '../../src/encode/types.ts';
import type { ColumnInfo } from '../../src/sink/types.ts';
import type { SourceRecord } from '../../src/source/types.ts';
import { startClickHouse, type ClickHouseInstance } from '../helpers/clickhouse.ts';
import { tempDirSync } from '../helpers/temp-dir.ts';

type Topic = keyof typeof PROTOBUF_TYPES;
const ROWS = 400;
const SETTINGS = { input_format_skip_unknown_fields: '1', input_format_defaults_for_omitted_fields: '1', input_format_null_as_default: '1' };

let ch: ClickHouseInstance;
let dir: string;

before(async () => {
  ch = await startClickHouse();
  await ch.query('CREATE DATABASE pb');
  dir = tempDirSync('typed-protobuf-');
  writeFileSync(join(dir, 'posthog.binpb'), descriptorSet(Object.keys(PROTOBUF_TYPES) as Topic[]));
});

after(async () => {
  await ch?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** Runs `sql` with `body` as the sink does (the inserter's input settings); throws the server's error. */
async function post(sql: string, body: Buffer): Promise<void> {
  const params = new URLSearchParams({ ...SETTINGS, query: sql });
  const auth = Buffer.from(`${ch.admin.name}:${ch.admin.password}`).toString('base64');
  const response = await fetch(`${ch.url}/?${params.toString()}`, { method: 'POST', headers: { authorization: `Basic ${auth}` }, body });
  if (!response.ok) throw new Error(`${sql}: ${await response.text()}`);
}

async function insert(table: string, encoder: RowEncoder, records: readonly SourceRecord[], decoder: ProtobufDecoder): Promise<void> {
  const out = new ByteChunks();
  for (const record of records) {
    const { row, teamId } = decoder.decode(record);
    encoder.write(out, record, row, teamId);
  }
  const list = encoder.columns === undefined ? '' : ` (${encoder.columns.map((c) => `\`${c}\``).join(', ')})`;
  await post(`INSERT INTO pb.${table}${list} FORMAT ${encoder.format}`, Buffer.concat(out.slice(0, out.length)));
}

for (const table of posthogTables) {
  test(`${table}: Protobuf object rows inserted typed store exactly what their JSON (toJson → JSONEachRow) stores`, async () => {
    const topic = (topicForTable[table] ?? table) as Topic;
    const ddl = await loadDdl(table, 'pb');
    await ch.query(ddl.replace(`pb.${table}`, `pb.${table}_shape`));
    for (const twin of ['a', 'b']) await ch.query(`CREATE TABLE pb.${table}_${twin} AS pb.${table}_shape ENGINE = Memory`);
    const columns = (
      JSON.parse(
        `[${(await ch.query(`SELECT name, type, default_kind FROM system.columns WHERE database = 'pb' AND table = '${table}_a' ORDER BY position FORMAT JSONEachRow`)).trim().split('\n').join(',')}]`,
      ) as {
        name: string;
        type: string;
        default_kind: string;
      }[]
    ).map((c): ColumnInfo => ({ name: c.name, type: c.type, defaultKind: c.default_kind }));
    const typed = typedEncoderFor(columns);
    if ('uncovered' in typed) assert.fail(`the typed encoder does not cover ${table}: ${typed.uncovered}`);
    const decoder = new ProtobufDecoder(
      { name: table, teamId: { from: 'field', field: 'team_id' }, destination: 'team', protobuf: { descriptorSet: 'posthog.binpb', messageType: PROTOBUF_TYPES[topic].desc.typeName } },
      { maxMessageBytes: 4 * 1024 * 1024, baseDir: dir },
    );
    const records: SourceRecord[] = [...generate(topic, { seed: 17, count: ROWS, teams: 20 })].map((m, i) => ({
      topic,
      partition: i % 3,
      offset: BigInt(i),
      timestamp: BigInt(1_893_456_000_000 + i * 7),
      key: m.key ?? undefined,
      value: toProtobuf(m),
      headers: i % 5 === 0 ? [[Buffer.from('h'), Buffer.from([0xff, 0x41])]] : [],
      epoch: 0,
    }));
    await insert(`${table}_a`, new JsonEachRowEncoder(columns), records, decoder);
    await insert(`${table}_b`, typed, records, decoder);
    // Every stored column (MATERIALIZED included); a DEFAULT of the insert's moment differs by design.
    const compared = (
      await ch.query(
        `SELECT name FROM system.columns WHERE database = 'pb' AND table = '${table}_a' AND NOT (default_kind = 'DEFAULT' AND default_expression LIKE 'now%') AND default_kind != 'ALIAS' ORDER BY position`,
      )
    )
      .trim()
      .split('\n');
    const select = (twin: string): Promise<string> =>
      ch.query(`SELECT ${compared.map((c) => `toString(\`${c}\`)`).join(', ')} FROM pb.${table}_${twin} ORDER BY _offset, cityHash64(*) FORMAT JSONCompactEachRow`);
    const [a, b] = [await select('a'), await select('b')];
    const rowsA = a.trim().split('\n');
    const rowsB = b.trim().split('\n');
    assert.equal(rowsA.length, ROWS, `${table}: all rows stored by pass-through`);
    assert.equal(rowsB.length, ROWS, `${table}: all rows stored by typed`);
    for (let i = 0; i < ROWS; i++) {
      if (rowsA[i] === rowsB[i]) continue;
      const va = JSON.parse(rowsA[i] as string) as string[];
      const vb = JSON.parse(rowsB[i] as string) as string[];
      const diffs = compared.filter((_, k) => va[k] !== vb[k]).map((c) => `${c}: JSONEachRow ${JSON.stringify(va[compared.indexOf(c)])} typed ${JSON.stringify(vb[compared.indexOf(c)])}`);
      assert.fail(`${table} row ${i} differs:\n${diffs.join('\n')}`);
    }
  });
}
