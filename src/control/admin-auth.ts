// Owns checking the admin API's bearer token: constant time (both sides are hashed to equal length
// first, so neither the content nor the length of the token leaks through timing), 401 without
// credentials, 403 with wrong ones. The token is a Secret and is never logged.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Secret } from '../config/secret.ts';

export type AuthResult = 'ok' | 'missing' | 'wrong';

export class BearerAuth {
  readonly #digest: Buffer;

  constructor(token: Secret) {
    this.#digest = digest(token.reveal());
  }

  check(authorization: string | undefined): AuthResult {
    if (authorization === undefined) return 'missing';
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (match?.[1] === undefined) return 'missing';
    return timingSafeEqual(digest(match[1]), this.#digest) ? 'ok' : 'wrong';
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
