import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { splitPoints } from '../../../src/pipeline/split-points.ts';
import { WarehouseError } from '../../../src/sink/errors.ts';

const rowError = (row?: number): WarehouseError => new WarehouseError(ErrorClasses.rowData, 'Cannot parse input', 27, undefined, row);

test('cuts out the row the warehouse names, 1-based within the range', () => {
  assert.deepEqual(splitPoints(rowError(5), 100, 200), [
    [100, 104],
    [104, 105],
    [105, 200],
  ]);
  assert.deepEqual(splitPoints(rowError(1), 0, 10), [
    [0, 1],
    [1, 10],
  ]);
  assert.deepEqual(splitPoints(rowError(10), 0, 10), [
    [0, 9],
    [9, 10],
  ]);
});

test('halves when the row is unknown or out of range, and for split-worthy classes', () => {
  assert.deepEqual(splitPoints(rowError(), 0, 9), [
    [0, 5],
    [5, 9],
  ]);
  assert.deepEqual(splitPoints(rowError(99), 0, 4), [
    [0, 2],
    [2, 4],
  ]);
  assert.deepEqual(splitPoints(new WarehouseError(ErrorClasses.memoryLimit, 'm', 241, undefined), 10, 20), [
    [10, 15],
    [15, 20],
  ]);
});
