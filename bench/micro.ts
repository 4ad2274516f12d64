// Hot-path micro-benchmarks (tinybench): team_id extraction + row decode, row encode with Kafka
// metadata into ByteChunks (pass-through JSONEachRow, and typed RowBinaryWithDefaults for the events
// table; fresh blocks or blocks reused from a BlockPool), and zstd/gzip compression of a 16 MB batch body (docs/benchmarks.md).
//
//   node_modules/.bin/node bench/micro.ts [--time MS] [--json out.json] [--no-alloc]
//
// Inputs are generated PostHog events (dev/posthog/generator.ts, ~1.47 KB each). Decode and encode
// run 1,000 records per iteration, so ops/s × 1,000 = records/s. Allocations per record come from a
// second pass in a child process (bench/lib/alloc-pass.ts).
import { writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createZstdCompress, gzipSync, zstdCompressSync } from 'node:zlib';
import { Bench } from 'tinybench';
import { generate } from '../dev/posthog/generator.ts';
import { BlockPool } from '../src/encode/block-pool.ts';
import { ByteChunks } from '../src/encode/byte-chunks.ts';
import type { ColumnInfo } from '../src/sink/types.ts';
import { rowShapeFor, writeRow, type RowShape } from '../src/encode/json-each-row.ts';
import { typedEncoderFor } from '../src/encode/rowbinary/encoder.ts';
import type { RowEncoder } from '../src/encode/types.ts';
import { decodeJsonRecord, type DecodeOptions } from '../src/decode/json.ts';
import { scanTopLevel, type ValueRange } from '../src/decode/json-scan.ts';
import { scanTopLevelFast } from '../src/decode/json-wasm.ts';
import type { SourceRecord } from '../src/source/types.ts';
import { allocChild, measureAllocations } from './lib/alloc-pass.ts';
import { fmt, fmtInt, table } from './lib/stats.ts';
import { mkdtempSync, writeFileSync as writeFile } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { descriptorSet, toProtobuf } from '../dev/posthog/protobuf.ts';
import { ProtobufDecoder } from '../src/decode/protobuf/decoder.ts';
import { fromBinary, type DescMessage } from '@bufbuild/protobuf';
import { loadDescriptorSet } from '../src/decode/protobuf/descriptors.ts';
import { RowTypes } from '../src/decode/protobuf/row-type.ts';
import type { ObjectRow } from '../src/decode/row.ts';
import { compressionsAlgorithms } from '@platformatic/kafka';
import { decompressLz4Frame, installLz4Decoder } from '../src/source/kafka-lz4.ts';

const { values: argv } = parseArgs({
  options: {
    time: { type: 'string', default: '2000' },
    json: { type: 'string' },
    'no-alloc': { type: 'boolean', default: false },
    'alloc-child': { type: 'boolean', default: false },
  },
  strict: true,
});

const RECORDS_PER_OP = 1_000;
const BODY_BYTES = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// inputs

const generated = [...generate('clickhouse_events_json', { seed: 3, count: RECORDS_PER_OP, teams: 1000 })];
const records: SourceRecord[] = generated.map((m, i) => ({
  topic: 'clickhouse_events_json',
  partition: i % 6,
  offset: BigInt(1_000_000 + i),
  timestamp: BigInt(1_900_000_000_000 + i),
  key: m.key ?? undefined,
  value: m.value,
  headers: [],
  epoch: 0,
}));
const recordBytes = records.reduce((sum, r) => sum + (r.value?.length ?? 0), 0);
const decodeOptions: DecodeOptions = { maxMessageBytes: 4 * 1024 * 1024, teamId: { from: 'field', field: 'team_id' } };
const jsons = records.map((r) => decodeJsonRecord(r, decodeOptions).row);
const teams = records.map((r) => decodeJsonRecord(r, decodeOptions).teamId);

const column = (name: string, type = 'String'): ColumnInfo => ({ name, type, defaultKind: '' });
/** PostHog's events table: `_timestamp` and `_offset`. */
const eventsShape: RowShape = rowShapeFor([column('uuid', 'UUID'), column('_timestamp', 'DateTime'), column('_offset', 'UInt64')]);
/** Every metadata column the Kafka engine has. */
const fullShape: RowShape = rowShapeFor(['_topic', '_partition', '_offset', '_key', '_timestamp', '_timestamp_ms', '_headers.name', '_headers.value'].map((n) => column(n)));

/** PostHog's events table as system.columns lists it (dev/posthog/ddl/events.sql), for the typed encoder. */
const eventsColumns: ColumnInfo[] = [
  ...[
    'uuid UUID',
    'event String',
    'properties String',
    "timestamp DateTime64(6, 'UTC')",
    'team_id Int64',
    'distinct_id String',
    'elements_chain String',
    "created_at DateTime64(6, 'UTC')",
    'person_id UUID',
    'person_created_at DateTime64(3)',
    'person_properties String',
  ]
    .concat(
      [0, 1, 2, 3, 4].map((n) => `group${n}_properties String`),
      [0, 1, 2, 3, 4].map((n) => `group${n}_created_at DateTime64(3)`),
    )
    .concat(["person_mode Enum8('full' = 0, 'propertyless' = 1, 'force_upgrade' = 2)"])
    .map((spec) => {
      const space = spec.indexOf(' ');
      return column(spec.slice(0, space), spec.slice(space + 1));
    }),
  ...['$group_0', '$window_id', '$session_id'].map((name) => ({ name, type: 'String', defaultKind: 'MATERIALIZED' })),
  column('_timestamp', 'DateTime'),
  column('_offset', 'UInt64'),
  { name: 'inserted_at', type: "Nullable(DateTime64(6, 'UTC'))", defaultKind: 'DEFAULT' },
];
const typedEvents = typedEncoderFor(eventsColumns);
if ('uncovered' in typedEvents) throw new Error(`typed encoder does not cover the events table: ${typedEvents.uncovered}`);
const typedEncoder: RowEncoder = typedEvents;

function typedEncodeAll(): ByteChunks {
  const out = new ByteChunks();
  for (let i = 0; i < records.length; i++) typedEncoder.write(out, records[i] as SourceRecord, jsons[i] as Buffer, teams[i]);
  return out;
}

function decodeAndTypedEncodeAll(): ByteChunks {
  const out = new ByteChunks();
  for (const r of records) {
    const { row: json, teamId } = decodeJsonRecord(r, decodeOptions);
    typedEncoder.write(out, r, json, teamId);
  }
  return out;
}

function decodeAll(): number {
  let sum = 0;
  for (const r of records) sum += decodeJsonRecord(r, decodeOptions).teamId ?? 0;
  return sum;
}

const teamKey = Buffer.from('team_id');
const scanRange: ValueRange = { start: 0, end: 0 };

/** The top-level scan for team_id alone, in JavaScript or in WebAssembly (decode/json-wasm.ts). */
function scanAll(scan: typeof scanTopLevel): number {
  let sum = 0;
  for (const json of jsons) sum += scan(json, teamKey, scanRange) ? scanRange.end : 0;
  return sum;
}

function encodeAll(shape: RowShape): ByteChunks {
  const out = new ByteChunks();
  for (let i = 0; i < records.length; i++) writeRow(out, shape, records[i] as SourceRecord, jsons[i] as Buffer, teams[i]);
  return out;
}

const microPool = new BlockPool();

/** encodeAll on blocks reused from a pool, given back when done (as the delivery does after a landed insert). */
function encodeAllPooled(shape: RowShape): number {
  const out = new ByteChunks(microPool);
  for (let i = 0; i < records.length; i++) writeRow(out, shape, records[i] as SourceRecord, jsons[i] as Buffer, teams[i]);
  const length = out.length;
  out.release();
  return length;
}

function decodeAndEncodeAll(): ByteChunks {
  const out = new ByteChunks();
  for (const r of records) {
    const { row: json, teamId } = decodeJsonRecord(r, decodeOptions);
    writeRow(out, eventsShape, r, json, teamId);
  }
  return out;
}

/**
 * A 16 MB JSONEachRow body as the inserter sends it (events shape), of distinct generated events
 * (repeating a few rows would let zstd's long window find whole-row matches and flatter it).
 */
function batchBody(): Buffer {
  const out = new ByteChunks();
  let offset = 0n;
  for (const m of generate('clickhouse_events_json', { seed: 4, count: Math.ceil(BODY_BYTES / 1000), teams: 1000 })) {
    const record: SourceRecord = {
      topic: 'clickhouse_events_json',
      partition: 0,
      offset: offset++,
      timestamp: 1_900_000_000_000n + offset,
      key: m.key ?? undefined,
      value: m.value,
      headers: [],
      epoch: 0,
    };
    writeRow(out, eventsShape, record, m.value, m.teamId);
    if (out.length >= BODY_BYTES) break;
  }
  return Buffer.concat(out.slice(0, BODY_BYTES));
}

interface Case {
  name: string;
  fn: () => unknown;
  /** Input bytes per call (for bytes/s). */
  bytes: number;
  /** Records per call (for records/s); 0 when not record-based. */
  records: number;
}

// The same events as posthog.v1.Event messages (raw Protobuf), read through a descriptor set.
const protobufDir = mkdtempSync(join(tmpdir(), 'micro-protobuf-'));
writeFile(join(protobufDir, 'posthog.binpb'), descriptorSet(['clickhouse_events_json']));
const protobufRecords = records.map((r, i) => ({ ...r, value: toProtobuf(generated[i] as (typeof generated)[number]) }));
const protobufBytes = protobufRecords.reduce((sum, r) => sum + r.value.length, 0);
const protobufDecoder = new ProtobufDecoder(
  { name: 'events', teamId: { from: 'field', field: 'team_id' }, destination: 'team', protobuf: { descriptorSet: 'posthog.binpb', messageType: 'posthog.v1.Event' } },
  { maxMessageBytes: 4 * 1024 * 1024, baseDir: protobufDir },
);
function protobufDecodeAll(json: boolean): number {
  let sum = 0;
  for (const r of protobufRecords) {
    const { row, teamId } = protobufDecoder.decode(r);
    sum += (teamId ?? 0) + (json ? (row as ObjectRow).type.toJson((row as ObjectRow).values).length : 0);
  }
  return sum;
}

// The rows Protobuf decoded to before wire rows: `fromBinary` message objects read by row-type.ts.
const eventRegistry = loadDescriptorSet(join(protobufDir, 'posthog.binpb'));
const eventDesc = eventRegistry.getMessage('posthog.v1.Event') as DescMessage;
const objectType = new RowTypes(eventRegistry).typeOf(eventDesc);
function protobufObjectsAll(encode: 'none' | 'json' | 'typed'): unknown {
  const out = new ByteChunks();
  let sum = 0;
  for (const r of protobufRecords) {
    const row: ObjectRow = { type: objectType, values: fromBinary(eventDesc, r.value, { readUnknownFields: false }), size: 0 };
    if (encode === 'json') sum += objectType.toJson(row.values).length;
    else if (encode === 'typed') typedEncoder.write(out, r, row, 1);
  }
  return encode === 'typed' ? out : sum;
}

/** Protobuf decode of each event, then typed RowBinaryWithDefaults from the object row (no JSON in between). */
function protobufDecodeAndTypedEncodeAll(): ByteChunks {
  const out = new ByteChunks();
  for (const r of protobufRecords) {
    const { row, teamId } = protobufDecoder.decode(r);
    typedEncoder.write(out, r, row, teamId);
  }
  return out;
}

const body = batchBody();
/** The body as a batch holds it: 256 KiB blocks (ByteChunks). */
const bodyBlocks: Buffer[] = [];
for (let i = 0; i < body.length; i += 256 * 1024) bodyBlocks.push(body.subarray(i, i + 256 * 1024));

/**
 * zstd-1 of the body as a stream, as an insert sends it: `chunkSize` is the compressor's output chunk
 * (zlib's default 16 KiB in @clickhouse/client's own compressor; 1 MiB in the sink's, sink.ts). The
 * compression runs on libuv's pool; the main thread runs a callback per output chunk.
 */
async function zstdStream(chunkSize: number | undefined): Promise<number> {
  let out = 0;
  const compressor = createZstdCompress({ ...(chunkSize === undefined ? {} : { chunkSize }), params: { [constants.ZSTD_c_compressionLevel]: 1 } });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done): void {
      out += chunk.length;
      done();
    },
  });
  await pipeline(Readable.from(bodyBlocks, { objectMode: false }), compressor, sink);
  return out;
}
// The 1,000 records as one LZ4 record batch: the Kafka client's decoder vs the C one (source/kafka-lz4.ts).
const clientLz4Decompress = compressionsAlgorithms.lz4.decompressSync;
const lz4Frame = compressionsAlgorithms.lz4.compressSync(Buffer.concat(records.map((r) => r.value ?? Buffer.alloc(0))));
await installLz4Decoder();
const cases: Case[] = [
  { name: 'LZ4 record batch: Kafka client decoder (wasm-utils)', fn: () => clientLz4Decompress(lz4Frame), bytes: recordBytes, records: RECORDS_PER_OP },
  { name: 'LZ4 record batch: C decoder (wasm-lz4)', fn: () => decompressLz4Frame(lz4Frame), bytes: recordBytes, records: RECORDS_PER_OP },
  { name: 'decode: protobuf posthog.v1.Event (wire row: check + index + team_id)', fn: () => protobufDecodeAll(false), bytes: protobufBytes, records: RECORDS_PER_OP },
  { name: 'decode protobuf + toJson (pass-through JSONEachRow row)', fn: () => protobufDecodeAll(true), bytes: protobufBytes, records: RECORDS_PER_OP },
  { name: 'before wire rows: protobuf fromBinary message', fn: () => protobufObjectsAll('none'), bytes: protobufBytes, records: RECORDS_PER_OP },
  { name: 'before wire rows: fromBinary + toJson', fn: () => protobufObjectsAll('json'), bytes: protobufBytes, records: RECORDS_PER_OP },
  { name: 'before wire rows: fromBinary + typed encode', fn: () => protobufObjectsAll('typed'), bytes: protobufBytes, records: RECORDS_PER_OP },
  { name: 'decode: decodeJsonRecord (checks + team_id scan)', fn: decodeAll, bytes: recordBytes, records: RECORDS_PER_OP },
  { name: 'scan for team_id: JavaScript (json-scan.ts)', fn: () => scanAll(scanTopLevel), bytes: recordBytes, records: RECORDS_PER_OP },
  { name: 'scan for team_id: WebAssembly SIMD (json-wasm.ts)', fn: () => scanAll(scanTopLevelFast), bytes: recordBytes, records: RECORDS_PER_OP },
  { name: 'encode: writeRow events shape (_timestamp,_offset)', fn: () => encodeAll(eventsShape), bytes: recordBytes, records: RECORDS_PER_OP },
  { name: 'encode: writeRow events shape, blocks reused (BlockPool)', fn: () => encodeAllPooled(eventsShape), bytes: recordBytes, records: RECORDS_PER_OP },
  { name: 'encode: writeRow all 8 metadata columns', fn: () => encodeAll(fullShape), bytes: recordBytes, records: RECORDS_PER_OP },
  { name: 'decode + encode (events shape)', fn: decodeAndEncodeAll, bytes: recordBytes, records: RECORDS_PER_OP },
  { name: 'encode: typed RowBinaryWithDefaults, events table', fn: typedEncodeAll, bytes: recordBytes, records: RECORDS_PER_OP },
  { name: 'decode + typed encode (events table)', fn: decodeAndTypedEncodeAll, bytes: recordBytes, records: RECORDS_PER_OP },
  { name: 'decode protobuf + typed encode (events table, object rows)', fn: protobufDecodeAndTypedEncodeAll, bytes: protobufBytes, records: RECORDS_PER_OP },
  { name: 'zstd level 3 (client default), 16 MB body', fn: () => zstdCompressSync(body), bytes: body.length, records: 0 },
  { name: 'zstd level 1, 16 MB body', fn: () => zstdCompressSync(body, { params: { [constants.ZSTD_c_compressionLevel]: 1 } }), bytes: body.length, records: 0 },
  { name: 'zstd-1 stream, 16 KiB output chunks (client compressor), 16 MB body', fn: () => zstdStream(undefined), bytes: body.length, records: 0 },
  { name: 'zstd-1 stream, 1 MiB output chunks (sink), 16 MB body', fn: () => zstdStream(1024 * 1024), bytes: body.length, records: 0 },
  { name: 'gzip level 6 (default), 16 MB body', fn: () => gzipSync(body), bytes: body.length, records: 0 },
  { name: 'gzip level 1, 16 MB body', fn: () => gzipSync(body, { level: 1 }), bytes: body.length, records: 0 },
];

// ---------------------------------------------------------------------------------------------
// main

async function main(): Promise<void> {
  const bench = new Bench({ time: Number(argv.time), warmupTime: 300 });
  for (const c of cases) bench.add(c.name, c.fn);
  process.stderr.write(`micro: ${cases.length} cases, ${argv.time} ms each; ${RECORDS_PER_OP} events of ${fmt(recordBytes / RECORDS_PER_OP / 1000, 2)} KB per decode/encode op\n`);
  bench.addEventListener('cycle', (event) => process.stderr.write(`  done: ${event.task?.name ?? ''}\n`));
  await bench.run();
  const allocs = argv['no-alloc'] ? [] : measureAllocations(import.meta.filename);
  const rows: string[][] = [['case', 'ops/s', '±rme', 'records/s', 'MB/s in', 'µs/record', 'heap B/call', 'ArrayBuffer B/call']];
  const results = [];
  for (const c of cases) {
    const task = bench.getTask(c.name);
    const result = task?.result;
    if (result === undefined || !('throughput' in result)) {
      rows.push([c.name, 'failed', '', '', '', '', '', '']);
      continue;
    }
    const opsPerSecond = 1000 / result.latency.mean;
    const alloc = allocs.find((a) => a.name === c.name);
    const allocCell = (n: number | undefined): string => (n === undefined ? '—' : `${alloc?.gcDuringLoop === true ? '≥' : ''}${fmtInt(n)}`);
    rows.push([
      c.name,
      fmt(opsPerSecond, 1),
      `${fmt(result.latency.rme, 1)}%`,
      c.records > 0 ? fmtInt(opsPerSecond * c.records) : '',
      fmt((opsPerSecond * c.bytes) / 1e6, 0),
      c.records > 0 ? fmt((result.latency.mean * 1000) / c.records, 2) : '',
      allocCell(alloc?.heapBytesPerCall),
      allocCell(alloc?.arrayBufferBytesPerCall),
    ]);
    results.push({
      name: c.name,
      opsPerSecond,
      rmePct: result.latency.rme,
      recordsPerSecond: c.records > 0 ? opsPerSecond * c.records : undefined,
      bytesPerSecond: opsPerSecond * c.bytes,
      meanMs: result.latency.mean,
      p99Ms: result.latency.p99,
      samples: result.latency.samplesCount,
      ...(alloc === undefined ? {} : { allocation: alloc }),
    });
  }
  const compressed = {
    zstd3: zstdCompressSync(body).length,
    zstd1: zstdCompressSync(body, { params: { [constants.ZSTD_c_compressionLevel]: 1 } }).length,
    gzip6: gzipSync(body).length,
    gzip1: gzipSync(body, { level: 1 }).length,
  };
  process.stdout.write(`\n${table(rows)}\n\n`);
  process.stdout.write(
    `16 MB body (${fmtInt(body.length)} B) compresses to: zstd-3 ${fmtInt(compressed.zstd3)} B (${fmt(body.length / compressed.zstd3, 1)}x), zstd-1 ${fmtInt(compressed.zstd1)} B, ` +
      `gzip-6 ${fmtInt(compressed.gzip6)} B (${fmt(body.length / compressed.gzip6, 1)}x), gzip-1 ${fmtInt(compressed.gzip1)} B. Decode/encode: 1 op = ${RECORDS_PER_OP} records.\n` +
      'Allocation columns: bytes per op (per 1,000 records for decode/encode); ≥ marks a GC during the measured loop (a lower bound).\n',
  );
  if (argv.json !== undefined) {
    const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', memoryBytes: totalmem(), node: process.version, kernel: release() };
    writeFileSync(
      argv.json,
      `${JSON.stringify({ date: new Date().toISOString(), machine, recordsPerOp: RECORDS_PER_OP, averageRecordBytes: recordBytes / RECORDS_PER_OP, compressed, results }, null, 2)}\n`,
    );
    process.stderr.write(`wrote ${argv.json}\n`);
  }
}

if (argv['alloc-child']) await allocChild(cases);
else await main();
