// Owns the configuration of typed input and output: how a route's Protobuf messages are described
// (a descriptor set, .proto files, or a schema registry in the Confluent wire format) and how its
// rows are encoded for the warehouse (`encoding`). Part of the one config schema (config/schema.ts).
import { z } from 'zod';

/**
 * `passthrough`: the producer's JSON goes to the warehouse as JSONEachRow, which parses it.
 * `typed`: rows are encoded as RowBinaryWithDefaults from the table's live schema; a table with a
 * column type the encoder does not cover is sent pass-through (with a warning naming the column).
 * `auto`: typed where the live schema is covered, pass-through elsewhere, silently.
 */
export const encodingSchema = z.enum(['passthrough', 'typed', 'auto']);

/** A route's Protobuf message: the type, and where its descriptor comes from. */
export const protobufRouteSchema = z
  .object({
    /** Fully qualified message type, e.g. `posthog.v1.Event`. With a registry: the schema's type (default: its first message). */
    messageType: z.string().min(1).optional(),
  })
  .strict();

/** A schema registry (Confluent REST API) serving the Protobuf schemas the wire format names by id. */
export const schemaRegistrySchema = z.object({ url: z.string().min(1) }).strict();
