// Owns dead-lettering a record from the pipeline: the write to the route's dead-letter topic, and
// what it means for the record's resolution. A record is unresolved until the broker acknowledges
// its dead letter, also across rewinds (a re-read joins the write in flight); once acknowledged it
// is remembered in the ledger, so a re-read never routes it again. A write that fails leaves it
// unresolved, to be read again.
import type { AckChunk } from '../ack/partition-tracker.ts';
import type { RouteConfig } from '../config/load.ts';
import type { PartitionState } from '../pipeline/partition-state.ts';
import type { PipelineRuntime } from '../pipeline/runtime.ts';
import type { SourceRecord } from '../source/types.ts';
import type { DeadLetterReason, DeadLetterSink } from './types.ts';

export class DeadLettering {
  readonly #rt: PipelineRuntime;
  readonly #sink: DeadLetterSink;
  readonly #requestRewind: () => void;

  constructor(rt: PipelineRuntime, sink: DeadLetterSink, requestRewind: () => void) {
    this.#rt = rt;
    this.#sink = sink;
    this.#requestRewind = requestRewind;
  }

  /** Dead-letters a record read in `state` (decode error, unknown team, destination down). */
  record(state: PartitionState, route: RouteConfig, record: SourceRecord, chunk: AckChunk, reason: DeadLetterReason): void {
    const rt = this.#rt;
    const size = record.value?.length ?? 0;
    rt.budget.reserve(size, undefined);
    const flight = state.startDeadLetter(route.name, record.offset, chunk);
    rt.track(
      this.write(route, record, reason)
        .then(
          () => {
            state.ledger?.markResolved(route.name, record.offset);
            state.endDeadLetter(route.name, record.offset, flight, true);
          },
          (error: unknown) => {
            state.endDeadLetter(route.name, record.offset, flight, false);
            if (rt.hardStop.signal.aborted || state.revoked) return; // re-read after restart
            rt.logger.warn({ err: error, topic: record.topic, partition: record.partition, offset: String(record.offset) }, 'dead-letter write failed; the record is read again');
            state.needsRewind = true;
            this.#requestRewind();
          },
        )
        .finally(() => rt.budget.release(size, undefined)),
    );
  }

  /** Resolves only once the dead letter is durable; an abort rejects, so nothing counts it as delivered. */
  async write(route: RouteConfig, record: SourceRecord, reason: DeadLetterReason): Promise<void> {
    const topic = route.deadLetterTopic ?? `${record.topic}.dlq`;
    await this.#sink.write(topic, record, reason, this.#rt.hardStop.signal);
    this.#rt.metrics.deadLetters.inc({ route: route.name, class: reason.errorClass });
  }

  close(): Promise<void> {
    return this.#sink.close();
  }
}
