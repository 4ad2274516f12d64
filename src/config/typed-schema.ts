// Owns the configuration of typed input and output: how a route's Protobuf messages are described
// (a descriptor set, `.proto` files compiled at start-up, or a schema registry in the Confluent wire
// format) and how its rows are encoded for the warehouse (`encoding`). Part of the one config schema
// (config/schema.ts).
import { z } from 'zod';
import type { Secret } from './secret.ts';

/**
 * `passthrough`: the producer's JSON goes to the warehouse as JSONEachRow, which parses it.
 * `typed`: rows are encoded as RowBinaryWithDefaults from the table's live schema; a table with a
 * column type the encoder does not cover is sent pass-through (with a warning naming the column).
 * `auto`: typed where the live schema is covered, pass-through elsewhere, silently.
 */
export const encodingSchema = z.enum(['passthrough', 'typed', 'auto']);

/**
 * A route's Protobuf messages. With `descriptorSet`, the types come from that file; with `proto`,
 * from `.proto` files compiled at start-up; otherwise from the top-level `schemaRegistry`, by the
 * schema id each record carries.
 */
export const protobufRouteSchema = z
  .object({
    /**
     * Fully qualified message type, e.g. `posthog.v1.Event`. Required with a descriptor set. With a
     * registry the record's message indexes choose the type; when set, a record of another type is
     * dead-lettered (INSERTER_DECODE_WRONG_TYPE).
     */
    messageType: z.string().min(1).optional(),
    /** A binary FileDescriptorSet (`buf build -o x.binpb`), relative to the config file. */
    descriptorSet: z.string().min(1).optional(),
    /**
     * `.proto` files compiled by buf when the service starts (no build step): `root` is the import
     * root (a directory, relative to the config file); `files`, relative to it, are compiled with
     * what they import — every `.proto` file under `root` when left out.
     */
    proto: z
      .object({
        root: z.string().min(1),
        files: z
          .array(
            z
              .string()
              .min(1)
              .refine((f) => f.endsWith('.proto'), 'must name a .proto file'),
          )
          .optional(),
      })
      .strict()
      .optional(),
    /**
     * `confluent`: magic byte, schema id, message indexes, then the message (what Confluent's
     * serializers write); `raw`: the message alone. Default: `confluent` with a registry, `raw` with
     * a descriptor set or `.proto` files (which then ignore the schema id and read `messageType`).
     */
    wireFormat: z.enum(['confluent', 'raw']).optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.descriptorSet !== undefined && p.proto !== undefined) ctx.addIssue({ code: 'custom', path: ['proto'], message: 'give either descriptorSet or proto, not both' });
    if ((p.descriptorSet !== undefined || p.proto !== undefined) && p.messageType === undefined)
      ctx.addIssue({ code: 'custom', path: ['messageType'], message: `${p.proto !== undefined ? '.proto files need' : 'a descriptor set needs'} the message type to read (e.g. posthog.v1.Event)` });
    if (p.descriptorSet === undefined && p.proto === undefined && p.wireFormat === 'raw')
      ctx.addIssue({ code: 'custom', path: ['wireFormat'], message: 'raw messages carry no schema id: give a descriptorSet or proto files' });
  });

/** Mirrors config/schema.ts secretSchema (which imports this file): inline, `{env}` or `{file}`. */
const registrySecretSchema = z.union([z.string(), z.object({ env: z.string().min(1) }).strict(), z.object({ file: z.string().min(1) }).strict()]);

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** A schema registry (Confluent REST API) serving the Protobuf schemas the wire format names by id. */
export const schemaRegistrySchema = z
  .object({
    /** Base URL, e.g. `https://psrc-xxxx.confluent.cloud` or `http://localhost:8081`; no user:password in it. */
    url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
    /** Basic auth (Confluent Cloud: the API key and secret). */
    username: z.string().min(1).optional(),
    password: registrySecretSchema.optional(),
    /** Plain HTTP to a registry that is not loopback; default: HTTPS only. */
    allowHttp: z.boolean().default(false),
    /** Per request. */
    timeoutMs: z.number().int().positive().default(5_000),
    /** How long an unknown (or unusable) schema id is remembered before the registry is asked again. */
    negativeCacheTtlMs: z.number().int().positive().default(60_000),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (!URL.canParse(r.url)) return;
    const url = new URL(r.url);
    if (url.username !== '' || url.password !== '') ctx.addIssue({ code: 'custom', path: ['url'], message: 'must not carry credentials (user:password@): give them as username and password' });
    if (url.protocol === 'http:' && !r.allowHttp && !LOOPBACK.has(url.hostname))
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'must be https:// (plain http only to loopback, or with allowHttp: true)' });
    if (r.password !== undefined && r.username === undefined) ctx.addIssue({ code: 'custom', path: ['username'], message: 'a password needs its username' });
  });

export type SchemaRegistryConfig = z.output<typeof schemaRegistrySchema>;
/** As the loaded config holds it (config/load.ts resolves the password), or as parsed (tests). */
export type RegistrySettings = Readonly<Omit<SchemaRegistryConfig, 'password'> & { password?: SchemaRegistryConfig['password'] | Secret | undefined }>;
export type ProtobufRouteConfig = z.output<typeof protobufRouteSchema>;

/** Whether a route's Protobuf types are fixed in the config (a descriptor set or `.proto` files) rather than read by schema id. */
export function hasFixedSchema(p: ProtobufRouteConfig | undefined): boolean {
  return p !== undefined && (p.descriptorSet !== undefined || p.proto !== undefined);
}
