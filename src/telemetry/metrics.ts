// Owns the Prometheus metrics of every stage (consume → decode → batch → insert → dead-letter →
// commit). Labels are bounded: topic, route, destination, table, error class — never team or offset.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One label value's running total of a HotCounter. */
class HotCount {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

/**
 * A counter with one label for the per-record path: `labels(v).inc(n)` adds to a plain number (no
 * label hashing, no call into prom-client per record); the totals reach the Prometheus counter
 * when the registry is scraped.
 */
export class HotCounter {
  readonly #counter: Counter;
  readonly #labelName: string;
  readonly #counts = new Map<string, HotCount>();

  constructor(options: { name: string; help: string; labelName: string; registry: Registry }) {
    this.#labelName = options.labelName;
    const flush = (): void => this.#flush();
    this.#counter = new Counter({ name: options.name, help: options.help, labelNames: [options.labelName], registers: [options.registry], collect: flush });
  }

  /** The running total of one label value; keep it for the hot path. */
  labels(value: string): { inc(by?: number): void } {
    let count = this.#counts.get(value);
    if (count === undefined) {
      count = new HotCount();
      this.#counts.set(value, count);
    }
    return count;
  }

  #flush(): void {
    for (const [value, count] of this.#counts) {
      if (count.value === 0) continue;
      this.#counter.inc({ [this.#labelName]: value }, count.value);
      count.value = 0;
    }
  }
}

export class Metrics {
  readonly registry = new Registry();
  // Incremented once per record: plain numbers, handed to prom-client when scraped (HotCounter).
  readonly consumedMessages = new HotCounter({ name: 'inserter_consumed_messages_total', help: 'Records read from the bus', labelName: 'topic', registry: this.registry });
  readonly consumedBytes = new HotCounter({ name: 'inserter_consumed_bytes_total', help: 'Value bytes read from the bus', labelName: 'topic', registry: this.registry });
  readonly decodeErrors = new Counter({ name: 'inserter_decode_errors_total', help: 'Records that could not become rows', labelNames: ['route', 'code'], registers: [this.registry] });
  readonly schemaRegistryFailures = new Counter({
    name: 'inserter_schema_registry_failures_total',
    help: 'Schema lookups the registry could not answer (the records of that schema wait and it is asked again)',
    labelNames: ['route'],
    registers: [this.registry],
  });
  readonly insertedRows = new Counter({ name: 'inserter_inserted_rows_total', help: 'Rows acknowledged by the warehouse', labelNames: ['destination', 'table'], registers: [this.registry] });
  readonly insertedBytes = new Counter({
    name: 'inserter_inserted_bytes_total',
    help: 'Uncompressed body bytes acknowledged by the warehouse',
    labelNames: ['destination', 'table'],
    registers: [this.registry],
  });
  readonly inserts = new Counter({ name: 'inserter_inserts_total', help: 'Insert requests by outcome', labelNames: ['destination', 'table', 'outcome'], registers: [this.registry] });
  readonly retries = new Counter({ name: 'inserter_retries_total', help: 'Retried operations by error class', labelNames: ['destination', 'class'], registers: [this.registry] });
  readonly deadLetters = new Counter({ name: 'inserter_dead_letters_total', help: 'Records written to a dead-letter topic', labelNames: ['route', 'class'], registers: [this.registry] });
  readonly deadLetterValuesOmitted = new Counter({
    name: 'inserter_dead_letter_values_omitted_total',
    help: 'Dead letters the broker refused as too large, written without their value (left in the source topic)',
    labelNames: ['topic'],
    registers: [this.registry],
  });
  readonly droppedRows = new Counter({
    name: 'inserter_dropped_rows_total',
    help: 'Rows given up by an error policy of `then: drop`',
    labelNames: ['destination', 'table', 'class'],
    registers: [this.registry],
  });
  readonly splits = new Counter({
    name: 'inserter_splits_total',
    help: 'Failing inserts cut into smaller ones (split or isolate)',
    labelNames: ['destination', 'table', 'class'],
    registers: [this.registry],
  });
  readonly destinationPaused = new Gauge({
    name: 'inserter_destination_paused',
    help: '1 while a destination is paused by the error policy',
    labelNames: ['destination', 'class'],
    registers: [this.registry],
  });
  readonly batchRows = new Histogram({
    name: 'inserter_batch_rows',
    help: 'Rows per insert',
    labelNames: ['table'],
    buckets: [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000],
    registers: [this.registry],
  });
  readonly insertSeconds = new Histogram({
    name: 'inserter_insert_duration_seconds',
    help: 'Insert latency',
    labelNames: ['destination', 'table'],
    buckets: [0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly endToEndSeconds = new Histogram({
    name: 'inserter_end_to_end_seconds',
    help: 'Message timestamp to insert acknowledged (oldest row of each batch)',
    labelNames: ['table'],
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  /** What `inserter_buffered_bytes` reads when scraped (the memory budget sets it): no gauge call per record. */
  bufferedBytesReader: (() => number) | undefined;
  readonly bufferedBytes: Gauge = new Gauge({
    name: 'inserter_buffered_bytes',
    help: 'Bytes of consumed rows held in memory, and of the insert bodies being sent',
    registers: [this.registry],
    collect: () => {
      if (this.bufferedBytesReader !== undefined) this.bufferedBytes.set(this.bufferedBytesReader());
    },
  });
  /** What `inserter_body_blocks_idle_bytes` reads when scraped (the body block pool). */
  idleBodyBytesReader: (() => number) | undefined;
  readonly idleBodyBytes: Gauge = new Gauge({
    name: 'inserter_body_blocks_idle_bytes',
    help: 'Bytes of idle insert-body blocks kept for reuse (resident, outside inserter_buffered_bytes)',
    registers: [this.registry],
    collect: () => {
      if (this.idleBodyBytesReader !== undefined) this.idleBodyBytes.set(this.idleBodyBytesReader());
    },
  });
  readonly committedOffset = new Gauge({ name: 'inserter_committed_offset', help: 'Last committed position per partition', labelNames: ['topic', 'partition'], registers: [this.registry] });
  readonly pausedScopes = new Gauge({ name: 'inserter_paused_scopes', help: 'Pauses in force', registers: [this.registry] });
  readonly parkedDestinations = new Gauge({ name: 'inserter_parked_destinations', help: 'Destinations parked for holding more than their memory budget while failing', registers: [this.registry] });
  readonly rewinds = new Counter({ name: 'inserter_rewinds_total', help: 'Times the owned partitions were re-read from their committed positions', registers: [this.registry] });
  readonly heldRecords = new Gauge({ name: 'inserter_held_records', help: 'Records waiting for a destination mapping', registers: [this.registry] });
  readonly teamLookupFailures = new Counter({
    name: 'inserter_team_lookup_failures_total',
    help: 'Team lookups the destinations source did not answer (retried with backoff)',
    registers: [this.registry],
  });
  // Operations (src/control): set from the pipeline's status, the control topic and the lag monitor.
  readonly destinationState = new Gauge({
    name: 'inserter_destination_state',
    help: '1 for the worst lane state of each destination on this replica (running, paused, parked, backing_off, failing)',
    labelNames: ['destination', 'state'],
    registers: [this.registry],
  });
  readonly destinationInflightBytes = new Gauge({
    name: 'inserter_destination_inflight_bytes',
    help: 'Bytes of rows held for a destination: open batches and inserts in flight',
    labelNames: ['destination'],
    registers: [this.registry],
  });
  readonly consumerLag = new Gauge({
    name: 'inserter_consumer_lag',
    help: 'Records between the group committed position and the log end, per partition this replica owns',
    labelNames: ['topic', 'partition'],
    registers: [this.registry],
  });
  readonly pauseAgeSeconds = new Gauge({ name: 'inserter_pause_age_seconds', help: 'Age of the oldest pause in force, by scope kind', labelNames: ['kind'], registers: [this.registry] });
  readonly controlReplicas = new Gauge({ name: 'inserter_control_live_replicas', help: 'Replicas whose control-topic heartbeat is recent', registers: [this.registry] });
  // Deduplication safety (docs/operations.md "Deduplication window").
  readonly routeExactlyOnce = new Gauge({
    name: 'inserter_route_exactly_once',
    help: '1 when exactly-once is enforced for the route (a table that cannot deduplicate by token is refused); 0 when it is at-least-once (exactlyOnce.enabled off, or the route says exactlyOnce: false)',
    labelNames: ['route'],
    registers: [this.registry],
  });
  readonly tableDeduplicates = new Gauge({
    name: 'inserter_table_deduplicates',
    help: '1 when the table deduplicates inserts by token (engine and window read with its schema), else 0',
    labelNames: ['destination', 'table'],
    registers: [this.registry],
  });
  readonly dedupWindowExceeded = new Counter({
    name: 'inserter_dedup_window_exceeded_total',
    help: "Inserts retried after an attempt that may have landed, later than the table's deduplication window (seconds or blocks inserted since): possible duplicates",
    labelNames: ['destination', 'table'],
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics === true) collectDefaultMetrics({ register: this.registry });
  }
}
