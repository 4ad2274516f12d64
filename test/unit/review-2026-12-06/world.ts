// Review 2026-12-06 (evidence, not project code): a multi-partition world for driving the real
// Pipeline — a source fed by the test that reads several partitions in one stream like the Kafka
// source (honouring backpressure, re-reading every partition from its committed position on a
// rewind, skipping partitions it no longer owns), and decoders whose `prepare` waits on gates the
// test opens (a Protobuf schema id not loaded yet).
import { MemoryLedgerStore } from '../../../src/ack/ledger.ts';
import type { Config } from '../../../src/config/load.ts';
import { decoderFor, type Decoder, type DecoderFactory } from '../../../src/decode/types.ts';
import type { DeadLetterSink } from '../../../src/deadletter/types.ts';
import type { EncoderFactory } from '../../../src/encode/types.ts';
import { Pipeline } from '../../../src/pipeline/pipeline.ts';
import type { CommitPosition, PartitionRef, Source, SourceHandler, SourceRecord } from '../../../src/source/types.ts';
import { createLogger } from '../../../src/telemetry/logger.ts';
import { Metrics } from '../../../src/telemetry/metrics.ts';
import { HeldDeadLetters, TokenWarehouse, TOPIC } from '../../helpers/pipeline-world.ts';

export function rec(partition: number, offset: number, team = 8): SourceRecord {
  const value = Buffer.from(JSON.stringify({ team_id: team, uuid: `p${partition}-u${offset}` }));
  return { topic: TOPIC, partition, offset: BigInt(offset), timestamp: BigInt(Date.now()), key: undefined, value, headers: [], epoch: 0 };
}

/** Several partitions in one stream, in append order; a rewind re-reads each owned partition from its committed position. */
export class MultiSource implements Source {
  handler: SourceHandler | undefined;
  readonly log: SourceRecord[] = [];
  readonly commits: CommitPosition[] = [];
  readonly owned = new Set<number>();
  rewinds = 0;
  #cursor = 0;
  /** After a rewind: per partition, the position it was re-read from (records below it are skipped). */
  #from = new Map<number, bigint>();
  #pumping: Promise<void> | undefined;
  #stopped: (() => void) | undefined;
  /** Like the Kafka source: `run` ends only after the record being handed over is accepted. */
  readonly #kafkaLike: boolean;
  #signal: AbortSignal | undefined;

  constructor(options: { kafkaLike?: boolean } = {}) {
    this.#kafkaLike = options.kafkaLike ?? false;
  }

  run(handler: SourceHandler, signal: AbortSignal): Promise<void> {
    this.handler = handler;
    this.#signal = signal;
    return new Promise((resolve) => {
      this.#stopped = resolve;
      signal.addEventListener(
        'abort',
        () => {
          if (!this.#kafkaLike || this.#pumping === undefined) resolve();
          else void this.#pumping.finally(() => resolve());
        },
        { once: true },
      );
    });
  }

  async commit(positions: readonly CommitPosition[]): Promise<void> {
    this.commits.push(...positions);
  }

  committed(partition: number): bigint {
    for (let i = this.commits.length - 1; i >= 0; i--) if (this.commits[i]?.partition === partition) return (this.commits[i] as CommitPosition).offset;
    return -1n;
  }

  rewind(onSwitch: () => void): Promise<void> {
    this.rewinds++;
    this.#from = new Map([...this.owned].map((p) => [p, this.committed(p) < 0n ? 0n : this.committed(p)]));
    this.#cursor = 0;
    onSwitch();
    void this.#pump();
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.#stopped?.();
  }

  assign(handler: Pipeline, partitions: number[]): void {
    for (const p of partitions) this.owned.add(p);
    handler.onAssigned(partitions.map((partition) => ({ topic: TOPIC, partition })));
  }

  revoke(handler: Pipeline, partitions: number[]): void {
    for (const p of partitions) this.owned.delete(p);
    handler.onRevoked(partitions.map((partition) => ({ topic: TOPIC, partition })));
  }

  get caughtUp(): boolean {
    return this.#cursor >= this.log.length && this.#pumping === undefined;
  }

  append(records: readonly SourceRecord[]): Promise<void> {
    this.log.push(...records);
    return this.#pump();
  }

  #pump(): Promise<void> {
    const handler = this.handler;
    if (handler === undefined) throw new Error('source not running');
    this.#pumping ??= (async () => {
      await Promise.resolve();
      try {
        while (this.#cursor < this.log.length && this.#signal?.aborted !== true) {
          const record = this.log[this.#cursor++] as SourceRecord;
          if (!this.owned.has(record.partition)) continue;
          if (record.offset < (this.#from.get(record.partition) ?? 0n)) continue;
          const waiting = handler.onRecord(record);
          if (waiting !== undefined) await waiting;
        }
      } finally {
        this.#pumping = undefined;
      }
    })();
    return this.#pumping;
  }
}

/** Decoders whose `prepare` makes chosen records wait until the test opens their gate. */
export class GatedSchemas {
  readonly #gates = new Map<string, { promise: Promise<void>; open: () => void; fail: (e: Error) => void }>();
  readonly waiting = new Set<string>();
  readonly prepared: string[] = [];

  gate(partition: number, offset: number): void {
    let open!: () => void;
    let fail!: (e: Error) => void;
    const promise = new Promise<void>((resolve, reject) => {
      open = resolve;
      fail = reject;
    });
    this.#gates.set(`${partition}/${offset}`, { promise, open, fail });
  }

  open(partition: number, offset: number): void {
    const key = `${partition}/${offset}`;
    this.#gates.get(key)?.open();
    this.#gates.delete(key);
    this.waiting.delete(key);
  }

  factory(): DecoderFactory {
    return (route, limits, hooks) => {
      const inner: Decoder = decoderFor(route, limits, hooks);
      return {
        format: inner.format,
        decode: (record) => inner.decode(record),
        prepare: (record: SourceRecord, signal: AbortSignal) => {
          const key = `${record.partition}/${record.offset}`;
          const gate = this.#gates.get(key);
          if (gate === undefined) return undefined;
          this.prepared.push(key);
          this.waiting.add(key);
          return new Promise<void>((resolve, reject) => {
            const onAbort = (): void => reject(new Error('aborted'));
            signal.addEventListener('abort', onAbort, { once: true });
            gate.promise.then(resolve, reject);
          });
        },
      };
    };
  }
}

export interface MultiWorld {
  readonly pipeline: Pipeline;
  readonly source: MultiSource;
  readonly warehouse: TokenWarehouse;
  readonly deadLetters: HeldDeadLetters;
}

export function startMulti(parts: {
  config: Config;
  decoders?: DecoderFactory;
  encoders?: EncoderFactory;
  warehouse?: TokenWarehouse;
  deadLetters?: DeadLetterSink;
  kafkaLike?: boolean;
  partitions?: number[];
  ledgers?: MemoryLedgerStore;
}): MultiWorld {
  const source = new MultiSource({ kafkaLike: parts.kafkaLike ?? false });
  const warehouse = parts.warehouse ?? new TokenWarehouse();
  const deadLetters = (parts.deadLetters as HeldDeadLetters | undefined) ?? new HeldDeadLetters();
  const pipeline = new Pipeline({
    config: parts.config,
    source,
    sinkFactory: (d) => warehouse.sink(d),
    deadLetters,
    ledgers: parts.ledgers ?? new MemoryLedgerStore(),
    logger: createLogger(process.env.TEST_LOG ?? 'silent'),
    metrics: new Metrics(),
    ...(parts.decoders === undefined ? {} : { decoders: parts.decoders }),
    ...(parts.encoders === undefined ? {} : { encoders: parts.encoders }),
  });
  void pipeline.start();
  source.assign(pipeline, parts.partitions ?? [0]);
  return { pipeline, source, warehouse, deadLetters };
}

export type { PartitionRef };
