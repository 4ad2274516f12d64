// The simulation's decoders: the real ones (decode/types.ts), wrapped so that a record may first wait
// for its "schema", as a Protobuf record with a schema id the process has not loaded waits for the
// registry (Decoder.prepare). Each incarnation starts with no schema loaded; a load takes a while and
// may keep failing (a registry that is down) until it answers. The pipeline must not track or route
// the record before the wait ends, and must take the record's whole path again after it (ownership
// and rewinds may have changed meanwhile).
import { decoderFor, type Decoder, type DecoderFactory } from '../../src/decode/types.ts';
import type { SourceRecord } from '../../src/source/types.ts';
import { Rng } from './rng.ts';
import { hang, sleep, type Incarnation, type World } from './runtime.ts';

export interface SchemaFaults {
  /** Distinct schema ids (a record's id is its offset modulo this). */
  readonly schemas: number;
  /** Longest time one load takes, in virtual ms. */
  readonly slowMs: number;
  /** Chance that a load attempt fails (the registry cannot answer); it is retried after a backoff. */
  readonly fail: number;
}

/** Draws whether (and how) a seed's processes wait for schemas, from a stream of its own. */
export function schemaFaultsFor(seed: number): SchemaFaults | undefined {
  const rng = new Rng(seed ^ 0x5c4e3a);
  if (!rng.chance(0.5)) return undefined;
  return { schemas: rng.int(1, 6), slowMs: rng.int(1, 40), fail: rng.pick([0, 0.3, 0.8]) };
}

/** Decoders for one incarnation: `faults` undefined means the real decoders, unwrapped. */
export function waitingDecoders(world: World, inc: Incarnation, seed: number, faults: SchemaFaults | undefined): DecoderFactory {
  if (faults === undefined) return decoderFor;
  const rng = new Rng(seed * 31 + inc.id);
  const loaded = new Set<number>();
  const loading = new Map<number, Promise<void>>();
  const load = async (id: number, signal: AbortSignal): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      await sleep(rng.int(0, faults.slowMs));
      if (!inc.alive) return hang();
      signal.throwIfAborted();
      if (!rng.chance(faults.fail)) break;
      world.note(`schema ${id}: registry cannot answer (attempt ${attempt})`);
      await sleep(Math.min(50, 2 ** attempt));
    }
    loaded.add(id);
    loading.delete(id);
  };
  return (route, limits, hooks) => {
    const inner: Decoder = decoderFor(route, limits, hooks);
    return {
      format: inner.format,
      decode: (record: SourceRecord) => inner.decode(record),
      prepare: (record: SourceRecord, signal: AbortSignal) => {
        const id = Number(record.offset % BigInt(faults.schemas));
        if (loaded.has(id)) return undefined;
        let wait = loading.get(id);
        if (wait === undefined) {
          wait = load(id, signal);
          loading.set(id, wait);
        }
        return wait;
      },
    };
  };
}
