// Owns one GET to the destinations API: bearer auth, a timeout combined with the caller's signal, a
// bounded body, and every failure classified as a DestinationsError (or AbortedError when the
// caller gave up). Errors name the status or condition, never the token or the body.
import type { Secret } from '../../config/secret.ts';
import { AbortedError } from '../../errors/inserter-error.ts';
import { DestinationsError } from '../provider.ts';

export interface ApiRequest {
  readonly url: URL;
  readonly token: Secret;
  readonly timeoutMs: number;
  readonly maxBodyBytes: number;
  readonly etag?: string | undefined;
  /** For messages: what is being fetched, e.g. "GET /v1/destinations". */
  readonly what: string;
}

export interface ApiResponse {
  /** 200, 304 or 404; anything else throws. */
  readonly status: number;
  readonly etag: string | undefined;
  readonly text: string;
}

export async function apiGet(request: ApiRequest, signal: AbortSignal): Promise<ApiResponse> {
  const timeout = AbortSignal.timeout(request.timeoutMs);
  const combined = AbortSignal.any([signal, timeout]);
  const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${request.token.reveal()}` };
  if (request.etag !== undefined) headers['if-none-match'] = request.etag;
  try {
    const response = await fetch(request.url, { headers, signal: combined, redirect: 'error' });
    const etag = response.headers.get('etag') ?? undefined;
    if (response.status === 200) return { status: 200, etag, text: await readBody(response, request) };
    await response.body?.cancel().catch(() => undefined);
    if (response.status === 304 || response.status === 404) return { status: response.status, etag, text: '' };
    if (response.status === 401 || response.status === 403) {
      throw new DestinationsError('unauthorized', `${request.what}: HTTP ${response.status}, check destinationsApi.token`, { details: { status: response.status } });
    }
    throw new DestinationsError('http_status', `${request.what}: HTTP ${response.status}`, { details: { status: response.status } });
  } catch (error) {
    if (signal.aborted) throw new AbortedError(`${request.what} aborted`, { cause: signal.reason });
    if (error instanceof DestinationsError) throw error;
    if (timeout.aborted) throw new DestinationsError('timeout', `${request.what}: no complete answer within ${request.timeoutMs} ms`);
    throw new DestinationsError('network', `${request.what}: ${networkMessage(error)}`, { cause: error });
  }
}

async function readBody(response: Response, request: ApiRequest): Promise<string> {
  const tooLarge = (): DestinationsError => new DestinationsError('too_large', `${request.what}: answer larger than ${request.maxBodyBytes} bytes`);
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > request.maxBodyBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (response.body === null) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader: ReadableStreamDefaultReader<Uint8Array> = response.body.getReader();
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    size += read.value.byteLength;
    if (size > request.maxBodyBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(read.value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function networkMessage(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  if (typeof cause?.code === 'string') return `request failed (${cause.code})`;
  return 'request failed';
}
