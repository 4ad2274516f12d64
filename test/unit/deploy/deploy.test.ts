// deploy/ stays true to the code: the alert rules pass `promtool check rules`; the dashboard and the
// rules use only metric names that src/telemetry/metrics.ts or the destinations provider define; the
// ConfigMap's configuration validates; the probes point at /healthz and /readyz on the admin port.
// promtool: $PROMTOOL, on PATH, or built once into .cache/promtool/bin with `go install` (skipped,
// saying why, when none of these works).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { buildConfig } from '../../../src/config/load.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const RULES = join(ROOT, 'deploy', 'prometheus', 'inserter-alerts.yaml');
const DASHBOARD = join(ROOT, 'deploy', 'grafana', 'inserter-dashboard.json');
const K8S = join(ROOT, 'deploy', 'kubernetes');

function definedMetrics(): Set<string> {
  const names = new Set<string>();
  for (const file of ['src/telemetry/metrics.ts', 'src/route/providers/metrics.ts', 'src/deadletter/metrics.ts']) {
    for (const m of readFileSync(join(ROOT, file), 'utf8').matchAll(/name: '(inserter_[a-z0-9_]+)'/g)) if (m[1] !== undefined) names.add(m[1]);
  }
  return names;
}

function unknownMetrics(exprs: readonly string[]): string[] {
  const known = definedMetrics();
  const unknown = new Set<string>();
  for (const expr of exprs) {
    for (const m of expr.matchAll(/\binserter_[a-z0-9_]+/g)) {
      const name = m[0];
      const base = name.replace(/_(bucket|sum|count)$/, '');
      if (!known.has(name) && !known.has(base)) unknown.add(name);
    }
  }
  return [...unknown];
}

function promtool(): { path: string } | { skip: string } {
  const candidates = [process.env.PROMTOOL, join(ROOT, '.cache', 'promtool', 'bin', 'promtool')];
  for (const c of candidates) if (c !== undefined && c !== '' && existsSync(c)) return { path: c };
  if (spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0) return { path: 'promtool' };
  if (spawnSync('go', ['version'], { stdio: 'ignore' }).status !== 0) return { skip: 'promtool not found ($PROMTOOL, PATH, .cache/promtool/bin) and no Go toolchain to build it' };
  const built = spawnSync('go', ['install', 'github.com/prometheus/prometheus/cmd/promtool@latest'], {
    env: { ...process.env, GOBIN: join(ROOT, '.cache', 'promtool', 'bin') },
    encoding: 'utf8',
    timeout: 20 * 60_000,
  });
  const path = join(ROOT, '.cache', 'promtool', 'bin', 'promtool');
  if (built.status === 0 && existsSync(path)) return { path };
  return { skip: `promtool could not be built with go install (exit ${built.status}): ${(built.stderr ?? '').split('\n').slice(-3).join(' ')}` };
}

test('alert rules pass promtool check rules', (t) => {
  const tool = promtool();
  if ('skip' in tool) {
    t.skip(tool.skip);
    return;
  }
  const out = execFileSync(tool.path, ['check', 'rules', RULES], { encoding: 'utf8' });
  assert.match(out, /SUCCESS: \d+ rules found/);
});

test('alert rules cover the operational failures and use only defined metrics', () => {
  const doc = parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  const rules = doc.groups.flatMap((g) => g.rules);
  const alerts = rules.map((r) => r.alert);
  for (const name of ['InserterLagGrowing', 'InserterDestinationFailing', 'InserterDeadLettersRising', 'InserterDestinationsConfigStale', 'InserterPausedTooLong'])
    assert.ok(alerts.includes(name), name);
  assert.deepEqual(unknownMetrics(rules.map((r) => r.expr)), []);
});

test('the dashboard parses and references only defined metrics', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
  const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
  assert.ok(exprs.length >= 10);
  assert.deepEqual(unknownMetrics(exprs), []);
  const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\binserter_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''))));
  for (const name of ['inserter_consumer_lag', 'inserter_destination_state', 'inserter_destination_inflight_bytes', 'inserter_pause_age_seconds', 'inserter_dead_letters_total'])
    assert.ok(used.has(name), `dashboard shows ${name}`);
});

test('the Kubernetes manifests: config validates, probes on /healthz and /readyz, secrets from a Secret', () => {
  const docs = ['configmap.yaml', 'deployment.yaml', 'service.yaml', 'pdb.yaml', 'secret.example.yaml'].flatMap((f) =>
    parseAllDocuments(readFileSync(join(K8S, f), 'utf8')).map((d) => d.toJS() as Record<string, unknown>),
  );
  const byKind = new Map(docs.map((d) => [d.kind as string, d]));
  const configMap = byKind.get('ConfigMap') as { data: Record<string, string> };
  const secret = byKind.get('Secret') as { stringData: Record<string, string> };
  const config = buildConfig(parse(configMap.data['inserter.yaml'] ?? ''), '/etc/inserter', secret.stringData);
  assert.ok(config.admin !== undefined, 'the admin API is on');
  const port = config.admin.listen.split(':')[1];
  const deployment = byKind.get('Deployment') as { spec: { replicas: number; template: { spec: { terminationGracePeriodSeconds: number; containers: Array<Record<string, unknown>> } } } };
  const container = deployment.spec.template.spec.containers[0] as {
    ports: Array<{ name: string; containerPort: number }>;
    livenessProbe: { httpGet: { path: string } };
    readinessProbe: { httpGet: { path: string } };
    envFrom: Array<{ secretRef: { name: string } }>;
  };
  assert.equal(String(container.ports.find((p) => p.name === 'admin')?.containerPort), port);
  assert.equal(container.livenessProbe.httpGet.path, '/healthz');
  assert.equal(container.readinessProbe.httpGet.path, '/readyz');
  assert.equal(container.envFrom[0]?.secretRef.name, 'inserter-secrets');
  assert.ok(deployment.spec.replicas > 1);
  assert.ok(config.shutdownTimeoutMs < deployment.spec.template.spec.terminationGracePeriodSeconds * 1000, 'graceful shutdown fits the grace period');
});
