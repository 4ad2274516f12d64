// Writes docs/api/admin.openapi.json from the admin API's route schemas (src/control/admin-schemas.ts).
// test/unit/control/admin-server.test.ts fails when the committed document is out of date.
//   node scripts/admin-openapi.ts          # rewrite the document
import { readFileSync, writeFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { buildAdminApp } from '../src/control/admin-server.ts';
import { Secret } from '../src/config/secret.ts';
import { createLogger } from '../src/telemetry/logger.ts';

export const OPENAPI_FILE = new URL('../docs/api/admin.openapi.json', import.meta.url);

/** The OpenAPI document as committed: generated from a server with inert dependencies. */
export async function adminOpenApiText(): Promise<string> {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  const unused = (): never => {
    throw new Error('not used while generating the document');
  };
  const app = await buildAdminApp({
    registry: { replicaId: 'openapi', pause: unused, resume: unused, pauses: unused, confirmation: unused, replicas: unused, waitQuiet: unused },
    pipeline: { status: unused },
    readiness: { check: unused },
    metrics: new Registry(),
    token: new Secret('unused-token-for-the-document'),
    logger: createLogger('silent'),
    version: pkg.version,
  });
  await app.ready();
  const text = `${JSON.stringify(app.swagger(), null, 2)}\n`;
  await app.close();
  return text;
}

if (import.meta.main) {
  writeFileSync(OPENAPI_FILE, await adminOpenApiText());
  process.stdout.write(`wrote ${OPENAPI_FILE.pathname}\n`);
}
