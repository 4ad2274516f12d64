// Owns writing JSON text into one reused byte buffer (the Protobuf row type's `toJson`): strings and
// raw bytes escaped byte by byte (so `bytes` fields reach a
// String column byte for byte, as ClickHouse reads JSON strings without checking UTF-8), and
// timestamps as `YYYY-MM-DD HH:MM:SS.ffffff` UTC, what DateTime64 columns parse under
// `date_time_input_format=basic`. The buffer grows and is reused; `take()` copies the row out.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const HEX = '0123456789abcdef';
/** 1 for the bytes a JSON string escapes: `"`, `\` and control bytes. */
const ESCAPE = new Uint8Array(256).map((_, b) => (b < 0x20 || b === QUOTE || b === BACKSLASH ? 1 : 0));
const INITIAL_BYTES = 64 * 1024;
/** A buffer grown past this (a huge row) is dropped after use rather than kept for the next. */
const KEEP_BYTES = 8 * 1024 * 1024;
/** Strings up to this many bytes reserve their worst-case escaped size instead of counting first. */
const SMALL_BYTES = 64 * 1024;

export class JsonWriter {
  #buf: Buffer = Buffer.allocUnsafe(INITIAL_BYTES);
  /** A string's UTF-8 bytes before they are escaped into #buf. */
  #scratch: Buffer = Buffer.allocUnsafe(INITIAL_BYTES);
  #pos = 0;

  #ensure(extra: number): void {
    const need = this.#pos + extra;
    if (need <= this.#buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(need, this.#buf.length * 2));
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
  }

  byte(b: number): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = b;
  }

  /** Bytes written as they are (pre-encoded keys, punctuation). */
  raw(bytes: Uint8Array): void {
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /** Text that is already JSON (numbers, literals, JSON.stringify output). */
  text(s: string): void {
    this.#ensure(s.length * 3);
    this.#pos += this.#buf.write(s, this.#pos, 'utf8');
  }

  /** A JSON string: its UTF-8 bytes, escaped byte by byte (faster than JSON.stringify on text full of quotes, as nested JSON is). */
  string(s: string): void {
    if (this.#scratch.length < s.length * 3) this.#scratch = Buffer.allocUnsafe(Math.max(s.length * 3, this.#scratch.length * 2));
    const n = this.#scratch.write(s, 0, 'utf8');
    this.bytesString(this.#scratch.subarray(0, n));
    if (this.#scratch.length > KEEP_BYTES) this.#scratch = Buffer.allocUnsafe(INITIAL_BYTES);
  }

  /** A JSON string holding these bytes: `"`, `\` and control bytes escaped, the rest as is. */
  bytesString(bytes: Uint8Array): void {
    this.bytesStringAt(bytes, 0, bytes.length);
  }

  /** A JSON string holding bytes [start, end) (a Protobuf row's string, read in place). */
  bytesStringAt(bytes: Uint8Array, start: number, end: number): void {
    // Room for the worst case (every byte a \u00XX) when that is small; else count what needs escaping.
    const length = end - start;
    let special = length;
    if (length > SMALL_BYTES) {
      special = 0;
      for (let i = start; i < end; i++) {
        const b = bytes[i] ?? 0;
        if (b < 0x20 || b === QUOTE || b === BACKSLASH) special++;
      }
    }
    this.#ensure(length + special * 5 + 2);
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = QUOTE;
    for (let i = start; i < end; i++) {
      const b = bytes[i] as number;
      if (ESCAPE[b] === 0) buf[pos++] = b;
      else if (b === QUOTE || b === BACKSLASH) {
        buf[pos++] = BACKSLASH;
        buf[pos++] = b;
      } else {
        pos += buf.write(`\\u00${HEX[b >> 4] ?? '0'}${HEX[b & 15] ?? '0'}`, pos, 'latin1');
      }
    }
    buf[pos++] = QUOTE;
    this.#pos = pos;
  }

  /** A quoted timestamp, `"YYYY-MM-DD HH:MM:SS.ffffff"` (9 digits when below a microsecond). */
  timestamp(seconds: bigint, nanos: number): void {
    this.text(`"${formatTimestamp(seconds, nanos)}"`);
  }

  /** Forgets what was written since the last take (a write that threw part-way). */
  reset(): void {
    this.#pos = 0;
  }

  /** The JSON written since the last take, copied out; the writer is empty again. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.#pos);
    this.#buf.copy(out, 0, 0, this.#pos);
    this.#pos = 0;
    if (this.#buf.length > KEEP_BYTES) this.#buf = Buffer.allocUnsafe(INITIAL_BYTES);
    return out;
  }

  /** The JSON written since the last take as a string; the writer is empty again. */
  takeString(): string {
    const out = this.#buf.toString('utf8', 0, this.#pos);
    this.#pos = 0;
    return out;
  }
}

const PAD2: readonly string[] = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const PAD3: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const days = new Map<number, string>();

/** `YYYY-MM-DD HH:MM:SS.ffffff` (UTC) of seconds since the epoch and nanoseconds; 9 digits when the nanos need them. */
export function formatTimestamp(seconds: bigint | number, nanos: number): string {
  const s = Number(seconds);
  const day = Math.floor(s / 86400);
  let date = days.get(day);
  if (date === undefined) {
    date = new Date(day * 86_400_000).toISOString().slice(0, 10);
    if (days.size > 10_000) days.clear();
    days.set(day, date);
  }
  const rem = s - day * 86400;
  const h = Math.floor(rem / 3600);
  const m = Math.floor((rem - h * 3600) / 60);
  const sec = rem - h * 3600 - m * 60;
  const ns = nanos > 0 && nanos < 1e9 ? Math.floor(nanos) : 0;
  const micros = Math.floor(ns / 1000);
  const fraction = `${PAD3[Math.floor(micros / 1000)] ?? '000'}${PAD3[micros % 1000] ?? '000'}${ns % 1000 === 0 ? '' : (PAD3[ns % 1000] ?? '000')}`;
  return `${date} ${PAD2[h] ?? '00'}:${PAD2[m] ?? '00'}:${PAD2[sec] ?? '00'}.${fraction}`;
}
