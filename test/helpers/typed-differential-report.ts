// Owns what the typed-encoding differential test says: a table's outcome in one line, and its
// divergences grouped by kind and column (the first few of each in full: table, column and type,
// what was done to the input, the input, JSONEachRow's result and the typed result), so the
// encoder's author can reproduce each from the message alone. Also the columns the mutator targets.
import type { ColumnInfo } from '../../src/sink/types.ts';
import { metadataColumnNames } from '../../src/encode/json-each-row.ts';
import type { MutableColumn } from './typed-differential-inputs.ts';
import { show, typeShape } from './typed-differential-values.ts';
import type { Divergence, TableOutcome } from './typed-differential.ts';

/** Insertable columns that are not Kafka metadata: what producers send; and the names a producer must not set. */
export function mutableColumns(columns: readonly ColumnInfo[]): { columns: MutableColumn[]; extraKeys: string[] } {
  const metadata = new Set<string>(metadataColumnNames);
  const out: MutableColumn[] = [];
  const extraKeys: string[] = [];
  for (const c of columns) {
    if (metadata.has(c.name)) continue;
    if (c.defaultKind === 'MATERIALIZED' || c.defaultKind === 'ALIAS' || c.defaultKind === 'EPHEMERAL') extraKeys.push(c.name);
    else out.push({ name: c.name, shape: typeShape(c.type) });
  }
  return { columns: out, extraKeys };
}

export function outcomeLine(o: TableOutcome): string {
  if (o.uncovered !== undefined) return `${o.table}: typed encoder UNCOVERED: ${o.uncovered}`;
  return (
    `${o.table}: ${o.cases} cases (${o.undecodable} refused by the decoder), JSONEachRow accepted ${o.acceptedByPassthrough} rejected ${o.rejectedByPassthrough}; ` +
    `typed rejected ${o.rejectedByEncoder} in the encoder, ${o.rejectedByServerTyped} at the server; ${o.inserts} inserts; ${o.divergences.length} divergences; ${o.ms} ms`
  );
}

function groupKey(d: Divergence): string {
  return d.kind === 'value' ? `value of ${d.column ?? '?'} ${d.type ?? ''}` : d.kind;
}

/** Divergences grouped by kind and column, `perGroup` examples each, with everything needed to reproduce them. */
export function formatDivergences(divergences: readonly Divergence[], seed: number, perGroup = 3): string {
  const groups = new Map<string, Divergence[]>();
  for (const d of divergences) {
    const key = `${d.table}: ${groupKey(d)}`;
    const list = groups.get(key) ?? [];
    list.push(d);
    groups.set(key, list);
  }
  const lines: string[] = [`${divergences.length} divergences in ${groups.size} groups (TYPED_DIFF_SEED=${seed} replays):`];
  for (const [key, list] of groups) {
    lines.push(``, `## ${key} — ${list.length} row(s)`);
    for (const d of list.slice(0, perGroup)) {
      lines.push(`- table ${d.table}, _offset ${d.offset}${d.column === undefined ? '' : `, column ${d.column} ${d.type ?? ''}`}`);
      lines.push(`  mutation: ${d.what.join('; ')}`);
      lines.push(`  input:       ${show(d.input, 400)}`);
      lines.push(`  JSONEachRow: ${d.passthrough.slice(0, 500)}`);
      lines.push(`  typed:       ${d.typed.slice(0, 500)}`);
    }
  }
  return lines.join('\n');
}
