import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findTopLevelValue, integerValue, JsonScanError } from '../../../src/decode/json-scan.ts';

const team = (text: string): number | undefined => {
  const json = Buffer.from(text);
  const range = findTopLevelValue(json, Buffer.from('team_id'));
  return range === undefined ? undefined : integerValue(json, range[0], range[1]);
};

test('finds the top-level field and never one nested in objects, arrays or strings', () => {
  assert.equal(team('{"team_id":2}'), 2);
  assert.equal(team('{ "a" : {"team_id":9,"b":[1,{"team_id":8}]}, "s":"\\"team_id\\":7", "team_id" : -42 }'), -42);
  assert.equal(team('{"properties":"{\\"team_id\\":5}","x":[{"team_id":3}],"y":null}'), undefined);
  assert.equal(team('{"team_id":"17"}'), 17);
  assert.equal(team('{"team_id":null}'), undefined);
  assert.equal(team('{}'), undefined);
  assert.ok(Number.isNaN(team('{"team_id":1.5}')));
  assert.ok(Number.isNaN(team('{"team_id":"x"}')));
  assert.equal(team('{"a":"back\\\\","team_id":4}'), 4, 'an escaped backslash before a quote ends the string');
});

test('agrees with JSON.parse on generated PostHog events', async () => {
  const { generate } = await import('../../../dev/posthog/generator.ts');
  for (const m of generate('clickhouse_events_json', { seed: 3, count: 500, teams: 50 })) {
    const expected = (JSON.parse(m.value.toString()) as { team_id: number }).team_id;
    assert.equal(team(m.value.toString()), expected);
  }
});

test('reports broken structure it meets', () => {
  for (const bad of ['{"a":}', '{"a" 1}', '{"a":1 "b":2}', '{"a":"unterminated}', '{"a":[1,2}', '{a:1}']) {
    assert.throws(() => findTopLevelValue(Buffer.from(bad), Buffer.from('team_id')), JsonScanError, bad);
  }
});

test('one JSON value only: a second value or trailing bytes after the object are an error, with or without a key', () => {
  for (const bad of ['{"a":1}{"b":2}', '{"team_id":1}\n{"team_id":2}', '{"a":{"b":1}}}', '{"a":1} 2', '{"team_id":1},', '{}{}']) {
    assert.throws(() => findTopLevelValue(Buffer.from(bad), Buffer.from('team_id')), /after the object's end/, bad);
    assert.throws(() => findTopLevelValue(Buffer.from(bad), undefined), /after the object's end/, bad);
  }
  assert.equal(team('{"team_id":1,"team_id":2}'), 1, 'the first of a repeated key');
  assert.equal(findTopLevelValue(Buffer.from('{ "a" : [1, {"b": "}"}] }'), undefined), undefined);
});

test('scanTopLevel: a key of the same length with other bytes is not the key; the range object is reused', async () => {
  const { scanTopLevel } = await import('../../../src/decode/json-scan.ts');
  const out = { start: -1, end: -1 };
  const json = Buffer.from('{"team_ix":1,"team_id":22,"team_id":3}');
  assert.equal(scanTopLevel(json, Buffer.from('team_id'), out), true);
  assert.equal(json.toString('latin1', out.start, out.end), '22');
  assert.equal(scanTopLevel(Buffer.from('{"team_ix":1}'), Buffer.from('team_id'), out), false);
  // Scanned where the value sits in a larger buffer (a fetched batch's records share one).
  const batch = Buffer.from('xx{"a":"\\"}","team_id":7}yy');
  const value = batch.subarray(2, batch.length - 2);
  assert.equal(scanTopLevel(value, Buffer.from('team_id'), out), true);
  assert.equal(integerValue(value, out.start, out.end), 7);
});
