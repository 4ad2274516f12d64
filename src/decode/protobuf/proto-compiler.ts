// Owns compiling a route's `.proto` files at start-up with the buf CLI (@bufbuild/buf, the
// conformance-tested compiler the repository already builds its own schemas with) into the binary
// FileDescriptorSet a descriptor-set route reads. Nothing here parses Protobuf source: buf does, and
// its diagnostics (file:line:column: message) are what a bad file is reported with.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** Start-up compile limit: a schema tree of thousands of files builds in about a second. */
const COMPILE_TIMEOUT_MS = 60_000;
const MAX_OUTPUT_BYTES = 256 * 1024 * 1024;
const MAX_DIAGNOSTIC_CHARS = 2_000;

/** The buf launcher of the installed @bufbuild/buf (a node script that runs the platform binary). */
function bufLauncher(): string {
  try {
    return createRequire(import.meta.url).resolve('@bufbuild/buf/bin/buf');
  } catch (cause) {
    throw new Error('the buf compiler (@bufbuild/buf) is not installed', { cause });
  }
}

/**
 * The binary FileDescriptorSet of `files` (paths relative to `root`; all `.proto` files under `root`
 * when empty) and everything they import, `root` being the import root. Throws an Error carrying
 * buf's diagnostics when a file does not compile (the decoder reports it as a config error).
 */
export function compileProtoFiles(root: string, files: readonly string[]): Buffer {
  const args = [bufLauncher(), 'build', root, ...files.flatMap((file) => ['--path', join(root, file)]), '--output', '-'];
  try {
    return execFileSync(process.execPath, args, {
      cwd: root,
      maxBuffer: MAX_OUTPUT_BYTES,
      timeout: COMPILE_TIMEOUT_MS,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (cause) {
    const stderr = (cause as { stderr?: Buffer | string }).stderr;
    const diagnostics = stderr === undefined ? '' : String(stderr).trim();
    const why = diagnostics !== '' ? diagnostics.slice(0, MAX_DIAGNOSTIC_CHARS) : (cause as Error).message;
    throw new Error(`buf could not compile ${files.length === 0 ? `the .proto files under ${root}` : files.join(', ')}: ${why}`, { cause });
  }
}
