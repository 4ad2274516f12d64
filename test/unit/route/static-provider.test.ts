import assert from 'node:assert/strict';
import { rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { stringify } from 'yaml';
import { buildConfig } from '../../../src/config/load.ts';
import { DestinationsError, type DestinationSnapshot } from '../../../src/route/provider.ts';
import { StaticConfigProvider, StaticFileProvider } from '../../../src/route/providers/static.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { tempDir } from '../../helpers/temp-dir.ts';

const never = new AbortController().signal;
const CANARY = 'CANARY-file-pw-3c1d';

const doc = (password: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  destinations: [{ id: 'a', url: 'http://127.0.0.1:8123', password }],
  teams: [{ team_id: 5, destination: 'a' }],
  ...extra,
});

test('the YAML config provider serves the config as it is today', async () => {
  const config = buildConfig(
    { kafka: { brokers: ['127.0.0.1:9092'] }, destinations: [{ id: 'a', url: 'http://127.0.0.1:8123' }], teams: { map: { '2': 'a' } }, routes: [{ topic: 'e', table: 'e' }] },
    '/',
    {},
  );
  const provider = new StaticConfigProvider(config);
  await provider.start(never);
  assert.equal(provider.snapshot().destinations.get('a'), config.destinations[0]);
  assert.equal(await provider.lookupTeam(2), 'a');
  assert.equal(await provider.lookupTeam(3), undefined);
  await provider.close();
  await provider.close();
});

test('the static file provider reads YAML or JSON, re-reads on change, keeps the last good on a bad edit', async (t) => {
  const dir = await tempDir('inserter-dest-');
  const file = join(dir, 'destinations.yaml');
  await writeFile(file, stringify(doc(CANARY)));
  const lines: string[] = [];
  const logger = createLogger('debug', new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) }));
  const registry = new Registry();
  const provider = new StaticFileProvider({ path: file, reloadIntervalMs: 20 }, { logger, registry });
  t.after(async () => {
    await provider.close();
    await rm(dir, { recursive: true, force: true });
  });
  await provider.start(never);
  const first = provider.snapshot();
  assert.match(first.version, /^file@\d{4}-/, 'no version in the file: its mtime');
  assert.equal(first.destinations.get('a')?.password.reveal(), CANARY);
  assert.equal(await provider.lookupTeam(5), 'a');

  await writeFile(file, `destinations: [{ id: a, password: ${CANARY}, url: "ftp://x" }]\nteams: []\n`);
  await assert.rejects(provider.reload(), (e: unknown) => e instanceof DestinationsError && e.reason === 'invalid' && /destinations\.0\.url/.test(e.message));
  await writeFile(file, `destinations: [ {id: a, password: ${CANARY}\n  nested: : :`);
  await assert.rejects(provider.reload(), (e: unknown) => e instanceof DestinationsError && e.reason === 'not_json');
  assert.equal(provider.snapshot(), first);

  const changed = new Promise<DestinationSnapshot>((resolve) => provider.onChange(resolve));
  await writeFile(file, JSON.stringify(doc('rotated', { version: 'r2' })));
  await utimes(file, new Date(), new Date(Date.now() + 5_000));
  const next = await changed;
  assert.equal(next.version, 'r2');
  assert.equal(next.destinations.get('a')?.password.reveal(), 'rotated');
  const printed = `${lines.join('')}${await registry.metrics()}`;
  assert.match(printed, /destinations file rejected/);
  assert.ok(!printed.includes(CANARY), 'password leaked');
});
