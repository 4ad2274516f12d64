// The error policy: careful defaults (TOO_MANY_PARTS and auth never dead-letter, row errors isolate),
// overrides resolve route > destination > defaults > built-in, and bad config is reported clearly.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig } from '../../../src/config/load.ts';
import { ConfigError } from '../../../src/errors/inserter-error.ts';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { ErrorPolicy } from '../../../src/errors/policy.ts';

const base = {
  kafka: { brokers: ['127.0.0.1:9092'] },
  destinations: [
    { id: 'a', url: 'http://127.0.0.1:8123' },
    { id: 'b', url: 'http://127.0.0.1:8124' },
  ],
  routes: [{ topic: 't', table: 'x', destination: 'a' }],
};

test('defaults: too many parts and auth pause, never dead-letter; rows isolate; partitions and memory split', () => {
  const p = new ErrorPolicy();
  for (const cls of Object.values(ErrorClasses)) {
    const r = p.resolve(cls, 't->x', 'a');
    if (cls !== ErrorClasses.rowData && r.then === 'deadLetter') assert.ok(['decode', 'oversized', 'unknown_team', 'no_destination', 'destination_down'].includes(cls), cls);
    assert.notEqual(r.then, 'drop', cls);
    assert.notEqual(r.then, 'stop', cls);
  }
  assert.equal(p.resolve(ErrorClasses.tooManyParts, 'r', 'a').then, 'pauseDestination');
  assert.equal(p.resolve(ErrorClasses.tooManyParts, 'r', 'a').action, 'retry');
  assert.equal(p.resolve(ErrorClasses.authentication, 'r', 'a').then, 'pauseDestination');
  assert.equal(p.resolve(ErrorClasses.rowData, 'r', 'a').action, 'isolate');
  assert.equal(p.resolve(ErrorClasses.rowData, 'r', 'a').then, 'deadLetter');
  assert.equal(p.resolve(ErrorClasses.tooManyPartitions, 'r', 'a').action, 'split');
  assert.equal(p.resolve(ErrorClasses.memoryLimit, 'r', 'a').action, 'split');
  assert.equal(p.resolve(ErrorClasses.unknownInsertStatus, 'r', 'a').action, 'retry');
  assert.equal(p.resolve(ErrorClasses.transientNetwork, 'r', 'a').transient, true);
  assert.equal(p.resolve(ErrorClasses.authentication, 'r', 'a').transient, false);
});

test('overrides resolve route > destination > defaults > built-in; one limit replaces the other', () => {
  const config = buildConfig(
    {
      ...base,
      errorPolicy: {
        defaults: { too_many_parts: { baseMs: 2000, capMs: 100_000 } },
        destinations: { b: { too_many_parts: { maxAttempts: 4, then: 'stop' } } },
        routes: { 't->x': { too_many_parts: { then: 'deadLetter' } } },
      },
    },
    '/',
  );
  const p = new ErrorPolicy(config.errorPolicy);
  assert.deepEqual(p.resolve(ErrorClasses.tooManyParts, 'other', 'a').backoff, { baseMs: 2000, factor: 2, capMs: 100_000, maxElapsedMs: 600_000 });
  const b = p.resolve(ErrorClasses.tooManyParts, 'other', 'b');
  assert.equal(b.then, 'stop');
  assert.equal(b.backoff.maxAttempts, 4);
  assert.equal(b.backoff.maxElapsedMs, undefined);
  assert.equal(p.resolve(ErrorClasses.tooManyParts, 't->x', 'b').then, 'deadLetter');
  assert.equal(p.resolve(ErrorClasses.overloaded, 't->x', 'b').then, 'pauseDestination');
});

test('bad errorPolicy config names every field at fault', () => {
  assert.throws(
    () =>
      buildConfig(
        {
          ...base,
          errorPolicy: { defaults: { too_many_parts: { then: 'explode' }, decode: {}, nonsense: {}, overloaded: { baseMs: 10, capMs: 5 } }, destinations: { zz: {} }, routes: { nope: {} } },
        },
        '/',
      ),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      const text = error.issues.join('\n');
      assert.match(text, /errorPolicy\.defaults\.too_many_parts\.then/);
      assert.match(text, /unknown error class "decode" \(decided by the router/);
      assert.match(text, /unknown error class "nonsense"/);
      assert.match(text, /capMs must be at least baseMs/);
      return true;
    },
  );
  assert.throws(
    () => buildConfig({ ...base, errorPolicy: { destinations: { zz: {} }, routes: { nope: {} } } }, '/'),
    /errorPolicy\.destinations\.zz: unknown destination "zz"[\s\S]*errorPolicy\.routes\.nope: unknown route "nope"/,
  );
  assert.throws(() => buildConfig({ ...base, telemetry: { sentryDsn: 'not a url' } }, '/'), /telemetry\.sentryDsn/);
});

test('no_deduplication: retried, then the destination is paused and probed; never dead-lettered; configurable', () => {
  const p = new ErrorPolicy();
  const r = p.resolve(ErrorClasses.noDeduplication, 'r', 'a');
  assert.equal(r.action, 'retry');
  assert.equal(r.then, 'pauseDestination');
  assert.equal(r.transient, false);
  const config = buildConfig({ ...base, errorPolicy: { defaults: { no_deduplication: { pauseMs: 500 } } } }, '/tmp');
  assert.equal(new ErrorPolicy(config.errorPolicy).resolve(ErrorClasses.noDeduplication, 'r', 'a').pauseMs, 500);
});
