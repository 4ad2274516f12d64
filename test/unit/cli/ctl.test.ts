// `inserter ctl` against a fake admin API: the token goes in a bearer header (never printed), the pause
// body carries scope, reason, by, wait and timeout; exit codes 0/1/2/3 mean done/failed/usage/not quiet.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ctl, type CtlIo } from '../../../src/cli/ctl.ts';
import { tempDirSync } from '../../helpers/temp-dir.ts';

const tokenFile = join(tempDirSync('ctl-'), 'token');
writeFileSync(tokenFile, 'secret-token-value-123\n');

function io(answer: { status: number; body: unknown }): CtlIo & { out: string; err: string; calls: Array<{ url: string; init: RequestInit | undefined }> } {
  const state = { out: '', err: '', calls: [] as Array<{ url: string; init: RequestInit | undefined }> };
  return Object.assign(state, {
    stdout: { write: (t: string) => void (state.out += t) },
    stderr: { write: (t: string) => void (state.err += t) },
    env: {},
    fetch: (async (url: string, init?: RequestInit) => {
      state.calls.push({ url, init });
      return new Response(JSON.stringify(answer.body), { status: answer.status });
    }) as unknown as typeof fetch,
  });
}

const outcome = (state: string) => ({
  state,
  created: true,
  pause: { key: 'table:events', reason: 'ddl', by: 'me' },
  replicas: [{ replicaId: 'r1', applied: true, inflight: state === 'quiet' ? 0 : 2 }],
  waitingFor: state === 'quiet' ? [] : [{ replicaId: 'r1', applied: true, inflight: 2 }],
});

test('pause sends the bearer token and the body; quiet exits 0, timeout exits 3 naming the busy replica', async () => {
  const quiet = io({ status: 200, body: outcome('quiet') });
  assert.equal(await ctl(['pause', '--admin', 'http://x:1/', '--token-file', tokenFile, '--scope', 'table:events', '--reason', 'ddl', '--by', 'me', '--timeout', '5000'], quiet), 0);
  const call = quiet.calls[0];
  assert.equal(call?.url, 'http://x:1/v1/pauses');
  assert.equal((call?.init?.headers as Record<string, string>).authorization, 'Bearer secret-token-value-123');
  assert.deepEqual(JSON.parse(call?.init?.body as string), { scope: 'table:events', reason: 'ddl', by: 'me', wait: true, timeoutMs: 5000 });
  assert.ok(!quiet.out.includes('secret-token'), 'the token is never printed');
  const slow = io({ status: 202, body: outcome('timeout') });
  assert.equal(await ctl(['pause', '--admin', 'http://x:1', '--token-file', tokenFile, '--scope', 'table:events', '--reason', 'ddl'], slow), 3);
  assert.match(slow.out, /waiting for r1: 2 insert\(s\) in flight/);
});

test('usage errors exit 2; HTTP errors exit 1', async () => {
  const x = io({ status: 200, body: {} });
  assert.equal(await ctl(['pause', '--admin', 'http://x:1', '--scope', 'planet:x', '--reason', 'r', '--token-file', tokenFile], x), 2);
  assert.equal(await ctl(['pause', '--admin', 'http://x:1', '--scope', 'all', '--reason', 'r'], x), 2, 'no token');
  assert.equal(await ctl(['status'], x), 2, 'no --admin');
  const denied = io({ status: 403, body: { error: 'INSERTER_ADMIN_FORBIDDEN', message: 'the bearer token is not valid' } });
  assert.equal(await ctl(['resume', '--admin', 'http://x:1', '--scope', 'team:7', '--token-file', tokenFile], denied), 1);
  assert.equal(denied.calls[0]?.url, 'http://x:1/v1/pauses/team%3A7');
  assert.match(denied.err, /403/);
});
