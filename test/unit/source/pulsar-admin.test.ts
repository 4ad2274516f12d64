// PulsarAdmin's redirects (src/source/pulsar-admin.ts), against the fake web service of review
// 2026-12-07f: a broker that does not own a topic redirects its admin calls to the one that does; the
// adapter follows with the token in its header and the method and body kept (307), a bounded number
// of hops, only to http(s) without user info; a URL with user info is refused up front.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { inspect } from 'node:util';
import { Secret } from '../../../src/config/secret.ts';
import { ConfigError } from '../../../src/errors/inserter-error.ts';
import { PulsarAdmin, PulsarRequestError } from '../../../src/source/pulsar-admin.ts';
import { PulsarLedgerStore } from '../../../src/source/pulsar-ledger-store.ts';
import { PulsarSource } from '../../../src/source/pulsar-source.ts';
import { startFakePulsar, type FakePulsar } from '../review-2026-12-07f/fake-pulsar.ts';

let here: FakePulsar;
let owner: FakePulsar;

beforeEach(async () => {
  [here, owner] = await Promise.all([startFakePulsar(), startFakePulsar()]);
});

afterEach(async () => {
  await Promise.all([here.close(), owner.close()]);
});

const admin = (url: string): PulsarAdmin => new PulsarAdmin({ url, tenant: 'public', namespace: 'default', token: new Secret('tok') });
const signal = (): AbortSignal => AbortSignal.timeout(5_000);

test('a 307 to another broker is followed with the token, the method and the body', async () => {
  here.admin = (request) => ({ status: 307, headers: { location: `${owner.url}/admin/v2/${request.path}` } });
  owner.admin = () => ({ status: 204 });
  const policy = { retentionTimeInMinutes: -1, retentionSizeInMB: 5 };
  await admin(here.url).setRetention('t', policy, signal());
  assert.deepEqual(
    owner.requests.map((r) => [r.method, r.path, r.headers.authorization, r.headers['content-length']]),
    [['POST', 'persistent/public/default/t/retention', 'Bearer tok', String(JSON.stringify(policy).length)]],
  );
});

test('a redirect loop ends after 5 hops; a redirect to another scheme or to a URL with user info is not followed', async () => {
  here.admin = (request) => ({ status: 307, headers: { location: `${here.url}/admin/v2/${request.path}` } });
  await assert.rejects(admin(here.url).partitions('t', signal()), (error: unknown) => error instanceof PulsarRequestError && /more than 5 redirects/.test(error.message));
  assert.equal(here.requests.length, 6);
  for (const location of ['ftp://127.0.0.1/x', `${owner.url.replace('http://', 'http://u:pa55@')}/admin/v2/x`]) {
    here.admin = () => ({ status: 302, headers: { location } });
    await assert.rejects(admin(here.url).partitions('t', signal()), (error: unknown) => error instanceof PulsarRequestError && /not following/.test(error.message) && !inspect(error).includes('pa55'));
  }
  assert.equal(owner.requests.length, 0);
});

test('a broker URL with user info is refused by the source, the ledger store and the admin client, without repeating the password', () => {
  const url = here.url.replace('http://', 'http://inserter:pa55-secret@');
  const common = { url, tenant: 'public', namespace: 'default', subscription: 'sub' };
  for (const build of [() => new PulsarSource({ ...common, topics: ['t'] }), () => new PulsarLedgerStore(common), () => admin(url)]) {
    assert.throws(build, (error: unknown) => error instanceof ConfigError && /credentials/.test(error.message) && !inspect(error).includes('pa55-secret'));
  }
});
