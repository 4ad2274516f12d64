// Every error code inserter can carry is documented: each code of the closed list (errorCodes) and
// each INSERTER_SINK_<CLASS> of every error class has a row in the "Every error code" section of
// docs/errors.md, and every row there names a code that exists (no stale documentation).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ErrorClasses } from '../../../src/errors/classes.ts';
import { errorCodes, sinkErrorCode } from '../../../src/errors/codes.ts';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

/** The "## Every error code" section: from its heading to the next level-2 heading or the end. */
function section(): string {
  const start = doc.indexOf('\n## Every error code\n');
  assert.ok(start >= 0, 'docs/errors.md has no "## Every error code" section');
  const next = doc.indexOf('\n## ', start + 1);
  return next < 0 ? doc.slice(start) : doc.slice(start, next);
}

/** Codes in the first column of the section's tables: lines starting with "| `INSERTER_…` |". */
function documentedRows(): Set<string> {
  const rows = new Set<string>();
  for (const line of section().split('\n')) {
    if (!line.startsWith('| `INSERTER_')) continue;
    const end = line.indexOf('`', 3);
    rows.add(line.slice(3, end));
  }
  return rows;
}

const allCodes: readonly string[] = [...new Set<string>([...errorCodes, ...Object.values(ErrorClasses).map(sinkErrorCode)])];

test('every code of the closed list has a row in docs/errors.md "Every error code"', () => {
  const rows = documentedRows();
  const missing = [...new Set<string>(errorCodes)].filter((code) => !rows.has(code));
  assert.deepEqual(missing, [], `undocumented error codes (add a row to docs/errors.md "Every error code"): ${missing.join(', ')}`);
});

test('every INSERTER_SINK_<CLASS> of every error class has a row', () => {
  const rows = documentedRows();
  const classes = Object.values(ErrorClasses);
  assert.ok(classes.length > 0);
  const missing = classes.map(sinkErrorCode).filter((code) => !rows.has(code));
  assert.deepEqual(missing, [], `undocumented warehouse codes: ${missing.join(', ')}`);
  assert.ok(rows.has('INSERTER_SINK_ROW_DATA'), 'the sink code is the class in capitals');
});

test('every documented row names a code that exists', () => {
  const known = new Set(allCodes);
  const stale = [...documentedRows()].filter((code) => !known.has(code));
  assert.deepEqual(stale, [], `rows naming no code of src/errors/codes.ts: ${stale.join(', ')}`);
});

test('each code has exactly one row', () => {
  const seen = new Map<string, number>();
  for (const line of section().split('\n')) {
    if (!line.startsWith('| `INSERTER_')) continue;
    const code = line.slice(3, line.indexOf('`', 3));
    seen.set(code, (seen.get(code) ?? 0) + 1);
  }
  const twice = [...seen].filter(([, n]) => n > 1).map(([code]) => code);
  assert.deepEqual(twice, []);
  assert.equal(seen.size, allCodes.length);
});
