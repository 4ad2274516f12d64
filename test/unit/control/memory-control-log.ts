// Test double: an in-memory control log shared by several "replicas" (each gets its own handle), with
// the same contract as the Kafka one: follow from the beginning, then every append, in order.
import type { ControlLog, ControlRecord } from '../../../src/control/control-log.ts';

export class MemoryLogStore {
  readonly records: ControlRecord[] = [];
  readonly #followers = new Set<(r: ControlRecord) => void>();
  now: () => number = Date.now;

  append(key: string, value: string | undefined): bigint {
    const record = { key, value, offset: BigInt(this.records.length), timestamp: this.now() };
    this.records.push(record);
    // Delivered asynchronously, like a broker round trip.
    for (const f of this.#followers) queueMicrotask(() => f(record));
    return record.offset;
  }

  handle(): ControlLog {
    let follower: ((r: ControlRecord) => void) | undefined;
    let closed = false;
    return {
      follow: async (onRecord) => {
        for (const r of [...this.records]) onRecord(r);
        follower = (r) => {
          if (!closed) onRecord(r);
        };
        this.#followers.add(follower);
      },
      append: async (key, value) => {
        if (closed) throw new Error('closed');
        return this.append(key, value);
      },
      silenceMs: () => 0,
      close: async () => {
        closed = true;
        if (follower) this.#followers.delete(follower);
      },
    };
  }
}
