// Owns the neutral contract of consumer lag as control uses it (status, metrics, the admin API): how
// far the group's committed position is behind the log end, per partition. The Kafka adapter is
// source/kafka-lag.ts; a Pulsar source would measure its subscription backlog.
export interface LagSource {
  /** Starts polling (idempotent). */
  start(): void;
  /** Records behind the log end; undefined before the first poll or when the group never committed there. */
  lag(topic: string, partition: number): number | undefined;
  close(): Promise<void>;
}
