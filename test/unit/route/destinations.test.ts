// DestinationDirectory's answers of on-demand team lookups: a "no mapping" answer is asked again
// after the negative-cache TTL, a mapping is kept, and at most MAX_LOOKED_UP_TEAMS answers are held.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig, type Config } from '../../../src/config/load.ts';
import { DestinationDirectory, MAX_LOOKED_UP_TEAMS } from '../../../src/route/destinations.ts';
import type { DestinationProvider, DestinationSnapshot } from '../../../src/route/provider.ts';
import type { Sink } from '../../../src/sink/types.ts';

const never = new AbortController().signal;

function setup(answer: (team: number) => string | undefined): { config: Config; directory: DestinationDirectory; asked: number[] } {
  const config = buildConfig(
    {
      kafka: { brokers: ['127.0.0.1:9092'] },
      destinations: [{ id: 'a', url: 'http://127.0.0.1:8123' }],
      destinationsApi: { url: 'http://127.0.0.1:1', token: 't', negativeCacheTtlMs: 1_000 },
      teams: { unknown: { action: 'deadLetter' } },
      routes: [{ topic: 'e', table: 'e' }],
    },
    '/',
    {},
  );
  const asked: number[] = [];
  const snapshot: DestinationSnapshot = { version: 'v', loadedAt: 0, destinations: new Map(config.destinations.map((d) => [d.id, d])), teams: new Map() };
  const provider: DestinationProvider = {
    start: async () => undefined,
    snapshot: () => snapshot,
    lookupTeam: async (team) => {
      asked.push(team);
      return answer(team);
    },
    onChange: () => () => undefined,
    close: async () => undefined,
  };
  const directory = new DestinationDirectory(config, provider, () => ({}) as Sink);
  return { config, directory, asked };
}

test('a team the source says is unmapped is looked up again after the negative-cache TTL', async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const source: { mapped: string | undefined } = { mapped: undefined };
  const { config, directory, asked } = setup(() => source.mapped);
  const route = config.routes[0] as Config['routes'][number];
  assert.deepEqual(directory.decide(route, 7), { kind: 'hold', lookup: true });
  await directory.lookup(7, never);
  assert.deepEqual(directory.decide(route, 7), { kind: 'deadLetter', reason: 'unknown_team' });
  t.mock.timers.tick(999);
  assert.equal(directory.decide(route, 7).kind, 'deadLetter');
  t.mock.timers.tick(2);
  assert.deepEqual(directory.decide(route, 7), { kind: 'hold', lookup: true }, 'asked again after the TTL');
  source.mapped = 'a';
  await directory.lookup(7, never);
  assert.equal(directory.decide(route, 7).kind, 'destination');
  t.mock.timers.tick(10_000_000);
  assert.equal(directory.decide(route, 7).kind, 'destination', 'a mapping does not expire');
  assert.deepEqual(asked, [7, 7]);
});

test('a failed lookup throws (the caller retries) and remembers nothing', async () => {
  const { config, directory } = setup(() => {
    throw new Error('API down');
  });
  await assert.rejects(directory.lookup(9, never), /API down/);
  assert.deepEqual(directory.decide(config.routes[0] as Config['routes'][number], 9), { kind: 'hold', lookup: true });
});

test(`at most ${MAX_LOOKED_UP_TEAMS} looked-up teams are remembered, the oldest forgotten first`, async () => {
  const { config, directory } = setup(() => 'a');
  const route = config.routes[0] as Config['routes'][number];
  for (let team = 1; team <= MAX_LOOKED_UP_TEAMS + 10; team++) await directory.lookup(team, never);
  assert.equal(directory.lookedUpTeams, MAX_LOOKED_UP_TEAMS);
  assert.deepEqual(directory.decide(route, 1), { kind: 'hold', lookup: true }, 'the oldest answer was forgotten');
  assert.equal(directory.decide(route, MAX_LOOKED_UP_TEAMS + 10).kind, 'destination');
});

test('a sink that cannot be built fails the call with a rejected promise, never a throw (a probe on a timer must not crash the process)', async () => {
  const config = buildConfig({ kafka: { brokers: ['127.0.0.1:9092'] }, destinations: [{ id: 'a', url: 'http://127.0.0.1:8123' }], routes: [{ topic: 'e', table: 'e' }] }, '/', {});
  const provider: DestinationProvider = {
    start: async () => undefined,
    snapshot: () => ({ version: 'v', loadedAt: 0, destinations: new Map(config.destinations.map((d) => [d.id, d])), teams: new Map() }),
    lookupTeam: async () => undefined,
    onChange: () => () => undefined,
    close: async () => undefined,
  };
  const directory = new DestinationDirectory(config, provider, () => {
    throw new Error('ENOENT: the CA file is gone');
  });
  const destination = config.destinations[0] as Config['destinations'][number];
  let call: Promise<unknown> | undefined;
  assert.doesNotThrow(() => {
    call = directory.sink(destination).describe({ database: 'default', table: 'e' });
  });
  await assert.rejects(call as Promise<unknown>, /CA file is gone/);
});

test('decisions naming a destination are built once per snapshot: a changed or removed destination is seen at once', () => {
  const config = buildConfig({ kafka: { brokers: ['127.0.0.1:9092'] }, destinations: [{ id: 'a', url: 'http://127.0.0.1:8123' }], routes: [{ topic: 'e', table: 'e', destination: 'a' }] }, '/', {});
  const route = config.routes[0];
  assert.ok(route !== undefined);
  const first: DestinationSnapshot = { version: 'v1', loadedAt: 0, destinations: new Map(config.destinations.map((d) => [d.id, d])), teams: new Map() };
  let listener: ((next: DestinationSnapshot) => void) | undefined;
  const provider: DestinationProvider = {
    start: async () => undefined,
    snapshot: () => first,
    lookupTeam: async () => undefined,
    onChange: (l) => {
      listener = l;
      return () => undefined;
    },
    close: async () => undefined,
  };
  const directory = new DestinationDirectory(config, provider, () => ({}) as Sink);
  let changes = 0;
  directory.follow(() => changes++);
  const decision = directory.decide(route, 1);
  assert.equal(decision.kind, 'destination');
  assert.equal(directory.decide(route, 2), decision, 'the same decision object for every record');
  const rotated = { ...config.destinations[0], id: 'a', url: 'http://127.0.0.1:9000' } as (typeof config.destinations)[number];
  listener?.({ version: 'v2', loadedAt: 1, destinations: new Map([['a', rotated]]), teams: new Map() });
  assert.equal(changes, 1);
  const after = directory.decide(route, 1);
  assert.ok(after.kind === 'destination' && after.destination === rotated, 'the new settings, not the cached ones');
  // Gone from the snapshot: the YAML config's own destination of that id is used again.
  listener?.({ version: 'v3', loadedAt: 2, destinations: new Map(), teams: new Map() });
  const fallback = directory.decide(route, 1);
  assert.ok(fallback.kind === 'destination' && fallback.destination === config.destinations[0]);
});
