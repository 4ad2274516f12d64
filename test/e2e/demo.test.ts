// `make demo` at a small size: dev/demo.ts starts its own broker, two chlocal endpoints and the
// inserter, produces 5,000 PostHog messages and exits 0 only when every row landed exactly once in its
// team's cluster (and unmapped teams were dead-lettered); once with JSON passed through, once with
// Protobuf from a schema registry inserted typed (RowBinaryWithDefaults).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { REPO_ROOT } from '../helpers/kafka.ts';

async function demo(t: TestContext, extra: readonly string[]): Promise<string> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dev', 'demo.ts'), '--messages', '5000', '--timeout', '90', ...extra], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  // On a timeout the demo gets SIGTERM and stops everything it started.
  t.after(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGTERM')));
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, output.slice(-6000));
  assert.match(output, /CHECK OK/);
  assert.match(output, /inserter exited: 0/);
  return output;
}

test('dev/demo.ts --messages 5000 passes its own check and exits 0 (JSON, pass-through)', { timeout: 180_000 }, async (t) => {
  const output = await demo(t, []);
  assert.match(output, /inserts \(--format json --encoding passthrough\): (\w+ JSONEachRow(, |$)){8}/m);
});

test('dev/demo.ts --format protobuf --encoding typed: the same check, every table inserted as RowBinaryWithDefaults', { timeout: 180_000 }, async (t) => {
  const output = await demo(t, ['--format', 'protobuf', '--encoding', 'typed']);
  assert.match(output, /inserts \(--format protobuf --encoding typed\): (\w+ RowBinaryWithDefaults(, |$)){8}/m);
});
