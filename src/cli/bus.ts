// Owns what `inserter run` needs of its bus, whichever it is (bus-kafka.ts, bus-pulsar.ts): the
// source, where dead letters go, where the exactly-once ledgers live (none: at-least-once), and the
// bus's side of control — the shared control log of pauses and the lag of the subscription.
import type { LedgerStore } from '../ack/ledger.ts';
import type { ControlLog } from '../control/control-log.ts';
import type { LagSource } from '../control/lag-source.ts';
import type { DeadLetterSink } from '../deadletter/types.ts';
import type { Source } from '../source/types.ts';

export interface RunBus {
  readonly source: Source;
  readonly deadLetters: DeadLetterSink;
  readonly ledgers: LedgerStore | undefined;
  readonly controlLog: (replicaId: string) => ControlLog;
  readonly lag: () => LagSource;
}
