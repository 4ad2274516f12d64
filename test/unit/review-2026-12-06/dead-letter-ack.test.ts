// Review 2026-12-06, target 3: dead-letter writes with bounded attempts and joined sends
// (deadletter/writer.ts) under the real Pipeline. Invariant (docs/design/delivery.md §1.2-3): the
// position is never committed past a record before its dead letter is acknowledged, and a write is
// never dropped silently. No defect found: these are controls (they pass).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeadLetterPublisher, type DeadLetterMessage, type DeadLetterTransport } from '../../../src/deadletter/writer.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { event, startWorld, TokenWarehouse, until, worldConfig } from '../../helpers/pipeline-world.ts';

/** A bus whose sends are acknowledged only when the test says so. */
class SlowBus implements DeadLetterTransport {
  readonly sent: DeadLetterMessage[] = [];
  readonly #acks: Array<() => void> = [];
  async prepare(): Promise<void> {}
  send(message: DeadLetterMessage): Promise<void> {
    this.sent.push(message);
    return new Promise((resolve) => this.#acks.push(resolve));
  }
  ack(): void {
    for (const a of this.#acks.splice(0)) a();
  }
  isTooLarge(): boolean {
    return false;
  }
  isUnknownTopic(): boolean {
    return false;
  }
  async close(): Promise<void> {}
}

test('control: a dead letter unacknowledged across many write timeouts keeps the position below it, is sent once, and resolves it when acknowledged', async () => {
  const config = worldConfig({ teams: { map: { 8: 'd1' } } });
  const bus = new SlowBus();
  const failures: string[] = [];
  const writer = new DeadLetterPublisher(bus, {
    retry: { baseMs: 5, factor: 1, capMs: 5 },
    writeTimeoutMs: 20,
    logger: createLogger('silent'),
    hooks: { onFailure: (_t, code) => failures.push(code) },
  });
  const warehouse = new TokenWarehouse();
  const { pipeline, source } = startWorld({ config, warehouse, deadLetters: writer });
  try {
    const records = Array.from({ length: 6 }, (_, i) => event(i, 8));
    records[2] = { ...(records[2] as (typeof records)[number]), value: Buffer.from('not json') };
    await source.append(records);
    await until(() => failures.length >= 5, 'five timed-out attempts');
    await until(() => warehouse.uuids().length === 5, 'the other rows inserted');
    // The watermark moves by chunks of records (partition-tracker.ts), so it may stay below 2; never above.
    assert.ok(source.committed <= 2n, `committed to ${source.committed} before the dead letter of offset 2 was acknowledged`);
    assert.equal(bus.sent.length, 1, 'a timed-out send was repeated instead of joined');
    bus.ack();
    await until(() => source.committed === 6n, 'committed to 6 after the acknowledgement');
    assert.equal(bus.sent.length, 1);
    assert.deepEqual(warehouse.uuids().sort(), ['u0', 'u1', 'u3', 'u4', 'u5']);
  } finally {
    await pipeline.destroy();
  }
});
