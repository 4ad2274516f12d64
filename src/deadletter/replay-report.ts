// Owns the outcome of a `dlq replay`: what was replayed (or would be, with --dry-run), what was
// skipped and why (already in the replay ledger, not replayable that way), what failed again.

export interface ReplayItem {
  /** `<dlq topic>/<partition>/<offset>` */
  readonly id: string;
  readonly detail: string;
}

export interface ReplayReport {
  readonly to: 'original' | 'destination';
  readonly dryRun: boolean;
  readonly replayed: ReplayItem[];
  readonly skipped: ReplayItem[];
  readonly failed: ReplayItem[];
}

export function emptyReport(to: ReplayReport['to'], dryRun: boolean): ReplayReport {
  return { to, dryRun, replayed: [], skipped: [], failed: [] };
}

export function formatReplayReport(report: ReplayReport): string {
  const verb = report.dryRun ? 'would replay' : 'replayed';
  const lines = [`${verb} ${report.replayed.length} to ${report.to}, skipped ${report.skipped.length}, failed ${report.failed.length}`];
  for (const r of report.replayed) lines.push(`  ${verb} ${r.id} → ${r.detail}`);
  for (const r of report.skipped) lines.push(`  skipped ${r.id}: ${r.detail}`);
  for (const r of report.failed) lines.push(`  FAILED ${r.id}: ${r.detail}`);
  return `${lines.join('\n')}\n`;
}
