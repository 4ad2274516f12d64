// Review 2026-12-06 (evidence, not project code): a multi-partition world for driving the real
// Pipeline — the shared FedSource (test/helpers/pipeline-world.ts) reading several partitions in one
// stream like the Kafka source, and decoders whose `prepare` waits on gates the test opens (a
// Protobuf schema id not loaded yet).
import type { MemoryLedgerStore } from '../../../src/ack/ledger.ts';
import type { Config } from '../../../src/config/load.ts';
import { decoderFor, type Decoder, type DecoderFactory } from '../../../src/decode/types.ts';
import type { EncoderFactory } from '../../../src/encode/types.ts';
import type { Pipeline } from '../../../src/pipeline/pipeline.ts';
import type { SourceRecord } from '../../../src/source/types.ts';
import { FedSource, HeldDeadLetters, startWorld, TokenWarehouse, TOPIC } from '../../helpers/pipeline-world.ts';

export function rec(partition: number, offset: number, team = 8): SourceRecord {
  const value = Buffer.from(JSON.stringify({ team_id: team, uuid: `p${partition}-u${offset}` }));
  return { topic: TOPIC, partition, offset: BigInt(offset), timestamp: BigInt(Date.now()), key: undefined, value, headers: [], epoch: 0 };
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
  readonly source: FedSource;
  readonly warehouse: TokenWarehouse;
  readonly deadLetters: HeldDeadLetters;
}

/** A pipeline reading `partitions` (partition 0 if not given) of one FedSource. */
export function startMulti(parts: { config: Config; decoders?: DecoderFactory; encoders?: EncoderFactory; kafkaLike?: boolean; partitions?: number[]; ledgers?: MemoryLedgerStore }): MultiWorld {
  const warehouse = new TokenWarehouse();
  const deadLetters = new HeldDeadLetters();
  const source = new FedSource({ partitions: [], kafkaLike: parts.kafkaLike ?? false });
  const { pipeline } = startWorld({ ...parts, warehouse, deadLetters, source });
  return { pipeline, source, warehouse, deadLetters };
}
