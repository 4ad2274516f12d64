// Test fixtures of the Protobuf decoder: kinds.proto compiled by the real buf CLI into a binary
// FileDescriptorSet (as users make theirs), its registry, and messages built from it.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, fromBinary, toBinary, type DescMessage, type FileRegistry } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { loadDescriptorSet } from '../../../../src/decode/protobuf/descriptors.ts';
import { readFileSync } from 'node:fs';
import { tempDirSync } from '../../../helpers/temp-dir.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..', '..', '..');

export interface KindsFixture {
  readonly dir: string;
  /** The descriptor set file (buf build output, imports included). */
  readonly descriptorSet: string;
  readonly registry: FileRegistry;
  message(typeName: string): DescMessage;
  /** Base64 FileDescriptorProto of a file of the set, as a registry serves it. */
  serializedFile(name: string): string;
  cleanup(): void;
}

export function buildKinds(): KindsFixture {
  const dir = tempDirSync('inserter-protobuf-');
  const descriptorSet = join(dir, 'kinds.binpb');
  execFileSync(join(repo, 'node_modules', '.bin', 'buf'), ['build', here, '-o', descriptorSet], { cwd: repo, stdio: ['ignore', 'ignore', 'inherit'] });
  const registry = loadDescriptorSet(descriptorSet);
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSet));
  return {
    dir,
    descriptorSet,
    registry,
    message(typeName) {
      const desc = registry.getMessage(typeName);
      if (desc === undefined) throw new Error(`no ${typeName}`);
      return desc;
    },
    serializedFile(name) {
      const file = set.file.find((f) => f.name === name);
      if (file === undefined) throw new Error(`no file ${name}`);
      return Buffer.from(toBinary(FileDescriptorProtoSchema, file)).toString('base64');
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The binary of a message of `desc` built from init values (protobuf-es local names). */
export function encode(desc: DescMessage, init: Record<string, unknown>): Buffer {
  return Buffer.from(toBinary(desc, create(desc, init as never)));
}
