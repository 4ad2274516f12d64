// Owns turning descriptors into @bufbuild/protobuf registries: a binary FileDescriptorSet (a file
// made by `buf build -o x.binpb`, or `.proto` files compiled at start-up: proto-compiler.ts), or a
// schema registry's serialized FileDescriptorProto with the files it imports (its references;
// google/protobuf/*.proto are built in and never referenced, as Confluent's serializers do), and
// finding a message by the wire format's message indexes.
import { readFileSync } from 'node:fs';
import { createFileRegistry, fromBinary, type DescFile, type DescMessage, type FileRegistry } from '@bufbuild/protobuf';
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  file_google_protobuf_any,
  file_google_protobuf_api,
  file_google_protobuf_descriptor,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_source_context,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_type,
  file_google_protobuf_wrappers,
  type DescriptorProto,
  type FileDescriptorProto,
} from '@bufbuild/protobuf/wkt';

/** Imports every schema may use without a reference (the well-known types). */
const BUILTIN = new Map<string, DescFile>(
  [
    // In dependency order: a file comes after those it imports.
    file_google_protobuf_any,
    file_google_protobuf_descriptor,
    file_google_protobuf_duration,
    file_google_protobuf_empty,
    file_google_protobuf_field_mask,
    file_google_protobuf_source_context,
    file_google_protobuf_struct,
    file_google_protobuf_timestamp,
    file_google_protobuf_wrappers,
    file_google_protobuf_type,
    file_google_protobuf_api,
  ].map((file) => [`${file.name}.proto`, file]),
);

/** The registry of a FileDescriptorSet file; throws an Error naming what is wrong. */
export function loadDescriptorSet(path: string): FileRegistry {
  return registryOfDescriptorSet(readFileSync(path), path);
}

/**
 * The registry of a binary FileDescriptorSet (`what` names it in errors); throws an Error naming
 * what is wrong.
 */
export function registryOfDescriptorSet(bytes: Uint8Array, what: string): FileRegistry {
  let set;
  try {
    set = fromBinary(FileDescriptorSetSchema, bytes);
  } catch (cause) {
    throw new Error(`${what} is not a binary FileDescriptorSet (make one with \`buf build -o FILE.binpb\`): ${(cause as Error).message}`, { cause });
  }
  if (set.file.length === 0) throw new Error(`${what} holds no files`);
  // buf build includes imports; the well-known types are added when a set leaves them out.
  const names = new Set(set.file.map((f) => f.name));
  const missing = [...BUILTIN].filter(([name]) => !names.has(name)).map(([, file]) => file.proto);
  set.file.unshift(...missing);
  return createFileRegistry(set);
}

/** A schema from a registry: base64 FileDescriptorProto, and its references' by import name. */
export interface SerializedSchema {
  readonly schema: string;
  readonly dependencies: ReadonlyMap<string, string>;
}

/** The file of a registry schema, its imports resolved; throws an Error naming what is wrong. */
export function fileOfSerializedSchema(id: number, serialized: SerializedSchema): { file: DescFile; registry: FileRegistry } {
  const main = parseFileProto(serialized.schema, `schema ${id}`);
  if (main.name === '') main.name = `schema-${id}.proto`;
  const protos = new Map<string, FileDescriptorProto>();
  for (const [name, text] of serialized.dependencies) {
    const proto = parseFileProto(text, `reference ${name} of schema ${id}`);
    proto.name = name;
    protos.set(name, proto);
  }
  // Registries may answer with type names relative to their scope ("Inner"), which need their
  // package to resolve across files: qualify them against every type the schema can see.
  const known = new Set<string>();
  for (const file of BUILTIN.values()) for (const message of file.messages) collectDesc(message, known);
  for (const file of BUILTIN.values()) for (const e of file.enums) known.add(`.${e.typeName}`);
  for (const proto of [main, ...protos.values()]) collectFile(proto, known);
  for (const proto of [main, ...protos.values()]) qualifyFile(proto, known);
  const registry = createFileRegistry(main, (name) => BUILTIN.get(name) ?? protos.get(name));
  const file = registry.getFile(main.name);
  if (file === undefined) throw new Error(`schema ${id}: its file did not load`);
  return { file, registry };
}

function parseFileProto(base64: string, what: string): FileDescriptorProto {
  try {
    return fromBinary(FileDescriptorProtoSchema, Buffer.from(base64, 'base64'));
  } catch (cause) {
    throw new Error(`${what} is not a serialized FileDescriptorProto: ${(cause as Error).message}`, { cause });
  }
}

/** The message the indexes name (a top-level message, then nested ones); undefined when out of range. */
export function messageAt(file: DescFile, indexes: readonly number[]): DescMessage | undefined {
  let message = file.messages[indexes[0] ?? 0];
  for (let i = 1; i < indexes.length && message !== undefined; i++) message = message.nestedMessages[indexes[i] ?? 0];
  return message;
}

function collectDesc(message: DescMessage, out: Set<string>): void {
  out.add(`.${message.typeName}`);
  for (const e of message.nestedEnums) out.add(`.${e.typeName}`);
  for (const nested of message.nestedMessages) collectDesc(nested, out);
}

function collectFile(file: FileDescriptorProto, out: Set<string>): void {
  const scope = file.package === '' ? '' : `.${file.package}`;
  for (const e of file.enumType) out.add(`${scope}.${e.name}`);
  for (const message of file.messageType) collectMessage(message, scope, out);
}

function collectMessage(message: DescriptorProto, parent: string, out: Set<string>): void {
  const scope = `${parent}.${message.name}`;
  out.add(scope);
  for (const e of message.enumType) out.add(`${scope}.${e.name}`);
  for (const nested of message.nestedType) collectMessage(nested, scope, out);
}

function qualifyFile(file: FileDescriptorProto, known: ReadonlySet<string>): void {
  const scope = file.package === '' ? '' : `.${file.package}`;
  for (const message of file.messageType) qualifyMessage(message, scope, known);
  for (const extension of file.extension) extension.typeName = qualify(extension.typeName, scope, known);
}

function qualifyMessage(message: DescriptorProto, parent: string, known: ReadonlySet<string>): void {
  const scope = `${parent}.${message.name}`;
  for (const field of [...message.field, ...message.extension]) field.typeName = qualify(field.typeName, scope, known);
  for (const nested of message.nestedType) qualifyMessage(nested, scope, known);
}

/** Protobuf's scoping: the innermost enclosing scope that has the name wins. */
function qualify(typeName: string, scope: string, known: ReadonlySet<string>): string {
  if (typeName === '' || typeName.startsWith('.')) return typeName;
  for (let s = scope; ; s = s.slice(0, Math.max(0, s.lastIndexOf('.')))) {
    const candidate = `${s}.${typeName}`;
    if (known.has(candidate)) return candidate;
    if (s === '') return `.${typeName}`;
  }
}
