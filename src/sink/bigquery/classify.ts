// Owns the mapping from what BigQuery (its REST API, a load job's errorResult) and the network say
// to inserter's error classes: the one place that knows BigQuery's error reasons. The table in
// docs/design/bigquery.md ("Errors") is the prose version. Errors arrive in three shapes: a failed
// HTTP call (google-auth-library's GaxiosError: `status`, `response.data.error.errors[].reason`;
// the @google-cloud/bigquery ApiError has the same fields as `code` and `errors`), a load job that
// ended with an `errorResult` ({ reason, message }), and a network failure (a code somewhere on the
// `cause` chain: fetch wraps the socket's error). Server text is kept only redacted (redact()): a
// proxy or gateway may echo the request's Authorization header.
import { ErrorClasses, type ErrorClass } from '../../errors/classes.ts';
import { socketErrorCodes, WarehouseError } from '../errors.ts';
import type { JobResource } from './api.ts';

/** An error as BigQuery reports it: an HTTP error's `errors[]` entry or a job's `errorResult`. */
export interface ErrorProto {
  readonly reason?: string | undefined;
  readonly message?: string | undefined;
  readonly location?: string | undefined;
}

/** BigQuery's error reasons (https://cloud.google.com/bigquery/docs/error-messages). */
const byReason = new Map<string, ErrorClass>([
  ['accessDenied', ErrorClasses.authentication],
  ['unauthorized', ErrorClasses.authentication],
  ['authError', ErrorClasses.authentication],
  ['forbidden', ErrorClasses.authentication],
  ['billingNotEnabled', ErrorClasses.authentication],
  ['billingTierLimitExceeded', ErrorClasses.authentication],
  ['notFound', ErrorClasses.missingObject],
  ['rateLimitExceeded', ErrorClasses.overloaded],
  ['quotaExceeded', ErrorClasses.overloaded],
  ['tableUnavailable', ErrorClasses.overloaded],
  ['timeout', ErrorClasses.overloaded],
  ['resourcesExceeded', ErrorClasses.memoryLimit],
  ['backendError', ErrorClasses.unknownServerError],
  ['internalError', ErrorClasses.unknownServerError],
  ['jobBackendError', ErrorClasses.unknownServerError],
  ['jobInternalError', ErrorClasses.unknownServerError],
  ['stopped', ErrorClasses.unknownServerError],
]);

const byStatus = new Map<number, ErrorClass>([
  [401, ErrorClasses.authentication],
  [403, ErrorClasses.authentication],
  [404, ErrorClasses.missingObject],
  [408, ErrorClasses.transientNetwork],
  // The request is larger than the API takes: halves fit (the class whose policy splits).
  [413, ErrorClasses.memoryLimit],
  [429, ErrorClasses.overloaded],
]);

const networkCodes = new Set([
  ...socketErrorCodes,
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  // gaxios: its request timeout (the destination's requestTimeoutMs) and an abort that was not ours.
  'TimeoutError',
  'AbortError',
]);
// gaxios's own wording of a request that got no answer ("request to https://… failed, reason: …"),
// e.g. the token endpoint's behind a proxy that drops the connection.
const networkText = /timeout|timed out|socket hang up|other side closed|terminated|premature close|fetch failed|request to \S+ failed, reason/i;

/**
 * A row that does not fit the schema. Real BigQuery: "Error while reading data, error message: JSON
 * parsing error in row starting at position 123: ..." (reason `invalid`). The emulator: its value
 * conversion's failure (reason `jobInternalError`), e.g. 'strconv.ParseInt: parsing "…": invalid syntax'.
 */
const rowText = /error while reading data|parsing error in row|row starting at position|could not (?:convert|parse) |strconv\.\w+: parsing/i;
/** Byte offset of the failing row in the body, as real BigQuery names it. */
const positionHint = /row starting at position (\d+)/i;
/** A missing table said in words: the emulator's load into a table that is not there (CREATE_NEVER). */
const notFoundText = /\bnot found\b/i;
/** Credentials that cannot be loaded or refreshed (google-auth-library's own errors, no HTTP status). */
const credentialsText = /could not load the default credentials|no refresh token|invalid_grant|unauthorized_client|invalid_client|private key|client_email|DECODER routines|PEM routines/i;

/**
 * A failed job (its `status.errorResult`, and `status.errors[]`: real BigQuery names each bad row
 * there, the errorResult only says "too many errors") as a WarehouseError.
 */
export function classifyJobFailure(job: JobResource, body: readonly Buffer[] | undefined, jobId?: string, secrets: readonly string[] = []): WarehouseError {
  const result = job.status?.errorResult ?? { reason: 'unknown', message: 'the job failed without an errorResult' };
  const details = (job.status?.errors ?? []).filter((e) => e !== result && e.message !== result.message);
  const failure = classifyErrorProto(result, job, body, details, secrets);
  return jobId === undefined ? failure : new WarehouseError(failure.errorClass, `job ${jobId}: ${failure.message}`, failure.serverCode, failure.cause, failure.row);
}

/** A load job's errorResult (or an HTTP error's first errors[] entry) as a WarehouseError; `details`: more entries of the same failure. */
export function classifyErrorProto(proto: ErrorProto, cause: unknown, body?: readonly Buffer[], details: readonly ErrorProto[] = [], secrets: readonly string[] = []): WarehouseError {
  const reason = proto.reason ?? '';
  const detail = details[0]?.message;
  const message = firstLine(`${reason === '' ? '' : `${reason}: `}${proto.message ?? 'no message'}${detail === undefined ? '' : ` (${detail})`}`, secrets);
  const text = [proto.message ?? '', ...details.map((d) => d.message ?? '')].join('\n');
  let cls = byReason.get(reason);
  let row: number | undefined;
  if (reason === 'invalid' || reason === 'invalidQuery' || ((cls === ErrorClasses.unknownServerError || cls === undefined) && rowText.test(text))) {
    const position = positionHint.exec(text);
    row = position === null || body === undefined ? undefined : rowAt(body, Number(position[1]));
    // A refusal that names no row and does not read like one may be the request's (a setting, a
    // location): bisecting (unknown_server_error) tells a bad row from a refused destination.
    cls = row !== undefined || rowText.test(text) ? ErrorClasses.rowData : ErrorClasses.unknownServerError;
  }
  if ((cls === undefined || cls === ErrorClasses.unknownServerError) && notFoundText.test(text)) cls = ErrorClasses.missingObject;
  return new WarehouseError(cls ?? ErrorClasses.unknownServerError, message, undefined, cause, row);
}

/**
 * Anything an API call or a wait rejected with, as a WarehouseError. `secrets`: values of the
 * sink's own (its access token) to cut from every text kept, besides any `Bearer …`.
 */
export function classifyBigQueryError(error: unknown, body?: readonly Buffer[], secrets: readonly string[] = []): WarehouseError {
  if (error instanceof WarehouseError) return error;
  const failure = classifyRaw(error, body, secrets);
  return new WarehouseError(failure.errorClass, failure.message, failure.serverCode, slim(error, secrets), failure.row);
}

/** Which call failed, for classifyMaybeLanded: the upload, or a read of the token's lookup or wait. */
export type JobCall = 'upload' | 'jobs.get' | 'datasets.get';

/**
 * A failure of a call after which the token's load job may exist and load: the upload (jobs.insert
 * may have created the job and answered with an error, or not at all) and every jobs.get of the
 * chain lookup and of the wait (they say nothing about a job that exists). Only what is known keeps
 * its class: a 4xx refusal of the upload (BigQuery did not create the job), a credentials or rate
 * refusal (retried under the same token by their policies, never split), a network failure
 * (transient_network: ambiguous already). Everything else — any 5xx, a jobs.get refused for a
 * reason of its own, an unexpected throw — is unknown_insert_status: the core retries under the
 * same token, whose lookup then finds the job (and never splits the rows under new tokens).
 */
export function classifyMaybeLanded(error: unknown, call: JobCall, body?: readonly Buffer[], secrets: readonly string[] = []): WarehouseError {
  // Ours (a wait's timeout, a vanished job: unknown_insert_status; a chain without end: unknown).
  if (error instanceof WarehouseError) return error;
  const failure = classifyBigQueryError(error, body, secrets);
  const status = httpStatus(error);
  const server = status !== undefined && status >= 500;
  if (!server && (failure.errorClass === ErrorClasses.transientNetwork || failure.errorClass === ErrorClasses.authentication || failure.errorClass === ErrorClasses.overloaded)) return failure;
  if (call === 'upload' && status !== undefined && status >= 400 && status < 500) return failure;
  const what = call === 'upload' ? 'the upload of a load job (jobs.insert)' : call;
  return new WarehouseError(
    ErrorClasses.unknownInsertStatus,
    `${what} failed (${failure.errorClass}): ${failure.message}; the load job may exist, a retry under the same token looks it up`,
    undefined,
    failure.cause,
  );
}

/**
 * A refusal of a request that says the same whatever the moment: a 4xx other than an expired or
 * refused token (401), a timeout (408) or a rate limit (429, 403 rateLimitExceeded).
 */
export function isLastingRefusal(error: unknown): boolean {
  const status = httpStatus(error);
  if (status === undefined || status < 400 || status >= 500 || status === 401 || status === 408 || status === 429) return false;
  return classifyRaw(error, undefined, []).errorClass !== ErrorClasses.overloaded;
}

/**
 * The error a failure keeps as its cause: an HTTP client error without its request and response
 * objects (the request's headers, its body's stream — which holds the insert's buffers), so it is
 * small to log and keeps no body alive. Status, code, BigQuery's errors[] and the cause chain (each
 * slimmed too) stay; every message is redacted (redact()) — an error of fetch's own may quote a
 * header value, a server's answer may echo one.
 */
export function slim(error: unknown, secrets: readonly string[] = [], depth = 0): unknown {
  if (typeof error === 'string') return redact(error, secrets);
  if (typeof error !== 'object' || error === null) return error;
  if (depth >= 5) return undefined;
  const { code, cause, name, message, stack } = error as { code?: unknown; cause?: unknown; name?: unknown; message?: unknown; stack?: unknown };
  const http = 'config' in error || 'response' in error;
  const status = httpStatus(error);
  const text = typeof message === 'string' ? message : http ? 'BigQuery API request failed' : 'an error without a message';
  const keptCause = cause === undefined ? undefined : slim(cause, secrets, depth + 1);
  const kept = new Error(redact(text, secrets), keptCause === undefined ? undefined : { cause: keptCause });
  kept.name = http ? 'BigQueryApiError' : typeof name === 'string' ? name : 'Error';
  // The original frames (where it was thrown), under the redacted first line.
  const frames = typeof stack === 'string' ? stack.split('\n').filter((line) => /^\s+at /.test(line)) : [];
  kept.stack = [`${kept.name}: ${kept.message}`, ...frames].join('\n');
  const errors = apiErrors(error).map((e) => ({
    ...(e.reason === undefined ? {} : { reason: redact(String(e.reason), secrets) }),
    ...(e.message === undefined ? {} : { message: redact(String(e.message), secrets) }),
    ...(e.location === undefined ? {} : { location: redact(String(e.location), secrets) }),
  }));
  return Object.assign(kept, {
    ...(status === undefined ? {} : { status }),
    ...(typeof code === 'string' ? { code: redact(code, secrets) } : typeof code === 'number' ? { code } : {}),
    ...(http || errors.length > 0 ? { errors } : {}),
  });
}

/** A bearer credential as a header or a message quoting one would show it. */
const bearer = /\bBearer\s+[^\s"',;]+/gi;

/** `text` without any `Bearer <token>`, nor any of `secrets` (the sink's own token) wherever they occur. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(bearer, 'Bearer [redacted]');
  for (const secret of secrets) if (secret !== '') out = out.replaceAll(secret, '[redacted]');
  return out;
}

/** The failure's class and (redacted) message; its cause is replaced by the caller (slim). */
function classifyRaw(error: unknown, body: readonly Buffer[] | undefined, secrets: readonly string[]): WarehouseError {
  const status = httpStatus(error);
  // The token endpoint's refusal ({ error: 'invalid_grant', error_description }): the credentials.
  if (status !== undefined && typeof oauthError(error) === 'string') {
    return new WarehouseError(ErrorClasses.authentication, firstLine(`credentials refused (HTTP ${status}): ${oauthError(error) ?? ''}`, secrets), undefined, error);
  }
  if (status !== undefined) {
    const proto = apiErrors(error)[0] ?? { message: apiMessage(error) ?? (error instanceof Error ? error.message : String(error)) };
    const byProto = classifyErrorProto(proto, error, body, [], secrets);
    // A reason the table lists decides; else the status does (a proxy's 502 has no reason).
    if (proto.reason !== undefined && byReason.has(proto.reason)) return byProto;
    const cls = byStatus.get(status) ?? (status >= 500 ? ErrorClasses.unknownServerError : byProto.errorClass);
    if (cls === byProto.errorClass) return byProto;
    return new WarehouseError(cls, `HTTP ${status}: ${byProto.message}`, undefined, error, byProto.row);
  }
  const message = error instanceof Error ? error.message : String(error);
  const code = networkCode(error);
  if (code !== undefined || networkText.test(message)) {
    return new WarehouseError(ErrorClasses.transientNetwork, firstLine(code === undefined || message.includes(code) ? message : `${code}: ${message}`, secrets), undefined, error);
  }
  // The key file that cannot be read, or whose key cannot sign (OpenSSL's DECODER/PEM errors).
  const fileCode = (error as { code?: unknown } | null)?.code;
  if (credentialsText.test(message) || fileCode === 'ENOENT' || fileCode === 'EACCES') {
    return new WarehouseError(ErrorClasses.authentication, firstLine(message, secrets), undefined, error);
  }
  return new WarehouseError(ErrorClasses.unknown, firstLine(message, secrets), undefined, error);
}

/** Something that exists already (a job id, a table): BigQuery's 409 `duplicate`. */
export function isDuplicate(error: unknown): boolean {
  return httpStatus(error) === 409 || apiErrors(error).some((e) => e.reason === 'duplicate');
}

/** A repeated job id: real BigQuery's 409 `duplicate`; the emulator's 500 "job X is already created". */
export function isDuplicateJob(error: unknown): boolean {
  if (isDuplicate(error)) return true;
  const status = httpStatus(error);
  return status !== undefined && status >= 500 && /job \S+ is already created/.test(apiMessage(error) ?? '');
}

/** A 404 (the job, table, dataset or project is not there). */
export function isNotFound(error: unknown): boolean {
  return httpStatus(error) === 404;
}

/** The HTTP status of a failed call: GaxiosError's `status`, ApiError's numeric `code`. */
function httpStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { status, code, response } = error as { status?: unknown; code?: unknown; response?: { status?: unknown } };
  for (const value of [status, response?.status, code]) {
    if (typeof value === 'number' && value >= 100 && value < 600) return value;
  }
  return undefined;
}

/** The `errors[]` of an API error: ApiError's `errors`, or the JSON body's `error.errors`. */
function apiErrors(error: unknown): ErrorProto[] {
  const own = (error as { errors?: unknown } | null)?.errors;
  const body = (error as { response?: { data?: unknown } } | null)?.response?.data;
  const nested = (body as { error?: { errors?: unknown } } | null | undefined)?.error?.errors;
  const list = Array.isArray(own) ? own : Array.isArray(nested) ? nested : [];
  return list.filter((e): e is ErrorProto => typeof e === 'object' && e !== null);
}

function apiMessage(error: unknown): string | undefined {
  const body = (error as { response?: { data?: unknown } } | null)?.response?.data;
  const inner = (body as { error?: unknown } | null | undefined)?.error;
  if (typeof inner === 'object' && inner !== null && typeof (inner as { message?: unknown }).message === 'string') return (inner as { message: string }).message;
  return error instanceof Error ? error.message : undefined;
}

/** An OAuth endpoint's error code (`invalid_grant`…), which names no secret. */
function oauthError(error: unknown): string | undefined {
  const body = (error as { response?: { data?: unknown } } | null)?.response?.data;
  const inner = (body as { error?: unknown } | null | undefined)?.error;
  return typeof inner === 'string' ? inner.slice(0, 100) : undefined;
}

/** A network error's code on the cause chain (fetch: TypeError "fetch failed" ← the socket's error). */
function networkCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const { code, name } = current as { code?: unknown; name?: unknown };
    if (typeof code === 'string' && networkCodes.has(code)) return code;
    if (typeof name === 'string' && (name === 'TimeoutError' || name === 'AbortError')) return name;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The 1-based row of the body whose line starts at byte `position`; undefined when it is not one. */
export function rowAt(body: readonly Buffer[], position: number): number | undefined {
  if (!Number.isSafeInteger(position) || position < 0) return undefined;
  let offset = 0;
  let row = 1;
  for (const chunk of body) {
    const end = Math.min(chunk.length, position - offset);
    for (let at = chunk.indexOf(0x0a); at >= 0 && at < end; at = chunk.indexOf(0x0a, at + 1)) row++;
    if (position < offset + chunk.length) return row;
    offset += chunk.length;
  }
  return undefined;
}

/** The first line of a message, redacted before it is cut (no part of a secret stays), at most 1000 characters. */
function firstLine(message: string, secrets: readonly string[] = []): string {
  const newline = message.indexOf('\n');
  return redact(newline < 0 ? message : message.slice(0, newline), secrets).slice(0, 1000);
}
