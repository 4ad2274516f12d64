// Owns where a failing range of a batch is cut: deterministic, so a replay after a crash forms the
// same sub-batches under the same tokens.
import { ErrorClasses } from '../errors/classes.ts';
import type { WarehouseError } from '../sink/errors.ts';

/**
 * Where to cut a failing range. When the warehouse named the failing row (ClickHouse's "(at row N)",
 * read by its classifier into `row`), that row is cut out alone, else the range is halved. Both are
 * deterministic, so a replay after a crash forms the same sub-batches with the same tokens.
 */
export function splitPoints(failure: WarehouseError, from: number, to: number): Array<[number, number]> {
  if (failure.errorClass === ErrorClasses.rowData && failure.row !== undefined) {
    const row = from + failure.row - 1;
    if (row >= from && row < to) {
      const parts: Array<[number, number]> = [];
      if (row > from) parts.push([from, row]);
      parts.push([row, row + 1]);
      if (row + 1 < to) parts.push([row + 1, to]);
      return parts;
    }
  }
  const middle = from + Math.ceil((to - from) / 2);
  return [
    [from, middle],
    [middle, to],
  ];
}
