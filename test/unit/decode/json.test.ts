import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeJsonRecord, type DecodeOptions } from '../../../src/decode/json.ts';
import { DecodeError } from '../../../src/errors/inserter-error.ts';
import type { SourceRecord } from '../../../src/source/types.ts';

const rec = (value: string | undefined, extra: Partial<SourceRecord> = {}): SourceRecord => ({
  topic: 't',
  partition: 0,
  offset: 0n,
  timestamp: 0n,
  key: undefined,
  value: value === undefined ? undefined : Buffer.from(value),
  headers: [],
  epoch: 0,
  ...extra,
});
const field = { maxMessageBytes: 1000, teamId: { from: 'field', field: 'team_id' } } as const;

test('reads the team from a field, a header or the key', () => {
  assert.equal(decodeJsonRecord(rec(' {"team_id":2}\n'), field).teamId, 2);
  assert.equal(decodeJsonRecord(rec('{"team_id":"17"}'), field).teamId, 17);
  assert.equal(decodeJsonRecord(rec('{"x":1}'), field).teamId, undefined);
  assert.equal(decodeJsonRecord(rec('{}', { headers: [[Buffer.from('team'), Buffer.from('9')]] }), { maxMessageBytes: 100, teamId: { from: 'header', header: 'team' } }).teamId, 9);
  assert.equal(decodeJsonRecord(rec('{}', { key: Buffer.from('5') }), { maxMessageBytes: 100, teamId: { from: 'key' } }).teamId, 5);
  assert.equal(decodeJsonRecord(rec(' {"a":1} '), field).row.toString(), '{"a":1}');
});

test('rejects what cannot become a row, with a stable code each', () => {
  const code = (value: string | undefined, max = 1000): string => {
    try {
      decodeJsonRecord(rec(value), { ...field, maxMessageBytes: max });
    } catch (error) {
      assert.ok(error instanceof DecodeError);
      return error.code;
    }
    return 'accepted';
  };
  assert.equal(code(undefined), 'INSERTER_DECODE_EMPTY');
  assert.equal(code('not json'), 'INSERTER_DECODE_NOT_OBJECT');
  assert.equal(code('[1,2]'), 'INSERTER_DECODE_NOT_OBJECT');
  assert.equal(code('{"a":'), 'INSERTER_DECODE_NOT_OBJECT');
  assert.equal(code('{"a":}'), 'INSERTER_DECODE_BAD_JSON');
  assert.equal(code('{"team_id":"x"}'), 'INSERTER_DECODE_BAD_TEAM');
  assert.equal(code('{"team_id":1.5}'), 'INSERTER_DECODE_BAD_TEAM');
  assert.equal(code(`{"a":"${'x'.repeat(2000)}"}`), 'INSERTER_DECODE_OVERSIZED');
});

test('one message is one row: a value holding more than one JSON value is a decode error; whitespace alone is empty', () => {
  const code = (value: string, teamId: DecodeOptions['teamId'] = field.teamId, extra: Partial<SourceRecord> = {}): string => {
    try {
      decodeJsonRecord(rec(value, extra), { maxMessageBytes: 1000, teamId });
    } catch (error) {
      assert.ok(error instanceof DecodeError);
      return error.code;
    }
    return 'accepted';
  };
  for (const value of ['{"team_id":1}{"team_id":2}', '{"team_id":1}\n{"team_id":2}\n', ' {"a":1} {"b":2} ', '{"a":{"b":1}}}']) {
    assert.equal(code(value), 'INSERTER_DECODE_BAD_JSON', value);
    assert.equal(code(value, { from: 'key' }, { key: Buffer.from('5') }), 'INSERTER_DECODE_BAD_JSON', `${value} (team from the key)`);
    assert.equal(code(value, { from: 'header', header: 'team' }, { headers: [[Buffer.from('team'), Buffer.from('9')]] }), 'INSERTER_DECODE_BAD_JSON', `${value} (team from a header)`);
  }
  for (const value of ['', ' ', '\n\t \r\n']) assert.equal(code(value), 'INSERTER_DECODE_EMPTY', JSON.stringify(value));
  assert.equal(code('\n{"team_id":3}\n'), 'accepted');
});

test('a route with a fixed destination does not need the team: a malformed team id is read as none, not a decode error', () => {
  const loose = { maxMessageBytes: 1000, teamId: { from: 'field', field: 'team_id' }, teamRequired: false } as const;
  for (const value of ['{"team_id":"abc"}', '{"team_id":1.5}', '{"team_id":99999999999999999999}', '{"team_id":{"x":1}}']) {
    assert.equal(decodeJsonRecord(rec(value), loose).teamId, undefined, value);
    assert.throws(
      () => decodeJsonRecord(rec(value), field),
      (error: unknown) => error instanceof DecodeError && error.code === 'INSERTER_DECODE_BAD_TEAM',
      value,
    );
  }
  assert.equal(decodeJsonRecord(rec('{"team_id":4}'), loose).teamId, 4);
  assert.equal(decodeJsonRecord(rec('{}', { key: Buffer.from('not a team') }), { maxMessageBytes: 100, teamId: { from: 'key' }, teamRequired: false }).teamId, undefined);
  // Everything else still has to be one JSON object.
  assert.throws(
    () => decodeJsonRecord(rec('{"team_id":"abc"}{}'), loose),
    (error: unknown) => error instanceof DecodeError && error.code === 'INSERTER_DECODE_BAD_JSON',
  );
});
