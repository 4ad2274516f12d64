// Property-based fuzzing (fast-check) of the configuration: a valid config with one field replaced
// by anything, removed, or given a secret where it does not belong, as an object (buildConfig) and as
// mutated YAML text (loadConfigFile). For every input the loader either returns a frozen config or
// throws a ConfigError whose issues each name a field (`path: message`); nothing else escapes, and
// no message carries a secret (passwords, tokens, a URL's user:password). Seeded: FUZZ_SEED=<n>
// replays a run; FUZZ_RUNS=<n> runs longer.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { buildConfig, loadConfigFile, type Config } from '../../../src/config/load.ts';
import { ConfigError } from '../../../src/errors/inserter-error.ts';
import { tempDirSync } from '../../helpers/temp-dir.ts';

// CI runs one fixed seed (a run there must not fail by the luck of the draw); elsewhere each run draws anew.
const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : process.env.CI === 'true' ? 20261206 : undefined;
const numRuns = Number(process.env.FUZZ_RUNS ?? 400);
const params = { numRuns, ...(seed === undefined ? {} : { seed }) };

const dir = tempDirSync('fuzz-config-');
after(() => rmSync(dir, { recursive: true, force: true }));
const SECRET = 'Zq7-s3cr3t-value';
const env = { FUZZ_TOKEN: `${SECRET}-env-token-long` };

function base(): Record<string, unknown> {
  return {
    kafka: { brokers: ['127.0.0.1:9092'], groupId: 'g', sasl: { mechanism: 'SCRAM-SHA-512', username: 'u', password: `${SECRET}-sasl` } },
    destinations: [{ id: 'a', url: 'https://ch.example.com:8443', database: 'db', user: 'default', password: `${SECRET}-ch` }],
    destinationsApi: { url: 'https://api.example.com', token: { env: 'FUZZ_TOKEN' }, allowedHosts: ['*.clickhouse.cloud'] },
    admin: { listen: '127.0.0.1:0', token: `${SECRET}-admin-token` },
    routes: [{ topic: 'events', table: 't', destination: 'a', deadLetterTopic: 'events.dlq' }],
    teams: { map: { '1': 'a' } },
  };
}

/** Every path to a value of the base config (objects and arrays walked). */
function paths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}
const allPaths = paths(base()).filter((p) => p.length > 0);

function setAt(root: Record<string, unknown>, path: Array<string | number>, value: unknown, remove: boolean): void {
  let node = root as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (remove) delete node[last];
  else node[last] = value;
}

// Anywhere: anything, or a URL with credentials (a message may quote a value, never a URL's user:password).
const urlSecrets = fc.constantFrom(`https://u:${SECRET}@ch.example.com`, `http://x:${SECRET}@x`, `https://user:${SECRET}@api.example.com/v1`);
// In a secret's place (password, token): a secret of any shape, or a reference that does not resolve.
const secretPaths = allPaths.filter((p) => /password|token/i.test(String(p.at(-1))));
const secretValues = fc.constantFrom(SECRET, `${SECRET}\n`, `short-${SECRET}`.slice(0, 8), { env: 'FUZZ_MISSING_ENV' }, { file: 'missing-secret-file' }, 12345);
const mutation = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...allPaths), fc.oneof({ weight: 3, arbitrary: fc.anything() }, { weight: 2, arbitrary: urlSecrets }), fc.boolean()) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...secretPaths), secretValues, fc.constant(false)) },
);
const configs = fc.array(mutation, { minLength: 0, maxLength: 3 }).map((mutations) => {
  const raw = base();
  for (const [path, value, remove] of mutations) {
    try {
      setAt(raw, path, value, remove);
    } catch {
      // an earlier mutation replaced a parent with a scalar: this one has nowhere to go
    }
  }
  return raw;
});

function noSecret(text: string): void {
  assert.ok(!text.includes(SECRET), `a message carries a secret: ${text}`);
}

function isDeeplyFrozen(value: unknown, seen = new Set<unknown>()): boolean {
  if (value === null || typeof value !== 'object' || seen.has(value)) return true;
  seen.add(value);
  if (value.constructor?.name === 'Secret') return true;
  return Object.isFrozen(value) && Object.values(value).every((v) => isDeeplyFrozen(v, seen));
}

const outcomes = { ok: 0, invalid: 0 };

function check(load: () => Config): void {
  let config: Config;
  try {
    config = load();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `only a ConfigError escapes (got ${error instanceof Error ? error.stack : String(error)})`);
    assert.ok(error.issues.length > 0);
    for (const issue of error.issues) assert.ok(issue.startsWith('(root): ') || issue.startsWith(dir) || /^[A-Za-z]+(\.|: )/.test(issue), `an issue names its field: ${issue}`);
    noSecret(error.message);
    outcomes.invalid++;
    return;
  }
  assert.ok(isDeeplyFrozen(config), 'a frozen config');
  // Secrets are wrapped: they never print (a URL with credentials is refused wherever a URL is expected).
  const printed = JSON.stringify(config);
  for (const s of [`${SECRET}-sasl`, `${SECRET}-ch`, `${SECRET}-admin-token`, env.FUZZ_TOKEN]) assert.ok(!printed.includes(s), 'a secret prints');
  for (const u of [config.destinationsApi?.url, ...config.destinations.map((d) => d.url)]) if (u !== undefined) assert.equal(new URL(u).password, '', 'a URL with credentials');
  outcomes.ok++;
}

test('a valid config with fields replaced, removed or given secrets: a frozen config, or a ConfigError naming fields without a secret', () => {
  fc.assert(
    fc.property(configs, (raw) => check(() => buildConfig(raw, dir, env))),
    params,
  );
  assert.ok(outcomes.ok > 0 && outcomes.invalid > 0, JSON.stringify(outcomes));
});

test('mutated YAML text: the same, through the file loader', () => {
  const text = fc.tuple(configs, fc.nat(), fc.constantFrom('truncate', 'insert', 'delete', 'indent'), fc.string({ maxLength: 4 })).map(([raw, at, how, chunk]) => {
    const t = stringify(raw);
    const i = at % (t.length + 1);
    if (how === 'truncate') return t.slice(0, i);
    if (how === 'insert') return t.slice(0, i) + chunk + t.slice(i);
    if (how === 'delete') return t.slice(0, i) + t.slice(i + 1);
    return t.slice(0, i) + '\n  ' + t.slice(i);
  });
  const file = join(dir, 'config.yaml');
  fc.assert(
    fc.property(text, (yaml) => {
      writeFileSync(file, yaml);
      check(() => loadConfigFile(file, env));
    }),
    params,
  );
});
