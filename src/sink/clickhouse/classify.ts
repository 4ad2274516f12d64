// Owns the mapping from what ClickHouse and the network say to inserter's error classes. This is the
// one place that knows ClickHouse exception codes; docs/errors.md is the prose version of this table.
import { ClickHouseError } from '@clickhouse/client';
import { ErrorClasses, type ErrorClass } from '../../errors/classes.ts';
import { socketErrorCodes, WarehouseError } from '../errors.ts';

const byCode = new Map<number, ErrorClass>();
const set = (cls: ErrorClass, codes: number[]): void => codes.forEach((code) => byCode.set(code, cls));
set(ErrorClasses.transientNetwork, [209, 210, 3]);
set(ErrorClasses.tooManyParts, [252]);
set(ErrorClasses.memoryLimit, [241, 173, 777, 778]);
set(ErrorClasses.overloaded, [202, 203, 159, 160, 201, 364, 394, 425, 745, 749, 762]);
set(ErrorClasses.replica, [999, 242, 164, 225, 234, 235, 236, 285, 286]);
set(ErrorClasses.unknownInsertStatus, [319]);
set(ErrorClasses.authentication, [516, 192, 193, 194, 195, 497]);
set(ErrorClasses.missingObject, [60, 81, 16, 47]);
// Per-row data errors: the value of some row cannot become its column (parse, range, enum, nulls).
set(ErrorClasses.rowData, [6, 25, 26, 27, 32, 33, 38, 41, 53, 69, 70, 72, 117, 130, 131, 190, 321, 349, 376, 377, 441, 457, 467, 632, 675, 676, 691]);

/** ClickHouse names the failing row of a text format: "(at row N)", 1-based. */
const rowHint = /\(at row (\d+)\)/;

/** Network conditions and 5xx pages of proxies in front of ClickHouse (no ClickHouse code). */
const networkText = /timeout|timed out|socket hang up|other side closed|terminated|premature close|bad gateway|service unavailable|gateway time-?out|\b50[234]\b/i;

export function classifyClickHouseError(error: unknown): WarehouseError {
  if (error instanceof WarehouseError) return error;
  if (error instanceof ClickHouseError) {
    const code = Number(error.code);
    // A code no class lists is still the server's own rejection of this insert (unlike a failure
    // without a code): the policy bisects it to tell a bad row from a failing destination.
    let cls = byCode.get(code) ?? (Number.isInteger(code) && code > 0 ? ErrorClasses.unknownServerError : ErrorClasses.unknown);
    // Code 252 covers two situations: too many parts in a partition (back off), and one insert block
    // touching too many partitions (split the batch, backing off cannot help).
    if (code === 252 && /too many partitions for single insert block/i.test(error.message)) cls = ErrorClasses.tooManyPartitions;
    // Any other code that names the failing input row is about that row's data.
    const row = rowHint.exec(error.message);
    if ((cls === ErrorClasses.unknownServerError || cls === ErrorClasses.unknown) && row !== null) cls = ErrorClasses.rowData;
    return new WarehouseError(cls, firstLine(error.message), code, error, row === null ? undefined : Number(row[1]));
  }
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if ((typeof code === 'string' && socketErrorCodes.has(code)) || networkText.test(message)) {
    return new WarehouseError(ErrorClasses.transientNetwork, firstLine(message), undefined, error);
  }
  return new WarehouseError(ErrorClasses.unknown, firstLine(message), undefined, error);
}

function firstLine(message: string): string {
  const newline = message.indexOf('\n');
  return (newline < 0 ? message : message.slice(0, newline)).slice(0, 1000);
}
