// Wrong password: the destination is paused (keeps probing, logs an error, never dead-letters,
// commits nothing past the rows), and once the server accepts the password (rotated on the server
// side: chlocal restarted with a new users file) it resumes by itself and everything lands once.
// The failure reaches Sentry (a local ingest endpoint, the real SDK loaded by `bin/inserter` because a
// DSN is configured) with its class and rows, and without the password.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { committedOffsets } from '../helpers/bus.ts';
import { produceRows, useScenarioStack } from '../helpers/error-scenarios.ts';
import { startSentryFake } from '../helpers/sentry-fake.ts';

const TOTAL = 3_000;
const stack = useScenarioStack('errors-auth', { insertUser: { name: 'ingest', password: 'rotated' } });
const { topic, group } = stack;

test('a wrong password pauses the destination; it resumes by itself after the fix and loses nothing', async (t) => {
  const { bootstrap, ch } = stack;
  await produceRows(bootstrap, topic, 0, TOTAL);
  const sentry = await startSentryFake();
  t.after(() => sentry.close());
  const inserter = await stack.start({
    password: 'old',
    maxRows: 1_000,
    extra: {
      errorPolicy: { destinations: { a: { authentication: { baseMs: 100, capMs: 200, pauseMs: 500 } } } },
      telemetry: { logLevel: 'info', sentryDsn: sentry.dsn },
    },
  });
  const log = async (): Promise<string> => await inserter.log();
  await stack.waitFor(async () => /destination paused/.test(await log()), 'the destination to be paused', 20_000);
  await sleep(2_000); // paused for a while: it keeps probing, nothing moves
  assert.match(await log(), /"class":"authentication"/);
  await stack.waitFor(async () => sentry.events().length > 0, 'a Sentry event', 20_000);
  const [event] = sentry.events();
  assert.equal((event?.tags as Record<string, string> | undefined)?.error_class, 'authentication');
  assert.equal((event?.contexts as Record<string, Record<string, unknown>> | undefined)?.delivery?.topic, topic);
  assert.ok(!sentry.raw.join('\n').includes('"old"'), 'the password is not sent to Sentry');
  assert.equal((await stack.counts()).rows, 0);
  const committed = await committedOffsets(bootstrap, group, topic, 1);
  assert.ok((committed[0] ?? -1n) <= 0n, `nothing committed while paused (${committed[0]})`);
  // Server-side fix: the password the inserter has becomes valid.
  await writeFile(
    join(ch.dir, 'users.json'),
    JSON.stringify([
      { name: 'default', password: '' },
      { name: 'ingest', password: 'old' },
    ]),
  );
  await ch.restart();
  await stack.waitForRows(TOTAL, 30_000);
  await stack.assertExactlyOnce(TOTAL);
  assert.match(await log(), /destination resumed/);
  assert.doesNotMatch(await log(), /dead-lettering/);
  await stack.assertNothingDeadLettered();
  assert.equal(await inserter.stop(), 0);
});
