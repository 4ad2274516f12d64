// Owns the format and the reading of a partition's ledger log on Pulsar: one non-partitioned topic
// per (subscription, source topic, partition), written only by the partition's owner. Each record
// is an envelope naming the record it was written directly after (`after`: the writer's previous
// record, or the newest record it read when it took the partition over). A record is valid only if
// it really follows `after` in the log: a write from an owner that lost the partition lands after
// someone else's record and is invalid (its writer sees the same and stops before inserting). A load
// reads the newest valid record, walking back from the end with the admin API's examinemessage —
// one request in the usual case — instead of reading the whole topic.
import type { LedgerJson } from '../ack/ledger.ts';
import type { PulsarAdmin } from './pulsar-admin.ts';
import { entryText, parseEntryId } from './pulsar-message-id.ts';

/** How far back a load looks for a valid record before it gives up (each step is one request). */
const MAX_WALK = 64;
/** What `after` holds when it names an entry ("ledger:entry"). */
const ENTRY_ID = /^\d+:\d+$/;

export interface EntryId {
  readonly ledgerId: bigint;
  readonly entryId: bigint;
}

export interface LedgerEnvelope {
  readonly v: 1;
  readonly key: string;
  /** The process (and takeover) that wrote it. */
  readonly owner: string;
  readonly takeover: boolean;
  /** "ledger:entry" of the record this one was written directly after; null: the topic was empty. */
  readonly after: string | null;
  readonly ledger: LedgerJson | null;
}

export function envelopeOf(payload: Buffer, key: string): LedgerEnvelope | undefined {
  try {
    const value = JSON.parse(payload.toString('utf8')) as Partial<LedgerEnvelope> | null;
    if (value === null || typeof value !== 'object' || value.v !== 1 || value.key !== key || typeof value.owner !== 'string' || typeof value.takeover !== 'boolean') return undefined;
    // A record whose `after` names no entry cannot be checked: it is invalid (skipped), never a
    // failure of every load of the partition.
    if (value.after !== null && (typeof value.after !== 'string' || !ENTRY_ID.test(value.after))) return undefined;
    if (value.ledger === undefined || (value.ledger !== null && (typeof value.ledger !== 'object' || Array.isArray(value.ledger)))) return undefined;
    return value as LedgerEnvelope;
  } catch {
    return undefined;
  }
}

/**
 * The entry right before `id` in the topic. `unknown` when `id` opens the oldest ledger still
 * listed: the topic's first entry, or one whose predecessor retention deleted (it cannot be
 * checked, and is taken as valid).
 */
export async function predecessor(admin: PulsarAdmin, topic: string, id: EntryId, signal: AbortSignal): Promise<EntryId | 'unknown'> {
  if (id.entryId > 0n) return { ledgerId: id.ledgerId, entryId: id.entryId - 1n };
  const ledgers = await admin.ledgers(topic, signal);
  const at = ledgers.findIndex((l) => l.ledgerId === id.ledgerId);
  if (at < 0) return 'unknown';
  for (let i = at - 1; i >= 0; i--) {
    const ledger = ledgers[i] as { ledgerId: bigint; entries: number };
    if (ledger.entries > 0) return { ledgerId: ledger.ledgerId, entryId: BigInt(ledger.entries - 1) };
  }
  // No earlier entry listed: the topic's first entry, or the ledgers before were deleted by retention.
  return 'unknown';
}

/** Whether `id` sits directly after `after` (null: first in the topic). */
export async function follows(admin: PulsarAdmin, topic: string, id: EntryId, after: string | null, signal: AbortSignal): Promise<boolean> {
  const before = await predecessor(admin, topic, id, signal);
  if (before === 'unknown') return true;
  return after !== null && entryText(before) === entryText(parseEntryId(after));
}

export interface NewestLedger {
  /** The newest valid record's ledger (undefined: none was ever written). */
  readonly ledger: LedgerJson | undefined;
  /** The topic's newest record when it was read: a takeover record is written directly after it. */
  readonly end: EntryId | undefined;
  /** Records skipped as invalid (writes of an owner that had lost the partition). */
  readonly skipped: number;
}

/** Reads the newest valid ledger record of `key` in `topic`, walking back from its end. */
export async function readNewest(admin: PulsarAdmin, topic: string, key: string, signal: AbortSignal): Promise<NewestLedger> {
  let end: EntryId | undefined;
  for (let position = 1; position <= MAX_WALK; position++) {
    const message = await admin.examine(topic, position, signal);
    if (message === undefined) return { ledger: undefined, end, skipped: position - 1 };
    end ??= message.id;
    const envelope = envelopeOf(message.payload, key);
    if (envelope !== undefined && (await follows(admin, topic, message.id, envelope.after, signal))) {
      return { ledger: envelope.ledger ?? undefined, end, skipped: position - 1 };
    }
  }
  throw new Error(`${topic}: no valid ledger record among the newest ${MAX_WALK}`);
}
