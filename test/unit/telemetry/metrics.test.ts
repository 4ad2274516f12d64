// The per-record counters (inserter_consumed_messages_total, inserter_consumed_bytes_total): added to
// as plain numbers on the hot path, and every increment is in what the registry serves at each scrape.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Metrics } from '../../../src/telemetry/metrics.ts';

async function scrape(metrics: Metrics, name: string): Promise<string[]> {
  return (await metrics.registry.metrics()).split('\n').filter((line) => line.startsWith(`${name}{`));
}

test('consumed counters: increments per label reach every scrape, totals keep growing', async () => {
  const metrics = new Metrics();
  const a = metrics.consumedMessages.labels('topic_a');
  const b = metrics.consumedMessages.labels('topic_b');
  assert.equal(metrics.consumedMessages.labels('topic_a'), a, 'one running total per label value');
  assert.deepEqual(await scrape(metrics, 'inserter_consumed_messages_total'), []);
  for (let i = 0; i < 1000; i++) a.inc();
  b.inc(5);
  metrics.consumedBytes.labels('topic_a').inc(1500);
  assert.deepEqual(await scrape(metrics, 'inserter_consumed_messages_total'), ['inserter_consumed_messages_total{topic="topic_a"} 1000', 'inserter_consumed_messages_total{topic="topic_b"} 5']);
  assert.deepEqual(await scrape(metrics, 'inserter_consumed_bytes_total'), ['inserter_consumed_bytes_total{topic="topic_a"} 1500']);
  a.inc(2);
  // A scrape with nothing new serves the same totals; the next increments add to them.
  assert.deepEqual(await scrape(metrics, 'inserter_consumed_messages_total'), ['inserter_consumed_messages_total{topic="topic_a"} 1002', 'inserter_consumed_messages_total{topic="topic_b"} 5']);
  assert.deepEqual(await scrape(metrics, 'inserter_consumed_messages_total'), ['inserter_consumed_messages_total{topic="topic_a"} 1002', 'inserter_consumed_messages_total{topic="topic_b"} 5']);
});

test('inserter_buffered_bytes: read from the memory budget at each scrape (no gauge call per reserved row)', async () => {
  const { MemoryBudget } = await import('../../../src/batch/budget.ts');
  const metrics = new Metrics();
  const budget = new MemoryBudget({ maxBufferedBytes: 1_000 } as ConstructorParameters<typeof MemoryBudget>[0], metrics, () => undefined);
  const served = async (): Promise<string[]> => (await metrics.registry.metrics()).split('\n').filter((line) => line.startsWith('inserter_buffered_bytes '));
  assert.deepEqual(await served(), ['inserter_buffered_bytes 0']);
  budget.reserve(700, 'd1');
  budget.reserve(500, undefined);
  assert.deepEqual(await served(), ['inserter_buffered_bytes 1200']);
  assert.equal(budget.over, true);
  budget.release(700, 'd1');
  assert.deepEqual(await served(), ['inserter_buffered_bytes 500']);
});

test('inserter_body_blocks_idle_bytes: the idle blocks of the body pool at each scrape', async () => {
  const { BlockPool, BLOCK_SIZE } = await import('../../../src/encode/block-pool.ts');
  const metrics = new Metrics();
  const pool = new BlockPool(4 * BLOCK_SIZE);
  metrics.idleBodyBytesReader = () => pool.idleBytes;
  const served = async (): Promise<string[]> => (await metrics.registry.metrics()).split('\n').filter((line) => line.startsWith('inserter_body_blocks_idle_bytes '));
  assert.deepEqual(await served(), ['inserter_body_blocks_idle_bytes 0']);
  const blocks = [pool.take(), pool.take(), pool.take()];
  pool.give(blocks);
  assert.deepEqual(await served(), [`inserter_body_blocks_idle_bytes ${3 * BLOCK_SIZE}`]);
  pool.take();
  assert.deepEqual(await served(), [`inserter_body_blocks_idle_bytes ${2 * BLOCK_SIZE}`]);
});
