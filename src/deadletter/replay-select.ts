// Owns which selected dead letters a replay may send: not those the replay ledger already records
// (by dead-letter coordinates, or another dead letter of the same original record), and of several
// dead letters of one original record (dead letters are at least once) only the first; never one
// written without parts of the record (its value, key or headers are only in the source topic).
import { originalKey, type DeadLetter } from './record.ts';
import type { LedgerView } from './replay-ledger.ts';
import type { ReplayReport } from './replay-report.ts';

/** The letters to replay, in order; every other one is reported as skipped (pending ones silently when `quietPending`). */
export function replayable(letters: readonly DeadLetter[], ledger: LedgerView, report: ReplayReport, quietPending: boolean): DeadLetter[] {
  const out: DeadLetter[] = [];
  const first = new Map<string, string>();
  for (const letter of letters) {
    if (letter.omitted !== undefined) {
      // Replaying it would put a record without its value (or key) where the whole one belongs.
      const o = letter.original;
      const from = o === undefined ? 'the source topic' : `${o.topic}/${o.partition} at offset ${o.offset}`;
      report.skipped.push({ id: letter.id, detail: `written without its ${letter.omitted}: not replayable from the dead letter; the record is still in ${from} (until retention removes it)` });
      continue;
    }
    const original = originalKey(letter);
    const recordedAs = original === undefined ? undefined : ledger.recordedFor(original);
    const entry = ledger.entries.get(letter.id) ?? (recordedAs === undefined ? undefined : ledger.entries.get(recordedAs));
    if (entry !== undefined) {
      const as = recordedAs !== undefined && recordedAs !== letter.id ? ` as ${recordedAs}` : '';
      if (entry.state === 'done') report.skipped.push({ id: letter.id, detail: `already replayed to ${entry.to}${as} (${entry.at})` });
      else if (!quietPending) report.skipped.push({ id: letter.id, detail: `a replay to ${entry.to}${as} is pending: finish it with --to ${entry.to}` });
      continue;
    }
    const earlier = original === undefined ? undefined : first.get(original);
    if (earlier !== undefined) {
      report.skipped.push({ id: letter.id, detail: `a second dead letter of the same record as ${earlier}` });
      continue;
    }
    if (original !== undefined) first.set(original, letter.id);
    out.push(letter);
  }
  return out;
}
