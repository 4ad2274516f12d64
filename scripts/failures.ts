// Prints the tests that failed (not the `todo` ones, whose known failures node lists too) from a
// TAP report, each with its diagnostics, so the last lines of a failed run name the real failure.
import { readFileSync } from 'node:fs';

const MAX_LINES_PER_FAILURE = 60;
const [path] = process.argv.slice(2);
if (path === undefined) throw new Error('usage: failures.ts <tap report>');
const lines = readFileSync(path, 'utf8').split('\n');
const failures: string[][] = [];
for (let i = 0; i < lines.length; i++) {
  const line = lines[i] ?? '';
  const head = line.trimStart();
  if (!head.startsWith('not ok ') || head.includes(' # TODO')) continue;
  const indent = line.length - head.length;
  const block = [head];
  // The YAML block follows, two spaces deeper, and ends at its `...` line.
  for (let j = i + 1; j < lines.length; j++) {
    const next = lines[j] ?? '';
    if (next.trim() === '...' && next.length - next.trimStart().length === indent + 2) break;
    block.push(next.slice(indent));
  }
  // Parents fail because a child failed: only the innermost failures say why.
  if (!block.some((l) => l.includes("failureType: 'subtestsFailed'"))) failures.push(block);
}
if (failures.length > 0) {
  process.stdout.write(`\n== ${failures.length} failed test(s), todo tests left out:\n`);
  for (const block of failures) process.stdout.write(`${block.slice(0, MAX_LINES_PER_FAILURE).join('\n')}\n\n`);
}
