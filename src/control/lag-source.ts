// Owns the neutral contract of consumer lag as control uses it (status, metrics, the admin API): how
// far the group's committed position is behind the log end, per partition. The Kafka adapter is
// source/kafka-lag.ts; a Pulsar source would measure its subscription backlog.
export interface LagSource {
  /** Starts polling (idempotent). */
  start(): void;
  /** Records behind the log end (from the log start where the group never committed); undefined before the first poll. */
  lag(topic: string, partition: number): number | undefined;
  close(): Promise<void>;
}
