import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseType, typeText, TypeParseError } from '../../../../src/encode/rowbinary/type-parser.ts';

test('parses nested parametric types as system.columns spells them', () => {
  assert.deepEqual(parseType("Nullable(DateTime64(6, 'UTC'))"), {
    name: 'Nullable',
    args: [
      {
        kind: 'type',
        type: {
          name: 'DateTime64',
          args: [
            { kind: 'number', value: 6 },
            { kind: 'string', value: 'UTC' },
          ],
        },
      },
    ],
  });
  assert.deepEqual(parseType('SimpleAggregateFunction(sum, Int64)').args[0], { kind: 'type', type: { name: 'sum', args: [] } });
  assert.equal(typeText(parseType('Map(String,Array(Nullable(String)))')), 'Map(String, Array(Nullable(String)))');
});

test('reads enum entries with quotes, escapes and negative values', () => {
  const node = parseType("Enum16('it''s' = -5, 'a\\'b' = 1000, 'x' = 0)");
  assert.deepEqual(node.args, [
    { kind: 'enum', name: "it's", value: -5 },
    { kind: 'enum', name: "a'b", value: 1000 },
    { kind: 'enum', name: 'x', value: 0 },
  ]);
});

test('refuses what it cannot read, naming the position', () => {
  assert.throws(() => parseType('Array(String'), TypeParseError);
  assert.throws(() => parseType('String)'), /unexpected/);
  assert.throws(() => parseType("Enum8('a)"), /unterminated/);
});
