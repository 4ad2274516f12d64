// Owns the human-readable output of `inserter verify`: per route a summary line, a table of its
// destinations and one of its partitions, then every broken invariant by name (never credentials:
// the report holds none).
import type { RouteReport } from './verify-check.ts';

interface PrintableReport {
  readonly ok: boolean;
  readonly groupId: string;
  readonly idField: string;
  readonly routes: readonly RouteReport[];
  readonly failures: readonly string[];
}

function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

const mark = (ok: boolean): string => (ok ? 'ok' : 'FAIL');

export function formatReport(report: PrintableReport): string {
  const out: string[] = [`verify: group ${report.groupId}, id field ${report.idField}`];
  for (const r of report.routes) {
    const classes = Object.entries(r.deadLetters.byClass)
      .map(([cls, n]) => `${cls} ${n}`)
      .join(', ');
    out.push('');
    out.push(`route ${r.route}: topic ${r.topic}, dead letters ${r.deadLetterTopic}`);
    out.push(
      `  produced ${r.produced.records} (${r.produced.undecodable} undecodable, ${r.produced.withoutId} without id); ` +
        `dead-lettered ${r.produced.records - r.good}${classes === '' ? '' : ` (${classes})`}; good ${r.good}` +
        (r.deadLetters.repeated > 0 ? `; ${r.deadLetters.repeated} dead letter(s) written twice (allowed)` : ''),
    );
    const destinations = r.destinations.map((d) => [
      d.destination,
      d.table,
      String(d.expected),
      String(d.count),
      String(d.uniqExact),
      String(d.duplicates.count),
      String(d.misrouted.count),
      String(d.missing.count),
      String(d.deadLettered.count + d.unknown.count),
      mark(d.ok) + (d.note === undefined ? '' : ` (${d.note})`),
    ]);
    out.push(...table(['destination', 'table', 'expected', 'count()', 'uniqExact', 'dup ids', 'misrouted', 'lost', 'dlq/unknown', ''], destinations).map((l) => `  ${l}`));
    const partitions = r.partitions.map((p) => [String(p.partition), p.logEnd, p.committed, mark(p.ok)]);
    out.push(...table(['partition', 'log end', 'committed', ''], partitions).map((l) => `  ${l}`));
  }
  out.push('');
  if (report.ok) out.push('verify: OK — every invariant holds');
  else out.push(`verify: FAILED — ${report.failures.length} broken invariant(s):`, ...report.failures.map((f) => `  - ${f}`));
  return `${out.join('\n')}\n`;
}
