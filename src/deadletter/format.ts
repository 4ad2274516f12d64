// Owns how dead letters are shown by `dlq list` (one line, or one JSON object per line) and
// `dlq inspect` (everything: every header, key and value, UTF-8 when printable, else base64).
import type { DeadLetter } from './record.ts';
import { showBytes } from './record.ts';

export function listLine(l: DeadLetter): string {
  const original = l.original === undefined ? 'from ?' : `from ${l.original.topic}/${l.original.partition}/${l.original.offset}`;
  const message = (l.message ?? '').split('\n')[0]?.slice(0, 160) ?? '';
  const code = l.serverCode === undefined ? (l.code ?? '-') : `${l.code ?? '-'}(${l.serverCode})`;
  const size = l.omitted === undefined ? `${l.raw.value?.length ?? 0}B` : `without ${l.omitted}`;
  return [l.id, l.errorClass ?? '-', code, l.table ?? '-', `team=${l.team ?? '-'}`, original, size, message].join('  ');
}

export function listJson(l: DeadLetter): string {
  return JSON.stringify({
    dlq: { topic: l.raw.topic, partition: l.raw.partition, offset: String(l.raw.offset), timestamp: Number(l.raw.timestamp) },
    id: l.id,
    class: l.errorClass ?? null,
    code: l.code ?? null,
    clickhouseCode: l.serverCode === undefined ? null : Number(l.serverCode),
    route: l.route ?? null,
    destination: l.destination ?? null,
    table: l.table ?? null,
    team: l.team ?? null,
    at: l.at.toISOString(),
    original: l.original === undefined ? null : { topic: l.original.topic, partition: l.original.partition, offset: String(l.original.offset), timestamp: Number(l.original.timestamp) },
    valueBytes: l.raw.value?.length ?? 0,
    omitted: l.omitted ?? null,
    mayHaveLanded: l.mayHaveLanded === true,
    message: l.message ?? null,
  });
}

export function inspectJson(l: DeadLetter): string {
  return `${JSON.stringify(
    {
      dlq: { topic: l.raw.topic, partition: l.raw.partition, offset: String(l.raw.offset), timestamp: Number(l.raw.timestamp) },
      headers: l.raw.headers.map(([name, value]) => ({ name: name.toString('utf8'), ...showBytes(value) })),
      key: showBytes(l.raw.key) ?? null,
      value: showBytes(l.raw.value) ?? null,
    },
    null,
    2,
  )}\n`;
}

export function inspectText(l: DeadLetter): string {
  const lines = [`dead letter ${l.id} (written ${new Date(Number(l.raw.timestamp)).toISOString()})`, `headers (${l.raw.headers.length}):`];
  for (const [name, value] of l.raw.headers) lines.push(`  ${name.toString('utf8')}: ${shown(value)}`);
  lines.push(`key: ${l.raw.key === undefined ? '(none)' : shown(l.raw.key)}`);
  lines.push(`value (${l.raw.value?.length ?? 0} bytes): ${l.raw.value === undefined ? '(none)' : shown(l.raw.value)}`);
  return `${lines.join('\n')}\n`;
}

function shown(bytes: Buffer): string {
  const s = showBytes(bytes);
  return s === undefined ? '' : s.encoding === 'utf8' ? s.text : `base64:${s.text}`;
}
