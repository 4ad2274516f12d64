// Owns how a BigQuery destination signs in, as the @google-cloud/bigquery client it gets: a
// service-account key file (bigquery.credentialsFile), else the destination's password as an OAuth
// access token (an emulator, a token minted elsewhere), else Application Default Credentials. The
// key file is read when the sink is first used, not when it is built, so a missing or unreadable
// file is a classified failure of a call (authentication) rather than a constructor's throw; it is
// read once per sink (a rotated key takes a new sink: a restart or a destinations reload). A key's
// token is fetched from Google's token endpoint by the auth library, bounded by requestTimeoutMs.
import { readFile } from 'node:fs/promises';
import { BigQuery } from '@google-cloud/bigquery';
import { JWT, OAuth2Client } from 'google-auth-library';
import type { Secret } from '../../config/secret.ts';
import { ErrorClasses } from '../../errors/classes.ts';
import { WarehouseError } from '../errors.ts';

export const BIGQUERY_SCOPE = 'https://www.googleapis.com/auth/bigquery';

export interface BigQueryCredentials {
  readonly project: string;
  /** The API root (an emulator's http://127.0.0.1:PORT). */
  readonly url: string;
  readonly location: string | undefined;
  readonly credentialsFile: string | undefined;
  /** Used as the access token when non-empty and there is no credentialsFile. */
  readonly password: Secret;
  /** The destination's requestTimeoutMs: also each request of a service account's token. */
  readonly timeoutMs: number;
}

/** What an access token can be: printable ASCII, no whitespace (it travels as `Authorization: Bearer <token>`). */
const tokenText = /^[\x21-\x7e]+$/;

/** `signal`: the sink's own (its close()), never a caller's — the client is shared by every caller. */
export async function bigQueryClient(credentials: BigQueryCredentials, signal: AbortSignal): Promise<BigQuery> {
  const options = { projectId: credentials.project, apiEndpoint: credentials.url, ...(credentials.location === undefined ? {} : { location: credentials.location }) };
  if (credentials.credentialsFile !== undefined) return new BigQuery({ ...options, authClient: await serviceAccount(credentials.credentialsFile, credentials.timeoutMs, signal) });
  const token = credentials.password.reveal();
  if (token !== '') {
    // A value a header cannot carry (a pasted key file, a line break) would fail in fetch with an
    // error quoting it: refused here, in words that do not.
    if (!tokenText.test(token)) {
      throw new WarehouseError(
        ErrorClasses.authentication,
        'the destination password is not an OAuth access token (it has whitespace or characters other than printable ASCII); a service-account key belongs in bigquery.credentialsFile',
        undefined,
        undefined,
      );
    }
    // Used as it is, never refreshed here: whoever minted it renews the destination's password.
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: token });
    return new BigQuery({ ...options, authClient });
  }
  return new BigQuery(options);
}

/**
 * A service-account key as google-auth-library's JWT client. Only that type: the library's generic
 * loaders (keyFilename, fromJSON) are deprecated because a credentials file of another type (an
 * external account) can make the library run programs or call URLs the file names.
 */
async function serviceAccount(file: string, timeoutMs: number, signal: AbortSignal): Promise<JWT> {
  // ENOENT, EACCES: classified as authentication by the caller.
  const text = await readFile(file, { encoding: 'utf8', signal });
  const refused = (why: string): WarehouseError =>
    // Never the file's content, nor JSON.parse's message (it quotes the text around the fault).
    new WarehouseError(ErrorClasses.authentication, `credentials file ${file} ${why}: a service-account key is JSON with type "service_account", client_email and private_key`, undefined, undefined);
  let key: unknown;
  try {
    key = JSON.parse(text);
  } catch {
    throw refused('is not JSON');
  }
  const { type, client_email: email, private_key: privateKey, private_key_id: keyId } = (typeof key === 'object' && key !== null ? key : {}) as Record<string, unknown>;
  if (type !== 'service_account') throw refused(`is not a service-account key (type ${typeof type === 'string' ? JSON.stringify(type.slice(0, 40)) : 'missing'})`);
  if (typeof email !== 'string' || typeof privateKey !== 'string') throw refused('lacks client_email or private_key');
  // transporterOptions: the defaults of the client's own gaxios, which fetches the token (and is
  // given no signal by the library): each attempt of that fetch ends after timeoutMs.
  return new JWT({ email, key: privateKey, ...(typeof keyId === 'string' ? { keyId } : {}), scopes: [BIGQUERY_SCOPE], transporterOptions: { timeout: timeoutMs } });
}
