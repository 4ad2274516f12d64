// Owns fetching Protobuf schemas by id from a schema registry that speaks Confluent's REST API
// (Confluent, Redpanda ≥ 25.2, Karapace, Apicurio's ccompat API): `GET /schemas/ids/{id}?format=serialized`
// gives the base64 FileDescriptorProto, `schemaType` (absent means AVRO) and `references` (each
// imported file as subject + version, fetched the same way, recursively — a registry that answers a
// subject's version with the .proto text instead (Karapace ignores `format` there) is asked for that
// version's schema id, serialized). Apicurio's ccompat API is not supported: its `format=serialized`
// puts the descriptor's raw bytes in a JSON string (not base64), which cannot carry them; such an
// answer is INSERTER_DECODE_SCHEMA_INVALID naming why. Schemas are cached by id
// for the life of the process (an id never changes meaning); an unknown id, a schema that is not
// Protobuf or does not load is remembered for negativeCacheTtlMs and reported as a DecodeError. A
// registry that cannot answer (network, timeout, 5xx, 401/403, an answer that is not the API's) is
// a SchemaRegistryUnavailableError: transient, never a reason to dead-letter a record.
//
// One resolution (a generator yielding the paths it needs) runs over two transports: fetch with an
// AbortSignal (load).
import type { DescFile, FileRegistry } from '@bufbuild/protobuf';

import type { ErrorCode } from '../../errors/codes.ts';
import { AbortedError, InserterError } from '../../errors/inserter-error.ts';
import { fileOfSerializedSchema } from './descriptors.ts';

/** One registry answer. */
export interface HttpReply {
  readonly status: number;
  readonly body: string;
}

/** The registry could not tell what a schema id is: retry later (the record waits in Kafka). */
export class SchemaRegistryUnavailableError extends InserterError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('INSERTER_SCHEMA_REGISTRY_UNAVAILABLE', message, { ...options, retryable: true });
    this.name = 'SchemaRegistryUnavailableError';
  }
}

export interface RegistryClientOptions {
  /** Base URL; API paths are resolved below it (a path prefix such as `/apis/ccompat/v7` is kept). */
  readonly url: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly timeoutMs: number;
  readonly negativeCacheTtlMs: number;
  readonly maxBodyBytes?: number;
  readonly now?: () => number;
}

export type SchemaOutcome =
  { readonly kind: 'ok'; readonly file: DescFile; readonly registry: FileRegistry } | { readonly kind: 'failed'; readonly code: ErrorCode; readonly message: string; readonly until: number };

/** Schemas referenced deeper than this are a loop or not a schema anyone writes. */
const MAX_REFERENCE_DEPTH = 32;

export class RegistryClient {
  readonly #o: RegistryClientOptions;
  readonly #base: URL;
  readonly #headers: Record<string, string>;
  readonly #now: () => number;
  readonly #schemas = new Map<number, SchemaOutcome>();
  readonly #loading = new Map<number, Promise<SchemaOutcome>>();

  constructor(options: RegistryClientOptions) {
    this.#o = options;
    this.#base = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);
    this.#headers = { accept: 'application/vnd.schemaregistry.v1+json, application/json' };
    if (options.username !== undefined) this.#headers.authorization = `Basic ${Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64')}`;
    this.#now = options.now ?? Date.now;
  }

  /** What is known of the id now: its schema, a failure still remembered, or undefined (ask). */
  cached(id: number): SchemaOutcome | undefined {
    const known = this.#schemas.get(id);
    if (known?.kind === 'failed' && known.until <= this.#now()) {
      this.#schemas.delete(id);
      return undefined;
    }
    return known;
  }

  /** Fetches the schema (once at a time per id); rejects with SchemaRegistryUnavailableError or AbortedError. */
  load(id: number, signal: AbortSignal): Promise<SchemaOutcome> {
    const known = this.cached(id);
    if (known !== undefined) return Promise.resolve(known);
    let loading = this.#loading.get(id);
    if (loading === undefined) {
      loading = this.#run(id, resolveSchema(id, this.#o.negativeCacheTtlMs, this.#now), (path) => this.#get(path, signal)).finally(() => this.#loading.delete(id));
      this.#loading.set(id, loading);
    }
    return loading;
  }

  async #run(id: number, steps: Generator<string, SchemaOutcome, HttpReply>, get: (path: string) => Promise<HttpReply>): Promise<SchemaOutcome> {
    let step = steps.next();
    while (step.done !== true) step = steps.next(await get(step.value));
    this.#schemas.set(id, step.value);
    return step.value;
  }

  async #get(path: string, signal: AbortSignal): Promise<HttpReply> {
    const timeout = AbortSignal.timeout(this.#o.timeoutMs);
    try {
      const response = await fetch(new URL(path, this.#base), { headers: this.#headers, redirect: 'error', signal: AbortSignal.any([signal, timeout]) });
      const declared = Number(response.headers.get('content-length') ?? 0);
      if (declared > this.#maxBody()) {
        await response.body?.cancel().catch(() => undefined);
        throw new SchemaRegistryUnavailableError(`schema registry: GET /${path}: answer larger than ${this.#maxBody()} bytes`);
      }
      const body = await response.text();
      return { status: response.status, body };
    } catch (error) {
      if (signal.aborted) throw new AbortedError(`schema registry: GET /${path} aborted`, { cause: signal.reason });
      if (error instanceof SchemaRegistryUnavailableError) throw error;
      const what = timeout.aborted ? `no answer within ${this.#o.timeoutMs} ms` : networkMessage(error);
      throw new SchemaRegistryUnavailableError(`schema registry: GET /${path}: ${what}`, { cause: error });
    }
  }

  #maxBody(): number {
    return this.#o.maxBodyBytes ?? 16 * 1024 * 1024;
  }
}

function networkMessage(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  return error instanceof Error ? error.message : String(error);
}

interface SchemaAnswer {
  schema: string;
  schemaType: string;
  references: { name: string; subject: string; version: number }[];
  /** The schema's id, where the answer gives it (a subject's version does). */
  id: number | undefined;
}

const NOT_SERIALIZED =
  "the registry did not serve it serialized: format=serialized must give a base64 FileDescriptorProto (Confluent, Redpanda, Karapace do; Apicurio's ccompat API returns raw bytes, which JSON cannot carry)";

/** The resolution of one id: yields the API paths it needs, receives their replies. */
function* resolveSchema(id: number, ttlMs: number, now: () => number): Generator<string, SchemaOutcome, HttpReply> {
  const failed = (code: ErrorCode, message: string): SchemaOutcome => ({ kind: 'failed', code, message, until: now() + ttlMs });
  const path = `schemas/ids/${id}?format=serialized`;
  const reply = yield path;
  // 40403 is "schema not found" in every implementation of the API; a bare 404 is a wrong URL.
  if (reply.status === 404 && apiErrorCode(reply.body) === 40403) return failed('INSERTER_DECODE_UNKNOWN_SCHEMA', `schema id ${id} is not in the schema registry`);
  if (reply.status === 501) return failed('INSERTER_DECODE_SCHEMA_INVALID', `schema ${id}: the registry cannot serve it serialized (format=serialized); a registry that can is needed`);
  const answer = schemaAnswer(reply, path);
  if (answer.schemaType !== 'PROTOBUF') return failed('INSERTER_DECODE_NOT_PROTOBUF', `schema ${id} is ${answer.schemaType}, not PROTOBUF`);
  if (!isBase64(answer.schema)) return failed('INSERTER_DECODE_SCHEMA_INVALID', `schema ${id}: ${NOT_SERIALIZED}`);
  const dependencies = new Map<string, string>();
  const missing = yield* resolveReferences(answer.references, dependencies, 0);
  if (missing !== undefined) return failed('INSERTER_DECODE_SCHEMA_INVALID', `schema ${id}: ${missing}`);
  try {
    return { kind: 'ok', ...fileOfSerializedSchema(id, { schema: answer.schema, dependencies }) };
  } catch (error) {
    return failed('INSERTER_DECODE_SCHEMA_INVALID', (error as Error).message);
  }
}

/** Fills `out` (import name → base64 file); returns what is missing, if something is. */
function* resolveReferences(references: SchemaAnswer['references'], out: Map<string, string>, depth: number): Generator<string, string | undefined, HttpReply> {
  if (depth > MAX_REFERENCE_DEPTH) return `references nest deeper than ${MAX_REFERENCE_DEPTH}`;
  for (const ref of references) {
    if (out.has(ref.name)) continue;
    const path = `subjects/${encodeURIComponent(ref.subject)}/versions/${ref.version}?format=serialized`;
    const reply = yield path;
    if (reply.status === 404 && [40401, 40402, 40403].includes(apiErrorCode(reply.body) ?? 0)) return `reference ${ref.name} (subject ${ref.subject} version ${ref.version}) is not in the registry`;
    let answer = schemaAnswer(reply, path);
    // Karapace answers a subject's version with the .proto text whatever `format` says; its schemas
    // by id honour it. Ask for that version's id.
    if (!isBase64(answer.schema) && answer.id !== undefined) {
      const byId = `schemas/ids/${answer.id}?format=serialized`;
      answer = { ...schemaAnswer(yield byId, byId), references: answer.references };
    }
    if (!isBase64(answer.schema)) return `reference ${ref.name} (subject ${ref.subject} version ${ref.version}): ${NOT_SERIALIZED}`;
    out.set(ref.name, answer.schema);
    const missing = yield* resolveReferences(answer.references, out, depth + 1);
    if (missing !== undefined) return missing;
  }
  return undefined;
}

/** A 200 answer carrying a schema; anything else means the registry is not answering as the API does. */
function schemaAnswer(reply: HttpReply, path: string): SchemaAnswer {
  const fail = (what: string): never => {
    throw new SchemaRegistryUnavailableError(`schema registry: GET /${path}: ${what}`);
  };
  if (reply.status !== 200) fail(`HTTP ${reply.status}${reply.status === 401 || reply.status === 403 ? ', check schemaRegistry.username and password' : ''}`);
  let body: unknown;
  try {
    body = JSON.parse(reply.body);
  } catch {
    fail('the answer is not JSON');
  }
  const o = body as { schema?: unknown; schemaType?: unknown; references?: unknown; id?: unknown };
  if (typeof o !== 'object' || o === null || typeof o.schema !== 'string') return fail('the answer has no schema');
  const references: SchemaAnswer['references'] = [];
  if (Array.isArray(o.references)) {
    for (const r of o.references as { name?: unknown; subject?: unknown; version?: unknown }[]) {
      if (typeof r.name !== 'string' || typeof r.subject !== 'string' || typeof r.version !== 'number') fail('a reference lacks its name, subject or version');
      references.push({ name: r.name as string, subject: r.subject as string, version: r.version as number });
    }
  }
  return { schema: o.schema, schemaType: typeof o.schemaType === 'string' ? o.schemaType : 'AVRO', references, id: typeof o.id === 'number' ? o.id : undefined };
}

/** A base64 text (what `format=serialized` gives), not .proto source or raw bytes in a string. */
function isBase64(text: string): boolean {
  return text.length > 0 && text.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(text);
}

function apiErrorCode(body: string): number | undefined {
  try {
    const code = (JSON.parse(body) as { error_code?: unknown }).error_code;
    return typeof code === 'number' ? code : undefined;
  } catch {
    return undefined;
  }
}
