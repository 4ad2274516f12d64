// Owns the decoder contract: a source record's bytes → the row to insert and its team id, chosen
// per route by `route.format`. A record that cannot become a row throws a DecodeError (its code
// says why); the pipeline dead-letters it. JSON is the decoder today (decode/json.ts); a Protobuf
// decoder (descriptor set, or a schema registry's wire format: magic byte, schema id, message
// indexes) plugs in here — docs/design/delivery.md §10.
import type { RouteConfig } from '../config/load.ts';
import type { SourceRecord } from '../source/types.ts';
import { decodeJsonRecord, type DecodedRecord } from './json.ts';

export interface Decoder {
  /** The route format it reads. */
  readonly format: string;
  /** The record's row (JSON object text today) and team id; throws DecodeError. */
  decode(record: SourceRecord): DecodedRecord;
}

export interface DecodeLimits {
  readonly maxMessageBytes: number;
}

/** The decoder of a route. */
export function decoderFor(route: RouteConfig, limits: DecodeLimits): Decoder {
  // A fixed destination does not need the team: a malformed one is no reason to refuse the row.
  const options = { maxMessageBytes: limits.maxMessageBytes, teamId: route.teamId, teamRequired: route.destination === 'team' };
  switch (route.format) {
    case 'json':
      return { format: 'json', decode: (record) => decodeJsonRecord(record, options) };
    case 'protobuf':
      throw new Error('the protobuf decoder is not available yet');
  }
}
