// The drain benchmark's command line: parses argv once (--help prints the usage in bench/drain.ts's
// header) and derives every setting the phases share — event count, partitions, runs, which
// inserter revision and overrides each system runs with, the topics, the systems compared.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statfsSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../../test/helpers/kafka.ts';
import { mib } from '../lib/stats.ts';

export const { values: argv } = parseArgs({
  options: {
    events: { type: 'string' },
    partitions: { type: 'string', default: '6' },
    runs: { type: 'string', default: '3' },
    json: { type: 'string' },
    'latency-seconds': { type: 'string', default: '30' },
    'latency-rate': { type: 'string' },
    'no-engine': { type: 'boolean', default: false },
    'no-latency': { type: 'boolean', default: false },
    profile: { type: 'string' },
    rev: { type: 'string' },
    'topic-compression': { type: 'string', default: 'lz4' },
    compression: { type: 'string' },
    'max-buffered-mib': { type: 'string' },
    'fetch-max-bytes': { type: 'string' },
    'inserter-env': { type: 'string', multiple: true },
    batch: { type: 'string' },
    'variant-env': { type: 'string', multiple: true },
    'variant-compression': { type: 'string' },
    'variant-batch': { type: 'string' },
    'variant-no-ledger': { type: 'boolean', default: false },
    'variant-rev': { type: 'string' },
    'variant-encoding': { type: 'string' },
    'variant-fetch-max-bytes': { type: 'string' },
    'variant-max-buffered-mib': { type: 'string' },
    typed: { type: 'boolean', default: false },
    format: { type: 'string', default: 'json' },
    'profile-system': { type: 'string', default: 'inserter' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (argv.help) {
  process.stderr.write(
    // The usage is the entry point's header comment, not this module's.
    readFileSync(join(import.meta.dirname, '..', 'drain.ts'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('//'))
      .slice(0, 39)
      .map((l) => l.slice(3))
      .join('\n') + '\n',
  );
  process.exit(0);
}

const DEFAULT_EVENTS = 2_000_000;
const EVENT_BYTES = 1_500; // generated events average ~1.47 KB
const positiveInt = (value: string | undefined, name: string, fallback: number): number => {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
};
export const PARTITIONS = positiveInt(argv.partitions, 'partitions', 6);
export const RUNS = argv.runs === '0' ? 0 : positiveInt(argv.runs, 'runs', 3); // 0: only --profile
export const LATENCY_SECONDS = positiveInt(argv['latency-seconds'], 'latency-seconds', 30);
export const LATENCY_RATE = argv['latency-rate'] === undefined ? undefined : positiveInt(argv['latency-rate'], 'latency-rate', 1);
/** Things the report should mention about how this run was set up (e.g. a defaulted --events). */
export const notes: string[] = [];

function chooseEvents(): number {
  if (argv.events !== undefined) return positiveInt(argv.events, 'events', DEFAULT_EVENTS);
  // The topic (lz4, ~2x) plus one table at a time; keep 2x headroom on the temp disk.
  const stat = statfsSync(tmpdir());
  const free = stat.bavail * stat.bsize;
  const need = DEFAULT_EVENTS * EVENT_BYTES * 2;
  if (free >= need) return DEFAULT_EVENTS;
  const fallback = Math.max(100_000, Math.floor(free / (EVENT_BYTES * 2) / 100_000) * 100_000);
  notes.push(`only ${mib(free)} free in ${tmpdir()}: --events defaulted to ${fallback} instead of ${DEFAULT_EVENTS}`);
  return fallback;
}
export const EVENTS = chooseEvents();

/** Where bin/inserter comes from: the work tree, or `git archive REV` in a temp dir (--rev). */
function inserterRoot(rev: string | undefined): { root: string; rev: string } {
  const git = (...args: string[]): string => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  if (rev === undefined) {
    const dirty = git('status', '--porcelain', '--', 'src', 'bin').length > 0;
    return { root: REPO_ROOT, rev: `${git('rev-parse', 'HEAD')}${dirty ? ' + uncommitted changes in src/ or bin/' : ''} (work tree)` };
  }
  const sha = git('rev-parse', rev);
  const dir = mkdtempSync(join(tmpdir(), 'inserter-bench-rev-'));
  execFileSync('bash', ['-c', `git archive ${sha} bin src package.json | tar -x -C '${dir}'`], { cwd: REPO_ROOT });
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return { root: dir, rev: sha };
}
export const INSERTER = inserterRoot(argv.rev);
/** --variant-rev REV: the variant system runs the inserter of REV (else the same as the others). */
export const VARIANT_INSERTER = argv['variant-rev'] === undefined ? INSERTER : inserterRoot(argv['variant-rev']);
/** --inserter-env K=V (repeatable): more environment for the inserter process (e.g. glibc's MALLOC_ARENA_MAX). */
export const INSERTER_ENV: Record<string, string> = Object.fromEntries((argv['inserter-env'] ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
/** --batch maxBytes=67108864,maxAgeMs=5000: the inserter's `batch` settings (numbers). */
function batchOption(option: string | undefined): Record<string, number> | undefined {
  return option === undefined
    ? undefined
    : Object.fromEntries(
        option.split(',').map((kv) => {
          const [k = '', v = ''] = kv.split('=');
          if (!['maxRows', 'maxBytes', 'maxAgeMs'].includes(k) || !Number.isInteger(Number(v))) throw new Error(`--batch: expected maxRows|maxBytes|maxAgeMs=N, got ${kv}`);
          return [k, Number(v)];
        }),
      );
}
export const BATCH = batchOption(argv.batch);
/** --variant-encoding typed: the variant system encodes typed (an A/B of the typed path; default pass-through). */
export const VARIANT_ENCODING: 'passthrough' | 'typed' = argv['variant-encoding'] === 'typed' ? 'typed' : 'passthrough';
export const VARIANT_BATCH = { ...BATCH, ...batchOption(argv['variant-batch']) };
export const VARIANT =
  argv['variant-rev'] !== undefined ||
  argv['variant-encoding'] !== undefined ||
  argv['variant-env'] !== undefined ||
  argv['variant-compression'] !== undefined ||
  argv['variant-batch'] !== undefined ||
  argv['variant-fetch-max-bytes'] !== undefined ||
  argv['variant-max-buffered-mib'] !== undefined ||
  argv['variant-no-ledger'];
export const VARIANT_ENV: Record<string, string> = Object.fromEntries((argv['variant-env'] ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
export const TOPIC = 'clickhouse_events_json';
if (argv.format !== 'json' && argv.format !== 'protobuf') throw new Error(`--format must be json or protobuf, got ${argv.format}`);
export const PROTOBUF = argv.format === 'protobuf';
/** The engine's topic: with --format protobuf, a JSON copy of the same events. */
export const ENGINE_TOPIC = PROTOBUF ? `${TOPIC}_engine` : TOPIC;
if (argv['profile-system'] !== 'inserter' && argv['profile-system'] !== 'typed') throw new Error(`--profile-system must be inserter or typed, got ${argv['profile-system']}`);
export const PROFILE_SYSTEM: 'inserter' | 'typed' = argv['profile-system'];

/** `inserter`: pass-through JSONEachRow; `typed`: the inserter with `encoding: typed`; `engine`: ClickHouse's Kafka engine. */
export type System = 'inserter' | 'typed' | 'variant' | 'engine';

/** The inserter systems this run drains (always the pass-through inserter; --typed, --variant-* add theirs). */
export const inserterSystems: readonly System[] = [...(['inserter'] as const), ...(argv.typed ? (['typed'] as const) : []), ...(VARIANT ? (['variant'] as const) : [])];
/** Every system drained in each run: the inserter systems, then the engine unless --no-engine. */
export const comparedSystems: readonly System[] = [...inserterSystems, ...(argv['no-engine'] ? [] : (['engine'] as const))];
