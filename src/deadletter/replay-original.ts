// Owns `dlq replay --to original`: re-produces dead letters to the topic and partition they came
// from (original key, value, timestamp and headers, none of the writer's `x-inserter-*` headers,
// plus `x-inserter-replayed-from`), each in the same Kafka transaction as its replay-ledger entry,
// so a dead letter is re-produced at most once however often (or however interrupted) replays run.
import { originalKey, replayedFromHeader, type DeadLetter } from './record.ts';
import type { LedgerView, Message } from './replay-ledger.ts';
import { emptyReport, type ReplayReport } from './replay-report.ts';
import { replayable } from './replay-select.ts';

/** Dead letters per transaction: small, so a transaction stays well inside its timeout. */
const perTransaction = 100;

export async function replayToOriginal(letters: readonly DeadLetter[], ledger: LedgerView, dryRun: boolean): Promise<ReplayReport> {
  const report = emptyReport('original', dryRun);
  const todo: Array<{ letter: DeadLetter; message: Message }> = [];
  for (const letter of replayable(letters, ledger, report, false)) {
    const original = letter.original;
    if (original === undefined) {
      report.skipped.push({ id: letter.id, detail: 'no x-inserter-original-* headers: not a dead letter of inserter' });
      continue;
    }
    const headers = new Map<Buffer, Buffer>();
    for (const [name, value] of original.headers) if (!name.toString('utf8').startsWith('x-inserter-')) headers.set(name, value);
    headers.set(Buffer.from(replayedFromHeader), Buffer.from(letter.id));
    todo.push({
      letter,
      message: {
        topic: original.topic,
        partition: original.partition,
        timestamp: original.timestamp,
        headers,
        ...(original.key ? { key: original.key } : {}),
        ...(original.value ? { value: original.value } : {}),
      },
    });
  }
  for (let i = 0; i < todo.length; i += perTransaction) {
    const chunk = todo.slice(i, i + perTransaction);
    if (!dryRun) {
      const at = new Date().toISOString();
      await ledger.write(
        chunk.map(({ letter, message }) => [letter.id, { to: 'original', state: 'done', at, target: `${message.topic}/${message.partition}`, original: originalKey(letter) }] as const),
        chunk.map(({ message }) => message),
      );
    }
    for (const { letter, message } of chunk) report.replayed.push({ id: letter.id, detail: `${message.topic}/${message.partition} (was offset ${letter.original?.offset})` });
  }
  return report;
}
