// The command line as a user runs it: `version`, and `check-config` explaining a good file and
// naming every field at fault in a bad one, without printing secrets.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { tempDirSync } from '../../helpers/temp-dir.ts';

const bin = resolve(import.meta.dirname, '..', '..', '..', 'bin', 'inserter');
const run = (args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; out: string; err: string } => {
  const r = spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

test('version prints the package version and the runtime', () => {
  const { code, out } = run(['version']);
  assert.equal(code, 0);
  assert.match(out, /^inserter \d+\.\d+\.\d+ \(node v24\./);
});

test('INSERTER_MEMORY_MODE: lean by default (small young generation, glibc mmap threshold), throughput adds the V8 flag, anything else is refused by name', () => {
  assert.match(run(['version']).out, /memory mode lean: --max-semi-space-size=2, MALLOC_MMAP_THRESHOLD_=1048576\)$/m);
  assert.match(run(['version'], { MALLOC_MMAP_THRESHOLD_: '131072' }).out, /MALLOC_MMAP_THRESHOLD_=131072\)$/m, "the operator's value wins");
  assert.match(run(['version'], { NODE_OPTIONS: '--max-semi-space-size=8' }).out, /memory mode lean: MALLOC_MMAP_THRESHOLD_=1048576\)$/m, "the operator's NODE_OPTIONS win");
  assert.match(run(['version'], { INSERTER_MEMORY_MODE: 'throughput' }).out, /memory mode throughput: --external-memory-accounted-in-global-limit\)$/m);
  const bad = run(['version'], { INSERTER_MEMORY_MODE: 'fast' });
  assert.equal(bad.code, 2);
  assert.match(bad.err, /INSERTER_MEMORY_MODE must be lean or throughput, not 'fast'/);
});

test('check-config explains a valid file and never prints its secrets', () => {
  const { code, out, err } = run(['check-config', resolve(import.meta.dirname, '..', '..', '..', 'config', 'posthog.example.yaml')], {
    CLUSTER_A_PASSWORD: 'canary-cli-9d2f',
    CLUSTER_B_PASSWORD: 'x',
  });
  assert.equal(code, 0, err);
  assert.match(out, /configuration OK: 8 route\(s\), 2 destination\(s\)/);
  assert.match(out, /route clickhouse_events_json->events: clickhouse_events_json → <destination db>\.events via by team/);
  assert.ok(!out.includes('canary-cli-9d2f') && !err.includes('canary-cli-9d2f'));
});

test('check-config refuses a URL carrying credentials, naming the field, and never prints them', () => {
  const dir = tempDirSync('inserter-cli-');
  const file = join(dir, 'creds.yaml');
  writeFileSync(
    file,
    'kafka: { brokers: ["127.0.0.1:9092"] }\ndestinations: [{ id: a, url: "https://writer:CANARY-cli-url-77@ch.example:8443" }]\ndestinationsApi: { url: "https://svc:CANARY-cli-url-77@api.example", token: t }\nroutes: [{ topic: t, table: t, destination: a }]\n',
  );
  const { code, out, err } = run(['check-config', file]);
  assert.equal(code, 1, out);
  assert.match(err, /destinations\.0\.url: must not carry credentials/);
  assert.match(err, /destinationsApi\.url: must not carry credentials/);
  assert.ok(!out.includes('CANARY-cli-url-77') && !err.includes('CANARY-cli-url-77'), `credentials printed:\n${out}${err}`);
});

test('check-config explains the destinations API allowlist: hosts, schemes, TLS folder', () => {
  const dir = tempDirSync('inserter-cli-');
  const file = join(dir, 'api.yaml');
  writeFileSync(
    file,
    'kafka: { brokers: ["127.0.0.1:9092"] }\ndestinations: [{ id: a, url: "https://ch.corp.example:8443" }]\ndestinationsApi: { url: "https://api.example", token: CANARY-cli-tok-19, allowedHosts: ["*.clickhouse.cloud"], tlsDir: "." }\nroutes: [{ topic: t, table: t }]\n',
  );
  const { code, out, err } = run(['check-config', file]);
  assert.equal(code, 0, err);
  assert.match(out, /destinations API: https:\/\/api\.example \(token set/);
  assert.match(out, /trusted only on: loopback, the YAML destinations' hosts \(ch\.corp\.example\), destinationsApi\.allowedHosts \(\*\.clickhouse\.cloud\)/);
  assert.match(out, /schemes: https; plain http to loopback only/);
  assert.ok(out.includes(`TLS files they name: only inside ${dir}`), out);
  assert.ok(!out.includes('CANARY-cli-tok-19'));
});

test('check-config names every field at fault at once and exits 1', () => {
  const dir = tempDirSync('inserter-cli-');
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'kafka: { brokers: ["nohost"] }\ndestinations: [{ id: a, url: "ftp://x" }]\nroutes: [{ topic: t, table: "bad-name" }]\nbatch: { maxRows: 0 }\n');
  const { code, err } = run(['check-config', file]);
  assert.equal(code, 1);
  for (const field of ['kafka.brokers.0', 'destinations.0.url', 'routes.0.table', 'batch.maxRows']) assert.ok(err.includes(field), `${field} named in:\n${err}`);
  assert.equal(run(['check-config']).code, 2);
  assert.equal(run(['no-such-command']).code, 2);
});
