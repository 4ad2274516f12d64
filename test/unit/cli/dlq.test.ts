// The `dlq` flags and selection: filters parse (every problem named at once), select exactly what
// they say (class lists, team, qualified or bare table, time bounds, limit), name the right
// dead-letter topics; a dead letter read back splits the original headers from the writer's; bytes
// are shown as UTF-8 only when printable; replay tokens are a function of dead-letter coordinates.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig } from '../../../src/config/load.ts';
import { DlqUsageError } from '../../../src/deadletter/dlq-errors.ts';
import { deadLetterTopics, matches, parseFilter, select } from '../../../src/deadletter/filter.ts';
import { parseDeadLetter, showBytes, type DeadLetter, type RawDeadLetter } from '../../../src/deadletter/record.ts';
import { tokenFor } from '../../../src/deadletter/replay-destination.ts';
import { deadLetterHeader as h } from '../../../src/deadletter/types.ts';

const b = (s: string): Buffer => Buffer.from(s);

function raw(offset: number, reason: Record<string, string>, userHeaders: Array<[string, string]> = []): RawDeadLetter {
  const headers: Array<[Buffer, Buffer]> = userHeaders.map(([k, v]) => [b(k), b(v)]);
  for (const [k, v] of Object.entries(reason)) headers.push([b(k), b(v)]);
  return { topic: 'events.dlq', partition: 1, offset: BigInt(offset), timestamp: 1_700_000_000_000n, key: b('k'), value: b('{"a":1}'), headers };
}

function letter(offset: number, cls: string, extra: Record<string, string> = {}): DeadLetter {
  return parseDeadLetter(
    raw(offset, {
      [h.class]: cls,
      [h.route]: 'events->t',
      [h.table]: 'db.t',
      [h.team]: '7',
      [h.lastFailure]: `2025-01-0${1 + (offset % 5)}T00:00:00.000Z`,
      [h.topic]: 'events',
      [h.partition]: '3',
      [h.offset]: String(100 + offset),
      [h.timestamp]: '1600000000000',
      ...extra,
    }),
  );
}

test('parseFilter accepts every flag and a class list', () => {
  const f = parseFilter({ route: 'r', class: 'row_data, decode', team: '-4', table: 'db.t', since: '2025-01-01', until: '2025-01-02T10:00:00Z', limit: '5' });
  assert.equal(f.route, 'r');
  assert.deepEqual([...(f.classes ?? [])], ['row_data', 'decode']);
  assert.equal(f.team, -4);
  assert.equal(f.table, 'db.t');
  assert.equal(f.since?.toISOString(), '2025-01-01T00:00:00.000Z');
  assert.equal(f.until?.toISOString(), '2025-01-02T10:00:00.000Z');
  assert.equal(f.limit, 5);
  assert.deepEqual(parseFilter({}), {});
});

test('parseFilter names every problem at once', () => {
  assert.throws(
    () => parseFilter({ route: 'r', topic: 't', class: ' , ', team: '1.5', table: 'a.b.c', since: 'yesterday', until: '2025-13-99', limit: '0' }),
    (error: unknown) => {
      assert.ok(error instanceof DlqUsageError);
      assert.equal(error.code, 'INSERTER_DLQ_USAGE');
      for (const flag of ['--route and --topic', '--class', '--team', '--table', '--since', '--until', '--limit']) assert.match(error.message, new RegExp(flag), flag);
      return true;
    },
  );
  assert.throws(() => parseFilter({ since: '2025-02-01', until: '2025-01-01' }), /--since must be before --until/);
});

test('matches: class list, team, table (qualified or bare), route, time bounds (since inclusive, until exclusive)', () => {
  const l = letter(0, 'row_data'); // dead-lettered 2025-01-01
  assert.ok(matches(parseFilter({ class: 'decode,row_data' }), l));
  assert.ok(!matches(parseFilter({ class: 'decode' }), l));
  assert.ok(matches(parseFilter({ team: '7' }), l));
  assert.ok(!matches(parseFilter({ team: '8' }), l));
  assert.ok(matches(parseFilter({ table: 'db.t' }), l));
  assert.ok(matches(parseFilter({ table: 't' }), l));
  assert.ok(!matches(parseFilter({ table: 'other.t' }), l));
  assert.ok(!matches(parseFilter({ table: 'tt' }), l));
  assert.ok(matches(parseFilter({ route: 'events->t' }), l));
  assert.ok(!matches(parseFilter({ route: 'x' }), l));
  assert.ok(matches(parseFilter({ since: '2025-01-01T00:00:00Z' }), l));
  assert.ok(!matches(parseFilter({ until: '2025-01-01T00:00:00Z' }), l));
  assert.ok(matches(parseFilter({ until: '2025-01-01T00:00:00.001Z' }), l));
  const decode = parseDeadLetter(raw(9, { [h.class]: 'decode' }));
  assert.ok(!matches(parseFilter({ table: 't' }), decode), 'no table header: no table match');
  assert.ok(!matches(parseFilter({ team: '7' }), decode));
});

test('select keeps order and stops at the limit', () => {
  const all = [0, 1, 2, 3, 4, 5].map((o) => letter(o, o % 2 === 0 ? 'row_data' : 'decode'));
  assert.deepEqual(
    select(parseFilter({ class: 'row_data' }), all).map((l) => l.raw.offset),
    [0n, 2n, 4n],
  );
  assert.deepEqual(
    select(parseFilter({ class: 'row_data', limit: '2' }), all).map((l) => l.raw.offset),
    [0n, 2n],
  );
  assert.deepEqual(
    select(parseFilter({ since: '2025-01-03', until: '2025-01-05' }), all).map((l) => l.raw.offset),
    [2n, 3n],
  );
});

test('deadLetterTopics: the named topic, the route’s, or every route’s once', () => {
  const config = buildConfig(
    {
      kafka: { brokers: ['k:9092'] },
      destinations: [{ id: 'a', url: 'http://ch:8123' }],
      routes: [
        { topic: 'events', table: 't1', destination: 'a' },
        { topic: 'events', table: 't2', destination: 'a' },
        { name: 'rec', topic: 'recordings', table: 't3', destination: 'a', deadLetterTopic: 'rec-dead' },
      ],
    },
    '/',
  );
  assert.deepEqual(deadLetterTopics(config, {}), ['events.dlq', 'rec-dead']);
  assert.deepEqual(deadLetterTopics(config, parseFilter({ route: 'rec' })), ['rec-dead']);
  assert.deepEqual(deadLetterTopics(config, parseFilter({ topic: 'anything' })), ['anything']);
  assert.throws(() => deadLetterTopics(config, parseFilter({ route: 'nope' })), /no route named "nope".*events->t1/);
});

test('a dead letter read back: the writer’s block (from its last error-class header) is the reason, the rest the original’s', () => {
  const l = parseDeadLetter(
    raw(
      5,
      {
        [h.class]: 'row_data',
        [h.code]: 'INSERTER_CH_ROW',
        [h.serverCode]: '376',
        [h.message]: 'bad uuid\nmore',
        [h.destination]: 'a',
        [h.table]: 'db.t',
        [h.team]: '7',
        [h.topic]: 'events',
        [h.partition]: '3',
        [h.offset]: '105',
        [h.timestamp]: '1600000000000',
        [h.lastFailure]: '2025-02-03T04:05:06.000Z',
      },
      [
        ['trace', 'abc'],
        [h.class, 'from-upstream'],
      ],
    ),
  );
  assert.equal(l.id, 'events.dlq/1/5');
  assert.equal(l.errorClass, 'row_data');
  assert.equal(l.serverCode, '376');
  assert.equal(l.team, 7);
  assert.equal(l.at.toISOString(), '2025-02-03T04:05:06.000Z');
  assert.equal(l.original?.topic, 'events');
  assert.equal(l.original?.partition, 3);
  assert.equal(l.original?.offset, 105n);
  assert.equal(l.original?.timestamp, 1_600_000_000_000n);
  // An x-inserter-* header the original record carried before other headers stays the original's.
  assert.deepEqual(
    l.original?.headers.map(([k, v]) => `${k.toString()}=${v.toString()}`),
    ['trace=abc', `${h.class}=from-upstream`],
  );
  const foreign = parseDeadLetter({ ...raw(6, {}), headers: [[b('x'), b('y')]] });
  assert.equal(foreign.original, undefined, 'no original-* headers: not replayable');
  assert.equal(foreign.at.getTime(), 1_700_000_000_000, 'no last-failure header: the record timestamp');
});

test('showBytes: UTF-8 when printable, base64 otherwise', () => {
  assert.deepEqual(showBytes(b('{"x":"é"}\n')), { encoding: 'utf8', text: '{"x":"é"}\n' });
  assert.deepEqual(showBytes(Buffer.from([0xff, 0xfe, 0x00])), { encoding: 'base64', text: '//4A' });
  assert.deepEqual(showBytes(b('a\u0001b')), { encoding: 'base64', text: Buffer.from('a\u0001b').toString('base64') });
  assert.equal(showBytes(undefined), undefined);
});

test('replay tokens name the dead-letter partition, offsets and row count', () => {
  assert.equal(tokenFor([letter(4, 'row_data'), letter(9, 'row_data'), letter(12, 'row_data')]), 'dlq:events.dlq:1:4-12:3');
  assert.equal(tokenFor([letter(4, 'row_data')]), 'dlq:events.dlq:1:4-4:1');
});
