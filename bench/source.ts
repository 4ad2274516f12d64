// Source benchmark: the CPU the Kafka source alone spends per million PostHog events (fetch, batch
// decompression, record parsing, the client's message stream, the source loop), without the
// pipeline, ClickHouse or the other stages; docs/benchmarks.md.
//
//   node_modules/.bin/node bench/source.ts [--events N] [--partitions P] [--rounds R]
//        [--revs work,REV,...] [--lz4 client,js] [--topic-compression lz4,none,zstd]
//        [--fetch-max-bytes B,...] [--read-path fetch,stream] [--json out.json]
//
// Per topic compression, starts a Kafka broker and preloads N events (dev/posthog/produce.ts),
// then runs every combination of revision (`work`: the work tree; else `git archive REV`), LZ4
// decoder (`client`: @platformatic/kafka's WebAssembly one; `js`: the revision's src/source/lz4.ts
// where it has one — a plain-JavaScript decoder tried and not kept, see docs/benchmarks.md) and
// fetch size (kafka.fetchMaxBytes) and read path (`fetch`: KafkaFetchSource, where the revision has
// src/source/kafka-fetch.ts; `stream`: KafkaSource on the client's message stream), R rounds, alternating, each a child process
// (bench/lib/source-child.ts) reading the whole topic with a fresh group. Prints medians.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createTopic, REPO_ROOT, startKafka } from '../test/helpers/kafka.ts';
import { fmt, summarize } from './lib/stats.ts';

const { values: argv } = parseArgs({
  options: {
    events: { type: 'string', default: '300000' },
    partitions: { type: 'string', default: '6' },
    rounds: { type: 'string', default: '3' },
    revs: { type: 'string', default: 'work' },
    lz4: { type: 'string', default: 'client,js' },
    'read-path': { type: 'string', default: 'fetch' },
    'topic-compression': { type: 'string', default: 'lz4' },
    'fetch-max-bytes': { type: 'string', default: String(32 * 1024 * 1024) },
    json: { type: 'string' },
  },
  strict: true,
});
const EVENTS = Number(argv.events);
const PARTITIONS = Number(argv.partitions);
const ROUNDS = Number(argv.rounds);
const say = (text: string): boolean => process.stderr.write(`${text}\n`);

function rootOf(rev: string): string {
  if (rev === 'work') return REPO_ROOT;
  const sha = execFileSync('git', ['rev-parse', rev], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  const dir = mkdtempSync(join(tmpdir(), 'inserter-bench-rev-'));
  execFileSync('bash', ['-c', `git archive ${sha} bin src package.json | tar -x -C '${dir}'`], { cwd: REPO_ROOT });
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function run(cmd: string, args: string[]): Promise<string> {
  const child = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-3000)));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${args.join(' ')} exited with ${code}: ${err}`);
  return out;
}

const node = join(REPO_ROOT, 'node_modules', '.bin', 'node');
const TOPIC = 'clickhouse_events_json';
const roots = new Map(argv.revs.split(',').map((rev) => [rev, rootOf(rev)]));
const results = new Map<string, Array<{ cpuSeconds: number; wallSeconds: number; peakRss: number; load: number }>>();
// One broker per topic compression (produce.ts writes PostHog's topic names only).
for (const compression of argv['topic-compression'].split(',')) {
  const kafka = await startKafka();
  const stop = (): void => void kafka.stop().finally(() => process.exit(130));
  process.once('SIGINT', stop);
  try {
    await createTopic(kafka.bootstrap, TOPIC, PARTITIONS, { 'retention.ms': '-1' });
    await run(node, [
      'dev/posthog/produce.ts',
      '--bootstrap',
      kafka.bootstrap,
      '--topic',
      TOPIC,
      '--count',
      String(EVENTS),
      '--partitions',
      String(PARTITIONS),
      '--teams',
      '1000',
      '--inflight',
      '8',
      '--compression',
      compression,
    ]);
    say(`preloaded ${EVENTS} events (${compression})`);
    const variants: Array<{ label: string; root: string; lz4: string; fetchMaxBytes: string; readPath: string }> = [];
    const readPaths = argv['read-path'].split(',');
    const fetchSizes = argv['fetch-max-bytes'].split(',');
    for (const [rev, root] of roots) {
      for (const lz4 of argv.lz4.split(',')) {
        if (lz4 === 'js' && (compression !== 'lz4' || !existsSync(join(root, 'src/source/lz4.ts')))) continue;
        for (const fetchMaxBytes of fetchSizes) {
          for (const readPath of readPaths) {
            if (readPath === 'fetch' && !existsSync(join(root, 'src/source/kafka-fetch.ts'))) continue;
            const fetch = fetchSizes.length > 1 ? ` fetch=${Math.round(Number(fetchMaxBytes) / 1048576)}MiB` : '';
            const path = readPaths.length > 1 ? ` ${readPath}` : '';
            variants.push({ label: `${rev} lz4=${lz4} topic=${compression}${fetch}${path}`, root, lz4, fetchMaxBytes, readPath });
          }
        }
      }
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const v of round % 2 === 1 ? variants : [...variants].reverse()) {
        const load = loadavg()[0] ?? 0;
        const line = await run(node, [
          'bench/lib/source-child.ts',
          '--root',
          v.root,
          '--bootstrap',
          kafka.bootstrap,
          '--topic',
          TOPIC,
          '--events',
          String(EVENTS),
          '--lz4',
          v.lz4,
          '--fetch-max-bytes',
          v.fetchMaxBytes,
          '--read-path',
          v.readPath,
        ]);
        const r = JSON.parse(line.trim().split('\n').at(-1) ?? '{}') as { cpuSeconds: number; wallSeconds: number; peakRss: number };
        const list = results.get(v.label) ?? [];
        list.push({ ...r, load });
        results.set(v.label, list);
        say(`round ${round} ${v.label.padEnd(48)} ${fmt((r.cpuSeconds * 1e6) / EVENTS)} CPU-s/M  ${fmt(r.wallSeconds)} s  peak RSS ${Math.round(r.peakRss / 1048576)} MiB  load ${fmt(load)}`);
      }
    }
  } finally {
    process.off('SIGINT', stop);
    await kafka.stop();
  }
}
say('\nmedian [min–max] CPU-s per million events, source only:');
for (const [label, list] of results) {
  const s = summarize(list.map((r) => (r.cpuSeconds * 1e6) / EVENTS));
  const rss = summarize(list.map((r) => r.peakRss / 1048576));
  say(`${label.padEnd(48)} ${fmt(s.median)} [${fmt(s.min)}–${fmt(s.max)}]  peak RSS ${Math.round(rss.median)} MiB  (${list.length} runs)`);
}
if (argv.json !== undefined) writeFileSync(argv.json, JSON.stringify({ events: EVENTS, partitions: PARTITIONS, results: Object.fromEntries(results) }, null, 2));
