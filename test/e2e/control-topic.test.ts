// The pause registry on the real broker: two replicas following one compacted control topic see each
// other's pauses and heartbeats, a pause is confirmed by both, a restarted replica reads the pauses in
// force before start() returns, and a resume reaches both.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KafkaControlLog } from '../../src/source/kafka-control-log.ts';
import { PauseRegistry, type PipelineControl } from '../../src/control/pause-registry.ts';
import type { Pause, PauseScope } from '../../src/control/scope.ts';
import { scopeKey } from '../../src/control/scope.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { waitFor } from '../helpers/inserter.ts';
import { sharedKafka, uniqueTopic } from '../helpers/kafka.ts';

class FakePipeline implements PipelineControl {
  applied: string[] = [];
  busy = new Map<string, number>();
  setPauses(pauses: readonly Pause[]): void {
    this.applied = pauses.map((p) => scopeKey(p.scope));
  }
  inflight(scope: PauseScope): number {
    return this.busy.get(scopeKey(scope)) ?? 0;
  }
  status() {
    return { partitions: [], pauses: [], parkedDestinations: [], bufferedBytesByDestination: {} };
  }
}

const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
let bootstrap: string;
const group = uniqueTopic('control');
const registries: PauseRegistry[] = [];

before(async () => {
  bootstrap = await sharedKafka();
});
after(async () => {
  for (const r of registries) await r.destroy();
});

async function replica(id: string, pipeline = new FakePipeline()): Promise<{ registry: PauseRegistry; pipeline: FakePipeline }> {
  const log = new KafkaControlLog({
    brokers: [bootstrap],
    clientId: 'test',
    groupId: group,
    topic: `${group}.inserter-control`,
    replicaId: id,
    retry: { baseMs: 100, factor: 2, capMs: 1_000 },
    logger,
  });
  const registry = new PauseRegistry({ log, pipeline, replicaId: id, logger, heartbeatMs: 500, replicaTimeoutMs: 5_000 });
  registries.push(registry);
  await registry.start(AbortSignal.timeout(60_000));
  return { registry, pipeline };
}

test('two replicas confirm a pause through the control topic; a restart reads it back; resume reaches both', async () => {
  const a = await replica('a');
  const b = await replica('b');
  await waitFor(async () => a.registry.replicas().filter((r) => r.live).length === 2, 'a sees both replicas', 20_000, 100);
  b.pipeline.busy.set('route:r1', 1);
  setTimeout(() => b.pipeline.busy.set('route:r1', 0), 1_000);
  const outcome = await a.registry.pause({ kind: 'route', route: 'r1' }, 'backfill', 'ops', { timeoutMs: 20_000 });
  assert.equal(outcome.state, 'quiet');
  assert.deepEqual(outcome.replicas.map((r) => r.replicaId).sort(), ['a', 'b']);
  assert.deepEqual(b.pipeline.applied, ['route:r1']);

  await b.registry.close();
  const restarted = await replica('b2');
  assert.deepEqual(restarted.pipeline.applied, ['route:r1'], 'pauses applied before start() resolved');
  assert.equal(a.registry.replicas().find((r) => r.replicaId === 'b')?.live ?? false, false, 'a clean close says goodbye');

  await restarted.registry.resume('route:r1');
  await waitFor(async () => a.pipeline.applied.length === 0, 'a applies the resume', 10_000, 50);
  assert.deepEqual(restarted.pipeline.applied, []);
});
