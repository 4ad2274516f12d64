// Owns the decoder contract: a source record's bytes → the row to insert and its team id, chosen
// per route by `route.format`. A record that cannot become a row throws a DecodeError (its code
// says why); the pipeline dead-letters it. `json` passes the producer's JSON object through
// (decode/json.ts); `protobuf` decodes with a descriptor set, or a schema registry's wire format
// (magic byte, schema id, message indexes) into object rows (decode/protobuf/) —
// docs/design/delivery.md §10.
import type { RouteConfig } from '../config/load.ts';
import type { RegistrySettings } from '../config/typed-schema.ts';
import type { SourceRecord } from '../source/types.ts';
import { decodeJsonRecord, type DecodedRecord } from './json.ts';
import { ProtobufDecoder } from './protobuf/decoder.ts';
import type { SchemaRegistryUnavailableError } from './protobuf/registry-client.ts';

export interface Decoder {
  /** The route format it reads. */
  readonly format: string;
  /** The record's row and team id; throws DecodeError (dead-letter it) or, for a schema the registry could not serve, a retryable InserterError (never dead-letter it: prepare, then decode again). */
  decode(record: SourceRecord): DecodedRecord;
  /**
   * Undefined when `decode(record)` can run now; otherwise a promise to wait for first (a schema
   * registry lookup; it retries while the registry is down and rejects only when `signal` fires).
   */
  prepare?(record: SourceRecord, signal: AbortSignal): Promise<void> | undefined;
}

export interface DecodeLimits {
  readonly maxMessageBytes: number;
  /** The config file's folder: a route's descriptor set resolves from it. */
  readonly baseDir?: string;
  /** Where `format: protobuf` routes without a descriptor set fetch their schemas. */
  readonly schemaRegistry?: RegistrySettings | undefined;
}

export interface DecoderHooks {
  /** A schema registry lookup in `prepare` failed; it is retried after a backoff. */
  readonly onRegistryUnavailable?: (error: SchemaRegistryUnavailableError, attempt: number) => void;
}

/** How the pipeline builds decoders (decoderFor, or a wrapper of it in the simulation). */
export type DecoderFactory = (route: RouteConfig, limits: DecodeLimits, hooks?: DecoderHooks) => Decoder;

/** The decoder of a route; a protobuf route whose descriptors cannot load throws ConfigError. */
export function decoderFor(route: RouteConfig, limits: DecodeLimits, hooks: DecoderHooks = {}): Decoder {
  // A fixed destination does not need the team: a malformed one is no reason to refuse the row.
  const options = { maxMessageBytes: limits.maxMessageBytes, teamId: route.teamId, teamRequired: route.destination === 'team' };
  switch (route.format) {
    case 'json':
      return { format: 'json', decode: (record) => decodeJsonRecord(record, options) };
    case 'protobuf':
      return new ProtobufDecoder(route, {
        maxMessageBytes: limits.maxMessageBytes,
        baseDir: limits.baseDir ?? process.cwd(),
        schemaRegistry: limits.schemaRegistry,
        onRegistryUnavailable: hooks.onRegistryUnavailable,
      });
  }
}
