// Property-based fuzzing (fast-check) of the destinations API document (docs/api/destinations.md):
// random and mutated documents, as objects and as mutated JSON text, go through what the HTTP
// provider does with a body — decodeJson → parseDocument → applyTrust. Nothing but a
// DestinationsError escapes; every destination that comes out trusted is inside the allowlist (an
// independent oracle: allowed host or loopback, HTTPS unless loopback, TLS files inside tlsDir, no
// credentials in its URL); no message — error, issue or rejection — carries a password or a URL's
// credentials. Seeded: FUZZ_SEED=<n> replays a run; FUZZ_RUNS=<n> runs longer.
import assert from 'node:assert/strict';
import { isAbsolute, relative, resolve } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { DestinationsError } from '../../../src/route/provider.ts';
import { decodeJson, parseDocument } from '../../../src/route/providers/document.ts';
import { applyTrust, type TrustPolicy } from '../../../src/route/providers/trust.ts';
import { tempDirSync } from '../../helpers/temp-dir.ts';

// CI runs one fixed seed (a run there must not fail by the luck of the draw); elsewhere each run draws anew.
const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : process.env.CI === 'true' ? 20261206 : undefined;
const numRuns = Number(process.env.FUZZ_RUNS ?? 400);
const params = { numRuns, ...(seed === undefined ? {} : { seed }) };

const tlsDir = tempDirSync('fuzz-tls-');
const policy: TrustPolicy = { allowedHosts: ['*.clickhouse.cloud', 'ch.internal'], allowHttp: false, tlsDir, configHosts: ['yaml-ch.example.com'] };
const SECRET = 'Zq7-s3cr3t';

/** The oracle: what the allowlist admits, written apart from trust.ts. */
function trusted(url: string, tls: { caFile?: string; certFile?: string; keyFile?: string } | undefined): string | undefined {
  const u = new URL(url);
  if (u.username !== '' || u.password !== '') return 'credentials in the URL';
  const host = u.hostname.toLowerCase().replace(/\.$/, '');
  const loopback = host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '[::1]';
  const allowed = loopback || host === 'ch.internal' || host === 'yaml-ch.example.com' || (host.endsWith('.clickhouse.cloud') && host.length > '.clickhouse.cloud'.length);
  if (!allowed) return `host ${host}`;
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) return `scheme ${u.protocol}`;
  for (const file of Object.values(tls ?? {})) {
    if (file === undefined) continue;
    const rel = relative(tlsDir, resolve(tlsDir, file));
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel) || !isAbsolute(file === '' ? 'x' : resolve(tlsDir, file))) return `tls file ${file}`;
  }
  return undefined;
}

const hosts = fc.constantFrom(
  'a.clickhouse.cloud',
  'x.y.clickhouse.cloud',
  'clickhouse.cloud',
  'evilclickhouse.cloud',
  'a.clickhouse.cloud.evil.com',
  'ch.internal',
  'CH.Internal',
  'ch.internal.',
  'ch.internal.evil.com',
  'yaml-ch.example.com',
  '127.0.0.1',
  '127.1.2.3',
  'localhost',
  '[::1]',
  '10.0.0.1',
  'evil.com',
  '0x7f.1',
  '2130706433',
);
const url = fc
  .tuple(
    fc.constantFrom('https', 'http', 'HTTPS', 'ftp', 'ws', 'file'),
    fc.constantFrom('', `u:${SECRET}@`, `${SECRET}@`, `u:${SECRET}:x@`),
    hosts,
    fc.constantFrom('', ':8443', ':0', ':99999'),
    fc.constantFrom('', '/', '/p?q=1', '#f'),
  )
  .map(([scheme, auth, host, port, path]) => `${scheme}://${auth}${host}${port}${path}`);
const tlsFile = fc.constantFrom('ca.pem', 'sub/ca.pem', '../ca.pem', '/etc/passwd', `${tlsDir}/ca.pem`, `${tlsDir}/../x.pem`, './x/../../y.pem', '', 'a\u0000b');
const tls = fc.option(fc.record({ caFile: tlsFile, certFile: tlsFile, keyFile: tlsFile }, { requiredKeys: [] }), { nil: undefined });
const destination = fc.record({
  id: fc.constantFrom('d1', 'd2', 'd3'),
  url: fc.oneof({ weight: 8, arbitrary: url }, { weight: 1, arbitrary: fc.string() }),
  user: fc.constantFrom('default', 'u'),
  password: fc.constantFrom(`${SECRET}-pw`, SECRET, ''),
  database: fc.constantFrom('db', 'db', ''),
  // mostly none or a complete set (CA, certificate and key), sometimes incomplete
  tls: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 3, arbitrary: fc.record({ caFile: tlsFile, certFile: tlsFile, keyFile: tlsFile }) }, { weight: 1, arbitrary: tls }),
});
const documents = fc
  .tuple(
    fc.oneof({ weight: 9, arbitrary: fc.constant('v1') }, { weight: 1, arbitrary: fc.string() }),
    fc.uniqueArray(destination, { selector: (d) => d.id, maxLength: 3 }),
    fc.array(fc.tuple(fc.nat(5), fc.nat()), { maxLength: 6 }),
  )
  .map(([version, destinations, teams]) => ({
    version,
    destinations,
    teams: [...new Map(teams.map(([team, at]) => [team, destinations[at % Math.max(1, destinations.length)]?.id ?? 'dx'] as const))].map(([team_id, destination]) => ({ team_id, destination })),
  }));
/** A document with one field replaced by anything at all. */
const mutatedDocuments = fc.tuple(documents, fc.nat(), fc.anything()).map(([doc, at, value]) => {
  const d = structuredClone(doc) as unknown as Record<string, unknown>;
  const paths: Array<[Record<string, unknown>, string]> = [
    [d, 'version'],
    [d, 'destinations'],
    [d, 'teams'],
  ];
  for (const x of doc.destinations.keys()) for (const k of ['id', 'url', 'user', 'password', 'database', 'tls', 'limits']) paths.push([(d.destinations as Array<Record<string, unknown>>)[x]!, k]);
  const [target, key] = paths[at % paths.length]!;
  target[key] = value;
  return d;
});

function noSecret(text: string, where: string): void {
  assert.ok(!text.includes(SECRET), `${where} carries a secret: ${text}`);
}

const seen = { invalid: 0, trusted: 0, rejected: 0 };

function check(raw: unknown, previous: ReturnType<typeof parseDocument>['snapshot'] | undefined): ReturnType<typeof parseDocument>['snapshot'] | undefined {
  let parsed: ReturnType<typeof parseDocument>;
  try {
    parsed = parseDocument(raw, 1, 'the destinations document');
  } catch (error) {
    assert.ok(error instanceof DestinationsError, `only a DestinationsError escapes (got ${String(error)})`);
    assert.equal(error.code, 'INSERTER_DESTINATIONS_INVALID');
    noSecret(error.message, 'the error');
    for (const issue of error.issues) noSecret(issue, 'an issue');
    seen.invalid++;
    return previous;
  }
  const { snapshot, rejections } = applyTrust(parsed.snapshot, previous, policy);
  for (const r of rejections) noSecret(r.message, `the rejection of ${r.destination}`);
  seen.rejected += rejections.length;
  seen.trusted += snapshot.destinations.size;
  for (const [id, d] of snapshot.destinations) {
    const kept = previous?.destinations.get(id) === d;
    if (kept) continue; // the last good one, checked when it came in
    const why = trusted(d.url, d.tls);
    assert.equal(why, undefined, `destination ${id} (${d.url}) is trusted but outside the allowlist: ${why}`);
  }
  for (const [team, dest] of snapshot.teams) assert.ok(snapshot.destinations.has(dest), `team ${team} is routed to a destination that is not in force`);
  return snapshot;
}

test('random destinations documents: a DestinationsError or only trusted destinations, never a secret in a message', () => {
  fc.assert(
    fc.property(fc.array(documents, { minLength: 1, maxLength: 3 }), (docs) => {
      let previous: ReturnType<typeof parseDocument>['snapshot'] | undefined;
      for (const doc of docs) previous = check(doc, previous);
    }),
    params,
  );
  // The generators reach all three outcomes (else the properties above prove little).
  assert.ok(seen.invalid > 0 && seen.trusted > 0 && seen.rejected > 0, JSON.stringify(seen));
});

test('mutated destinations documents (a field replaced by anything): the same', () => {
  fc.assert(
    fc.property(mutatedDocuments, (doc) => {
      check(doc, undefined);
    }),
    params,
  );
});

test('mutated JSON text of a document: not JSON is INSERTER_DESTINATIONS_NOT_JSON without quoting the text; the rest as above', () => {
  const text = fc.tuple(documents, fc.nat(), fc.constantFrom('truncate', 'insert', 'delete', 'flip'), fc.string({ maxLength: 3 })).map(([doc, at, how, chunk]) => {
    const t = JSON.stringify(doc);
    const i = at % (t.length + 1);
    if (how === 'truncate') return t.slice(0, i);
    if (how === 'insert') return t.slice(0, i) + chunk + t.slice(i);
    if (how === 'delete') return t.slice(0, i) + t.slice(i + 1);
    return t.slice(0, i) + (t[i] === '"' ? "'" : '"') + t.slice(i + 1);
  });
  fc.assert(
    fc.property(text, (body) => {
      let raw: unknown;
      try {
        raw = decodeJson(body, 'the destinations document');
      } catch (error) {
        assert.ok(error instanceof DestinationsError);
        assert.equal(error.code, 'INSERTER_DESTINATIONS_NOT_JSON');
        noSecret(error.message, 'the error');
        return;
      }
      check(raw, undefined);
    }),
    params,
  );
});
