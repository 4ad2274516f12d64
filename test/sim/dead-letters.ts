// An in-memory dead-letter topic and the `DeadLetterSink` each incarnation writes through. Like the
// real writer, a write resolves only once the dead letter is durable; a failing broker shows as a
// wait (the writer retries inside), or, when `throws` is set, as an error reaching the core.
import { AbortedError, InserterError } from '../../src/errors/inserter-error.ts';
import type { DeadLetterReason, DeadLetterSink } from '../../src/deadletter/types.ts';
import type { SourceRecord } from '../../src/source/types.ts';
import type { Rng } from './rng.ts';
import type { Incarnation, World } from './runtime.ts';

export interface DeadLetter {
  readonly topic: string;
  readonly source: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly uuid: string | undefined;
  readonly reason: DeadLetterReason;
  readonly incarnation: number;
}

export interface DeadLetterFaults {
  /** Probability that the broker is unavailable for a while (the write waits). */
  readonly slow: number;
  /** Probability that a write fails with an error instead of waiting (not what the real writer does). */
  readonly throws: number;
  /** Whether an aborted signal fails a write in flight (AbortedError) rather than letting it finish. */
  readonly abortable: boolean;
}

export class DeadLetters {
  readonly letters: DeadLetter[] = [];
}

export class SimDeadLetterSink implements DeadLetterSink {
  readonly #world: World;
  readonly #inc: Incarnation;
  readonly #store: DeadLetters;
  readonly #rng: Rng;
  readonly #faults: DeadLetterFaults;

  constructor(world: World, inc: Incarnation, store: DeadLetters, rng: Rng, faults: DeadLetterFaults) {
    this.#world = world;
    this.#inc = inc;
    this.#store = store;
    this.#rng = rng;
    this.#faults = faults;
  }

  write(topic: string, record: SourceRecord, reason: DeadLetterReason, signal: AbortSignal): Promise<void> {
    const fail = this.#rng.chance(this.#faults.throws) ? 'before' : undefined;
    const slow = this.#rng.chance(this.#faults.slow);
    return this.#world.remote(
      this.#inc,
      `dead-letter ${record.topic}/${record.partition}@${record.offset} ${reason.errorClass}`,
      {
        kind: 'kafka',
        sendMs: slow ? this.#rng.int(10, 200) : this.#rng.int(0, 3),
        replyMs: this.#rng.int(0, 2),
        fail,
        error: () => new InserterError('INSERTER_DLQ_FAILED', 'dead-letter write failed: simulated'),
        signal: this.#faults.abortable ? signal : undefined,
        abortError: () => new AbortedError('dead-letter write aborted'),
      },
      () => {
        this.#store.letters.push({ topic, source: record.topic, partition: record.partition, offset: record.offset, uuid: uuidOf(record.value), reason, incarnation: this.#inc.id });
      },
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export function uuidOf(value: Buffer | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(value.toString('utf8'));
    if (parsed !== null && typeof parsed === 'object' && 'uuid' in parsed && typeof parsed.uuid === 'string') return parsed.uuid;
  } catch {
    // not JSON: identified by its position only
  }
  return undefined;
}
