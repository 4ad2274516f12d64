// Helpers of review 2026-12-07l on top of the fakes of -07i (fake.ts) and -07k (helpers.ts), not
// edited: a listOffsets answered (or failed) only after a delay, as over a network, and a
// listOffsets that can be held for chosen partitions.
import { Consumer } from '@platformatic/kafka';
import { setTimeout as sleep } from 'node:timers/promises';

type ListOffsets = (this: Consumer, options: { topics: string[]; partitions?: Record<string, number[]>; timestamp?: bigint }) => Promise<Map<string, bigint[]>>;

const proto = Consumer.prototype as unknown as Record<string, unknown>;

/**
 * Wraps the listOffsets stub installed now (FakeKafka's or OutageKafka's): each call settles
 * `ms` later. The fake's restore() puts the client's own method back (it saved it first).
 */
export function delayListOffsets(ms: number): void {
  const inner = proto.listOffsets as ListOffsets;
  const delayed: ListOffsets = function (options) {
    const answer = inner.call(this, options);
    answer.catch(() => undefined);
    return sleep(ms).then(() => answer);
  };
  Object.defineProperty(proto, 'listOffsets', { value: delayed, configurable: true, writable: true });
}

/** Holds every listOffsets call that asks for `partition` until `release()`; counts them. */
export function holdListOffsets(partition: number): { release(): void; held(): number } {
  const inner = proto.listOffsets as ListOffsets;
  let release!: () => void;
  let open: Promise<void> | undefined = new Promise<void>((resolve) => (release = resolve));
  let held = 0;
  const holding: ListOffsets = function (options) {
    const asked = Object.values(options.partitions ?? {}).flat();
    if (open === undefined || !asked.includes(partition)) return inner.call(this, options);
    held++;
    return open.then(() => inner.call(this, options));
  };
  Object.defineProperty(proto, 'listOffsets', { value: holding, configurable: true, writable: true });
  return {
    release: () => {
      open = undefined;
      release();
    },
    held: () => held,
  };
}

type Metadata = (this: Consumer, options: { topics: string[]; forceUpdate?: boolean }) => Promise<unknown>;

/**
 * Wraps the metadata stub installed now: a forced update (a request to a bootstrap broker, not the
 * client's cache) takes `ms`; counts the calls of each kind.
 */
export function slowForcedMetadata(ms: number): { forced(): number; cached(): number } {
  const inner = proto.metadata as Metadata;
  let forced = 0;
  let cached = 0;
  const wrapped: Metadata = function (options) {
    if (options.forceUpdate !== true) {
      cached++;
      return inner.call(this, options);
    }
    forced++;
    return sleep(ms).then(() => inner.call(this, options));
  };
  Object.defineProperty(proto, 'metadata', { value: wrapped, configurable: true, writable: true });
  return { forced: () => forced, cached: () => cached };
}
