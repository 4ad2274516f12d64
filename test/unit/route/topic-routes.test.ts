// TopicRouting: a topic's routes with their decoders, whether any must prepare records, and its
// consumed counters, built once per topic and in configuration order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RouteConfig } from '../../../src/config/load.ts';
import type { Decoder } from '../../../src/decode/types.ts';
import { TopicRouting } from '../../../src/route/topic-routes.ts';

const route = (name: string, topic: string): RouteConfig => ({ name, topic }) as RouteConfig;
const json: Decoder = { format: 'json', decode: () => ({ row: Buffer.from('{}'), teamId: undefined }) };
const typed: Decoder = { ...json, format: 'protobuf', prepare: () => undefined };

test('each topic gets its routes in order, its decoders, whether one prepares, and its counters once', () => {
  const asked: string[] = [];
  const routing = new TopicRouting(
    [
      { route: route('r1', 'a'), decoder: json },
      { route: route('r2', 'b'), decoder: typed },
      { route: route('r3', 'a'), decoder: json },
    ],
    (topic) => {
      asked.push(topic);
      return { messages: { inc: () => undefined }, bytes: { inc: () => undefined } };
    },
  );
  const a = routing.of('a');
  assert.deepEqual(
    a.routes.map((r) => r.route.name),
    ['r1', 'r3'],
  );
  assert.equal(a.prepares, false);
  const b = routing.of('b');
  assert.equal(b.prepares, true);
  assert.equal(b.routes[0]?.decoder, typed);
  assert.equal(routing.of('a'), a, 'built once per topic');
  assert.equal(routing.of('a'), a);
  assert.equal(routing.of('unrouted').routes.length, 0, 'a topic no route reads has none');
  assert.deepEqual(asked, ['a', 'b', 'unrouted']);
});
