// Owns turning a record whose value is a Protobuf message into an object row and its team id. The
// message type comes from a descriptor set file named by the route, or from a schema registry by
// the schema id of the Confluent wire format (decode/protobuf/wire-format.ts), the record's message
// indexes choosing the message of the schema's file. ClickHouse never sees a schema: the row's type
// renders it as JSON for pass-through, and its readers feed typed encoders. A row is the message's
// wire bytes, checked whole here and indexed (wire-row-type.ts: its readers decode the field asked
// for); a type the wire walk cannot read (proto2, editions, groups) is decoded by `fromBinary` into
// a message object (row-type.ts).
//
// What cannot become a row is a DecodeError with its own code (dead-lettered with the reason):
// empty, oversized, bad magic byte, bad message indexes, unknown schema id, a schema that is not
// Protobuf or does not load, a record of another type than the route's, an undecodable payload, a
// team id that is not an integer. A registry that cannot answer is not: `prepare` waits for it
// (retrying with backoff) before `decode` is called; `decode` of an id not loaded (not prepared)
// throws a SchemaRegistryUnavailableError (retryable, never a DecodeError) — the record must wait,
// not be dead-lettered. Nothing here blocks the event loop.
//
// The team id of a `field` source is read from the message's top-level field of that name (any
// integer type, or a string of digits). proto3 cannot tell an unset field without presence from 0:
// a team id 0 of such a field reads as no team (as a missing field does in JSON).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromBinary, type DescFile, type DescMessage, type FileRegistry } from '@bufbuild/protobuf';
import { FeatureSet_FieldPresence } from '@bufbuild/protobuf/wkt';
import { Secret } from '../../config/secret.ts';
import type { ProtobufRouteConfig, RegistrySettings } from '../../config/typed-schema.ts';
import { ConfigError, DecodeError } from '../../errors/inserter-error.ts';
import type { SourceRecord } from '../../source/types.ts';
import type { DecodedRecord, TeamIdSource } from '../json.ts';
import { integerTeamId, teamIdOutsideValue } from '../team-id.ts';
import type { FieldReader, FieldValue, ObjectRow } from '../row.ts';
import { loadDescriptorSet, messageAt, registryOfDescriptorSet } from './descriptors.ts';
import { compileProtoFiles } from './proto-compiler.ts';
import { RegistryClient, SchemaRegistryUnavailableError } from './registry-client.ts';
import { RowTypes, type ProtobufRowType } from './row-type.ts';
import { WireRowType, WireRowTypes } from './wire-row-type.ts';
import { readWireHeader } from './wire-format.ts';

export interface ProtobufRoute {
  readonly name: string;
  readonly teamId: TeamIdSource;
  /** `team`: rows need their team; otherwise a fixed destination. */
  readonly destination: string;
  readonly protobuf?: ProtobufRouteConfig | undefined;
}

export interface ProtobufDecoderOptions {
  readonly maxMessageBytes: number;
  /** Where the config file is: the descriptor set and a registry password file resolve from here. */
  readonly baseDir: string;
  readonly schemaRegistry?: RegistrySettings | undefined;
  /** Called each time prepare finds the registry unable to answer (then it waits and asks again). */
  readonly onRegistryUnavailable?: ((error: SchemaRegistryUnavailableError, attempt: number) => void) | undefined;
  /** Backoff of prepare's retries; default 500 ms doubling to 30 s. */
  readonly retry?: { readonly baseMs: number; readonly capMs: number } | undefined;
  readonly env?: NodeJS.ProcessEnv | undefined;
}

/** A message type ready to read: its row type and how its team is read. */
interface Compiled {
  readonly type: WireRowType | ProtobufRowType;
  /** Reads the team from the values; undefined when the team does not come from a field or the type lacks it. */
  readonly team: FieldReader | undefined;
  /** The team field has no presence: 0 means unset. */
  readonly teamZeroIsUnset: boolean;
}

/** A registry schema ready to read. */
interface SchemaEntry {
  readonly types: WireRowTypes;
  readonly file: DescFile;
  first: Compiled | undefined;
  readonly byIndexes: Map<string, Compiled>;
}

export class ProtobufDecoder {
  readonly format = 'protobuf';
  readonly #route: ProtobufRoute;
  readonly #o: ProtobufDecoderOptions;
  readonly #teamRequired: boolean;
  readonly #confluent: boolean;
  readonly #fixed: Compiled | undefined;
  readonly #registry: RegistryClient | undefined;
  readonly #schemas = new Map<number, SchemaEntry>();

  constructor(route: ProtobufRoute, options: ProtobufDecoderOptions) {
    this.#route = route;
    this.#o = options;
    this.#teamRequired = route.destination === 'team';
    const p = route.protobuf ?? {};
    const where = `route ${route.name}`;
    if (p.descriptorSet !== undefined || p.proto !== undefined) {
      const { registry, source } = fixedRegistry(p, options.baseDir, where);
      const desc = registry.getMessage(p.messageType ?? '');
      if (desc === undefined) {
        const known = [...registry].filter((t) => t.kind === 'message' && !t.typeName.startsWith('google.protobuf.')).map((t) => t.typeName);
        throw new ConfigError([`${where}: protobuf.messageType: ${p.messageType ?? '(none)'} is not in ${source} (it has ${known.slice(0, 20).join(', ') || 'no messages'})`]);
      }
      this.#fixed = this.#compile(new WireRowTypes(new RowTypes(registry)), desc);
      if (this.#fixed.team === undefined && this.#teamRequired && route.teamId.from === 'field') {
        throw new ConfigError([`${where}: teamId.field: ${desc.typeName} has no field ${route.teamId.field}`]);
      }
      this.#confluent = p.wireFormat === 'confluent';
    } else {
      if (options.schemaRegistry === undefined) throw new ConfigError([`${where}: format protobuf without protobuf.descriptorSet or protobuf.proto needs the top-level schemaRegistry`]);
      this.#registry = registryClientFor(options.schemaRegistry, options.baseDir, options.env ?? process.env);
      this.#confluent = true;
    }
  }

  /**
   * Undefined when `decode(record)` needs nothing from the network; otherwise a promise that
   * resolves once it does not (the schema is loaded, or known to be unusable). While the registry
   * cannot answer it waits and asks again; it rejects only when `signal` fires.
   */
  prepare(record: SourceRecord, signal: AbortSignal): Promise<void> | undefined {
    const registry = this.#registry;
    const value = record.value;
    if (registry === undefined || value === undefined || value.length < 5 || value[0] !== 0 || value.length > this.#o.maxMessageBytes) return undefined;
    const id = value.readUInt32BE(1);
    if (this.#schemas.has(id) || registry.cached(id) !== undefined) return undefined;
    return this.#waitFor(registry, id, signal);
  }

  async #waitFor(registry: RegistryClient, id: number, signal: AbortSignal): Promise<void> {
    const baseMs = this.#o.retry?.baseMs ?? 500;
    const capMs = this.#o.retry?.capMs ?? 30_000;
    for (let attempt = 1; ; attempt++) {
      try {
        await registry.load(id, signal);
        return;
      } catch (error) {
        if (!(error instanceof SchemaRegistryUnavailableError)) throw error;
        this.#o.onRegistryUnavailable?.(error, attempt);
        await sleep(Math.min(capMs, baseMs * 2 ** Math.min(attempt - 1, 20)), undefined, { signal });
      }
    }
  }

  decode(record: SourceRecord): DecodedRecord {
    const value = record.value;
    // A raw message may be empty (every field at its default); a framed one never is.
    if (value === undefined || (value.length === 0 && this.#confluent)) throw new DecodeError('INSERTER_DECODE_EMPTY', 'message has no value (tombstone or empty)');
    if (value.length > this.#o.maxMessageBytes) throw new DecodeError('INSERTER_DECODE_OVERSIZED', `message of ${value.length} bytes exceeds maxMessageBytes ${this.#o.maxMessageBytes}`);
    let compiled = this.#fixed;
    let start = 0;
    if (this.#confluent) {
      const header = readWireHeader(value);
      start = header.payloadStart;
      if (compiled === undefined) compiled = this.#typeOf(header.schemaId, header.indexes);
    }
    if (compiled === undefined) throw new DecodeError('INSERTER_DECODE_SCHEMA_INVALID', 'no message type');
    const type = compiled.type;
    let values: object;
    let size: number;
    try {
      if (type instanceof WireRowType) {
        values = type.read(value, start, value.length);
        // What the row holds in memory, for the memory budget: the record's bytes (kept with the
        // batch), its values object and its slots in the type's index slab (measured: ~1.22× the
        // wire size for a posthog.v1.Event; wire-row-type.ts WIRE_ROW_BYTES).
        size = value.length + type.rowOverhead;
      } else {
        values = fromBinary(type.desc, start === 0 ? value : value.subarray(start), { readUnknownFields: false });
        // The record's bytes and the decoded message, whose heap is about 2.2× its wire size (a
        // posthog.v1.Event: 2,239 B of heap for 1,013 B on the wire, measured with --expose-gc over
        // 20,000 events).
        size = value.length * DECODED_SIZE_FACTOR;
      }
    } catch (cause) {
      throw new DecodeError('INSERTER_DECODE_BAD_PROTOBUF', `message is not a valid ${type.name}: ${(cause as Error).message}`, { cause });
    }
    const row: ObjectRow = { type, values, size };
    return { row, teamId: this.#teamOf(record, compiled, values) };
  }

  /** The compiled type a registry record names; throws DecodeError (or SchemaRegistryUnavailableError). */
  #typeOf(schemaId: number, indexes: readonly number[]): Compiled {
    let entry = this.#schemas.get(schemaId);
    if (entry === undefined) {
      const registry = this.#registry as RegistryClient;
      const outcome = registry.cached(schemaId);
      if (outcome === undefined) throw new SchemaRegistryUnavailableError(`schema ${schemaId} is not loaded yet (the record must wait for Decoder.prepare)`);
      if (outcome.kind === 'failed') throw new DecodeError(outcome.code, outcome.message);
      entry = { types: new WireRowTypes(new RowTypes(outcome.registry)), file: outcome.file, first: undefined, byIndexes: new Map() };
      this.#schemas.set(schemaId, entry);
    }
    const isFirst = indexes.length === 1 && indexes[0] === 0;
    let compiled = isFirst ? entry.first : entry.byIndexes.get(indexes.join('.'));
    if (compiled === undefined) {
      const desc = messageAt(entry.file, indexes);
      if (desc === undefined) throw new DecodeError('INSERTER_DECODE_BAD_MESSAGE_INDEX', `schema ${schemaId} has no message at index [${indexes.join(', ')}]`);
      const wanted = this.#route.protobuf?.messageType;
      if (wanted !== undefined && desc.typeName !== wanted)
        throw new DecodeError('INSERTER_DECODE_WRONG_TYPE', `schema ${schemaId} message [${indexes.join(', ')}] is ${desc.typeName}, the route reads ${wanted}`);
      compiled = this.#compile(entry.types, desc);
      if (isFirst) entry.first = compiled;
      else entry.byIndexes.set(indexes.join('.'), compiled);
    }
    return compiled;
  }

  #compile(types: WireRowTypes, desc: DescMessage): Compiled {
    const type = types.typeOf(desc);
    const source = this.#route.teamId;
    if (source.from !== 'field') return { type, team: undefined, teamZeroIsUnset: false };
    const field = desc.fields.find((f) => f.name === source.field);
    const implicit = field !== undefined && field.fieldKind === 'scalar' && field.oneof === undefined && field.presence === FeatureSet_FieldPresence.IMPLICIT;
    return { type, team: type.reader(source.field), teamZeroIsUnset: implicit };
  }

  #teamOf(record: SourceRecord, compiled: Compiled, values: object): number | undefined {
    const source = this.#route.teamId;
    let raw: FieldValue;
    if (source.from === 'field') {
      raw = compiled.team?.(values);
      if (compiled.teamZeroIsUnset && (raw === 0 || raw === 0n || raw === '')) return undefined;
    } else raw = teamIdOutsideValue(record, source);
    return integerTeamId(raw, this.#teamRequired);
  }
}

/** Budget bytes per wire byte of a decoded message (the bytes themselves plus ~2.2× for the objects). */
const DECODED_SIZE_FACTOR = 3;

/** One client (one cache) per registry config, shared by every route that reads from it. */
const clients = new WeakMap<RegistrySettings, RegistryClient>();

function registryClientFor(config: RegistrySettings, baseDir: string, env: NodeJS.ProcessEnv): RegistryClient {
  let client = clients.get(config);
  if (client === undefined) {
    client = new RegistryClient({
      url: config.url,
      username: config.username,
      password: config.password === undefined ? undefined : revealSecret(config.password, baseDir, env),
      timeoutMs: config.timeoutMs,
      negativeCacheTtlMs: config.negativeCacheTtlMs,
    });
    clients.set(config, client);
  }
  return client;
}

/** The registry password: a Secret (when config/load.ts resolves it) or the reference as written. */
function revealSecret(ref: RegistrySettings['password'], baseDir: string, env: NodeJS.ProcessEnv): string {
  if (ref instanceof Secret) return ref.reveal();
  if (typeof ref === 'string' || ref === undefined) return ref ?? '';
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined) throw new ConfigError([`schemaRegistry.password: environment variable ${ref.env} is not set`]);
    return value;
  }
  try {
    return readFileSync(resolve(baseDir, ref.file), 'utf8').replace(/\r?\n$/, '');
  } catch (cause) {
    throw new ConfigError([`schemaRegistry.password: cannot read secret file ${ref.file}: ${(cause as Error).message}`], { cause });
  }
}

/** The types of a route that names them in its config: its descriptor set, or its `.proto` files compiled now. */
function fixedRegistry(p: NonNullable<ProtobufRoute['protobuf']>, baseDir: string, where: string): { registry: FileRegistry; source: string } {
  if (p.proto !== undefined) {
    const root = resolve(baseDir, p.proto.root);
    const source = `the .proto files under ${p.proto.root}`;
    try {
      return { registry: registryOfDescriptorSet(compileProtoFiles(root, p.proto.files ?? []), source), source };
    } catch (cause) {
      throw new ConfigError([`${where}: protobuf.proto: ${(cause as Error).message}`], { cause });
    }
  }
  const file = p.descriptorSet ?? '';
  try {
    return { registry: loadDescriptorSet(resolve(baseDir, file)), source: file };
  } catch (cause) {
    throw new ConfigError([`${where}: protobuf.descriptorSet: ${(cause as Error).message}`], { cause });
  }
}
