// Owns the text of ids and timestamps: random and stable UUIDv4/v7 strings, hex, and the
// `YYYY-MM-DD HH:MM:SS[.fff[fff]]` UTC timestamps PostHog writes (formatted by arithmetic, not Date).
import type { Rng } from './random.ts';
import { hash3, mix32 } from './random.ts';

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function hex8(x: number): string {
  return (HEX[(x >>> 24) & 255] ?? '') + (HEX[(x >>> 16) & 255] ?? '') + (HEX[(x >>> 8) & 255] ?? '') + (HEX[x & 255] ?? '');
}

function formatUuid(a: number, b: number, c: number, d: number): string {
  const hb = hex8(b);
  const hc = hex8(c);
  return `${hex8(a)}-${hb.slice(0, 4)}-${hb.slice(4)}-${hc.slice(0, 4)}-${hc.slice(4)}${hex8(d)}`;
}

/** Random UUIDv4. */
export function uuid4(rng: Rng): string {
  const b = (rng.u32() & 0xffff0fff) | 0x00004000;
  const c = ((rng.u32() & 0x3fffffff) | 0x80000000) >>> 0;
  return formatUuid(rng.u32(), b >>> 0, c, rng.u32());
}

/** UUIDv7 for time `ms` (as PostHog's capture assigns event uuids). */
export function uuid7(ms: number, rng: Rng): string {
  const hi = Math.floor(ms / 65536) >>> 0;
  const lo = ms % 65536;
  const b = ((lo << 16) | 0x7000 | (rng.u32() & 0x0fff)) >>> 0;
  const c = ((rng.u32() & 0x3fffffff) | 0x80000000) >>> 0;
  return formatUuid(hi, b, c, rng.u32());
}

/** A stable UUIDv4-shaped id derived from (a, b, salt). */
export function stableUuid(a: number, b: number, salt: number): string {
  const h1 = hash3(a, b, salt);
  const h2 = mix32(h1 ^ 0x68e31da4);
  const h3 = mix32(h2 ^ 0xb5297a4d);
  const h4 = mix32(h3 ^ 0x1b56c4e9);
  return formatUuid(h1, ((h2 & 0xffff0fff) | 0x4000) >>> 0, ((h3 & 0x3fffffff) | 0x80000000) >>> 0, h4);
}

/** A stable UUIDv7-shaped id for time `ms` derived from (a, b, salt). */
export function stableUuid7(ms: number, a: number, b: number, salt: number): string {
  const h1 = hash3(a, b, salt);
  const h2 = mix32(h1 ^ 0x68e31da4);
  const h3 = mix32(h2 ^ 0xb5297a4d);
  const hi = Math.floor(ms / 65536) >>> 0;
  const lo = ms % 65536;
  return formatUuid(hi, ((lo << 16) | 0x7000 | (h1 & 0x0fff)) >>> 0, ((h2 & 0x3fffffff) | 0x80000000) >>> 0, h3);
}

const PAD2: readonly string[] = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const PAD3: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

// Formatting through Date is the generator's hottest spot, so days are cached and the rest is arithmetic.
const dayCache = new Map<number, string>();

/** `YYYY-MM-DD HH:MM:SS` (UTC) for a whole number of seconds since the epoch. */
function secondString(sec: number): string {
  const day = Math.floor(sec / 86400);
  let date = dayCache.get(day);
  if (date === undefined) {
    date = new Date(day * 86_400_000).toISOString().slice(0, 10);
    if (dayCache.size > 100_000) dayCache.clear();
    dayCache.set(day, date);
  }
  const rem = sec - day * 86400;
  const h = Math.floor(rem / 3600);
  const m = Math.floor((rem - h * 3600) / 60);
  return `${date} ${PAD2[h] ?? '00'}:${PAD2[m] ?? '00'}:${PAD2[rem - h * 3600 - m * 60] ?? '00'}`;
}

/** `YYYY-MM-DD HH:MM:SS.ffffff` (UTC) for ms + micro (0..999). */
export function ts6(ms: number, micro: number): string {
  const sec = Math.floor(ms / 1000);
  return `${secondString(sec)}.${PAD3[ms - sec * 1000] ?? '000'}${PAD3[micro] ?? '000'}`;
}

/** `YYYY-MM-DD HH:MM:SS.fff` (UTC). */
export function ts3(ms: number): string {
  const sec = Math.floor(ms / 1000);
  return `${secondString(sec)}.${PAD3[ms - sec * 1000] ?? '000'}`;
}

/** `YYYY-MM-DD HH:MM:SS` (UTC). */
export function ts0(ms: number): string {
  return secondString(Math.floor(ms / 1000));
}
