// The ClickHouse classifier: server codes to error classes, the row ClickHouse names, network failures.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClickHouseError } from '@clickhouse/client';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { classifyClickHouseError } from '../../../src/sink/clickhouse/classify.ts';
import { asWarehouseError, WarehouseError } from '../../../src/sink/errors.ts';

test('a parse error names its row: class row_data, 1-based row', () => {
  const failure = classifyClickHouseError(
    new ClickHouseError({
      message: "Cannot parse input: expected '\"' before: 'oops': (at row 5)\n: While executing ParallelParsingBlockInputFormat",
      code: '27',
      type: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED',
    }),
  );
  assert.equal(failure.errorClass, ErrorClasses.rowData);
  assert.equal(failure.serverCode, 27);
  assert.equal(failure.row, 5);
  assert.ok(!failure.message.includes('\n'));
});

test("an unlisted code that names a row is row_data; without a row it is the server's own rejection: unknown_server_error", () => {
  assert.equal(classifyClickHouseError(new ClickHouseError({ message: 'odd value (at row 3)', code: '99999' })).errorClass, ErrorClasses.rowData);
  const unlisted = classifyClickHouseError(new ClickHouseError({ message: 'something new', code: '99999' }));
  assert.equal(unlisted.errorClass, ErrorClasses.unknownServerError);
  assert.equal(unlisted.code, 'INSERTER_SINK_UNKNOWN_SERVER_ERROR');
  assert.equal(unlisted.serverCode, 99999);
  assert.equal(unlisted.row, undefined);
});

test('a failure without a server code stays unknown (it may have landed): never bisected', () => {
  assert.equal(classifyClickHouseError(new Error('something odd')).errorClass, ErrorClasses.unknown);
  assert.equal(classifyClickHouseError(new ClickHouseError({ message: 'no code', code: '' })).errorClass, ErrorClasses.unknown);
});

test('codes and network failures map to their classes', () => {
  assert.equal(classifyClickHouseError(new ClickHouseError({ message: 'Memory limit (total) exceeded', code: '241' })).errorClass, ErrorClasses.memoryLimit);
  assert.equal(classifyClickHouseError(new ClickHouseError({ message: 'Too many partitions for single INSERT block (more than 100)', code: '252' })).errorClass, ErrorClasses.tooManyPartitions);
  assert.equal(classifyClickHouseError(new ClickHouseError({ message: 'Too many parts (300)', code: '252' })).errorClass, ErrorClasses.tooManyParts);
  assert.equal(classifyClickHouseError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })).errorClass, ErrorClasses.transientNetwork);
});

test('the core sees anything that is not a sink failure as class unknown', () => {
  const failure = asWarehouseError(new TypeError('boom'));
  assert.ok(failure instanceof WarehouseError);
  assert.equal(failure.errorClass, ErrorClasses.unknown);
  const same = new WarehouseError(ErrorClasses.memoryLimit, 'm', 241, undefined);
  assert.equal(asWarehouseError(same), same);
});
