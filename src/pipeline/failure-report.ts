// Owns what a delivery failure tells the outside: the context of an error report (Sentry) for a row
// range — which destination, table, route, partition, offsets, team, code, attempts, action and a
// sample row — the one reporter per DSN, and the process stop the `stop` policy ends in.
import type { Batch, Lane } from '../batch/lane.ts';
import type { Config } from '../config/load.ts';
import { rowJson } from '../decode/row.ts';
import { ErrorClasses } from '../errors/classes.ts';
import type { ClassPolicy } from '../errors/policy.ts';
import { WarehouseError } from '../sink/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { ErrorReporter, type FailureContext } from '../telemetry/sentry.ts';
import { splitPoints } from './split-points.ts';

export interface ReportedRange {
  readonly lane: Lane;
  readonly batch: Batch;
  readonly from: number;
  readonly to: number;
}

export function tableName(lane: Lane): string {
  return `${lane.table.database}.${lane.table.table}`;
}

/** The report context of a failure of rows [from, to) of a batch; the sample is the row it names, or the first. */
export function failureContext(error: unknown, range: ReportedRange, attempts: number, action: string, policy: ClassPolicy): FailureContext {
  const { lane, batch, from, to } = range;
  const failure = error instanceof WarehouseError ? error : undefined;
  const hinted = failure === undefined ? -1 : (splitPoints(failure, from, to).find(([a, b]) => b - a === 1 && failure.errorClass === ErrorClasses.rowData)?.[0] ?? -1);
  const row = hinted >= 0 ? hinted : from;
  const sample = batch.rows[row];
  return {
    errorClass: policy.errorClass,
    destination: lane.destination.id,
    table: tableName(lane),
    route: lane.route.name,
    topic: lane.topic,
    partition: lane.partition,
    fromOffset: batch.records[from]?.offset,
    toOffset: batch.records[to - 1]?.offset,
    team: batch.teams[row],
    serverCode: failure?.serverCode,
    attempts,
    batchRows: to - from,
    action,
    transient: policy.transient,
    sample: sample === undefined ? undefined : rowJson(sample),
  };
}

const reporters = new Map<string, ErrorReporter>();
/** One reporter per DSN per process (pipelines built from the same config share it). */
export function reporterFor(config: Config, logger: Logger): ErrorReporter {
  const dsn = config.telemetry.sentryDsn ?? '';
  let reporter = reporters.get(dsn);
  if (reporter === undefined) {
    reporter = new ErrorReporter({ dsn, logger });
    reporters.set(dsn, reporter);
  }
  return reporter;
}

/** A graceful stop (as on SIGTERM), exiting non-zero: the unresolved rows are re-read after a restart. */
export function defaultStop(): void {
  process.once('exit', () => {
    process.exitCode = 70;
  });
  process.kill(process.pid, 'SIGTERM');
}
