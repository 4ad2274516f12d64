// One consumer run for bench/source.ts: a KafkaSource, or a KafkaFetchSource with --read-path fetch
// (from --root's src/), reads --events records of
// --topic from the beginning with a fresh group and a handler that only counts; prints the CPU the
// process used while reading (after the first record) and its peak RSS as one JSON line. --lz4 js
// installs the LZ4 decoder of --root's src/source/lz4.ts first (where there is one); --lz4 client
// keeps the client's own.
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const { values: argv } = parseArgs({
  options: {
    root: { type: 'string' },
    bootstrap: { type: 'string' },
    topic: { type: 'string' },
    events: { type: 'string' },
    lz4: { type: 'string', default: 'client' },
    'fetch-max-bytes': { type: 'string', default: String(32 * 1024 * 1024) },
    'read-path': { type: 'string', default: 'stream' },
  },
  strict: true,
});
const root = argv.root ?? process.cwd();
const events = Number(argv.events);
interface SourceLike {
  run(handler: unknown, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
type SourceClass = new (options: unknown) => SourceLike;
const KafkaSource =
  argv['read-path'] === 'fetch'
    ? ((await import(pathToFileURL(join(root, 'src/source/kafka-fetch.ts')).href)) as { KafkaFetchSource: SourceClass }).KafkaFetchSource
    : ((await import(pathToFileURL(join(root, 'src/source/kafka.ts')).href)) as { KafkaSource: SourceClass }).KafkaSource;
if (argv.lz4 === 'js') {
  const { installLz4Decoder } = (await import(pathToFileURL(join(root, 'src/source/lz4.ts')).href)) as { installLz4Decoder: () => void };
  installLz4Decoder();
}
const source = new KafkaSource({
  brokers: [argv.bootstrap],
  clientId: 'bench-source',
  groupId: `bench-source-${process.pid}-${Date.now()}`,
  topics: [argv.topic],
  fetchMaxBytes: Number(argv['fetch-max-bytes']),
  fetchMaxWaitMs: 500,
  sessionTimeoutMs: 30_000,
});
const controller = new AbortController();
let count = 0;
let bytes = 0;
let started: { cpu: NodeJS.CpuUsage; wall: number } | undefined;
let peakRss = 0;
const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 100);
const done = Promise.withResolvers<void>();
const handler = {
  onRecord(record: { value: Buffer | undefined }): void {
    started ??= { cpu: process.cpuUsage(), wall: performance.now() };
    count++;
    bytes += record.value?.length ?? 0;
    if (count === events) done.resolve();
  },
  onAssigned(): void {},
  onRevoked(): void {},
  onReset(): void {},
};
const running = source.run(handler, controller.signal);
running.catch((error: unknown) => done.reject(error));
await done.promise;
const cpu = process.cpuUsage(started?.cpu);
const wall = performance.now() - (started?.wall ?? 0);
clearInterval(rssTimer);
process.stdout.write(`${JSON.stringify({ records: count, bytes, cpuSeconds: (cpu.user + cpu.system) / 1e6, wallSeconds: wall / 1000, peakRss })}\n`);
controller.abort();
await source.close().catch(() => undefined);
process.exit(0);
