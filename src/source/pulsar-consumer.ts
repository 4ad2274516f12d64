// Owns one partition's Exclusive consumer on the broker's WebSocket API while it is subscribed: the
// frames received and not yet handed on, the ids handed on and not yet acknowledged, and the flow
// control. The consumer runs in pull mode: the broker sends only as many messages as it was given
// permits for, and a permit is given back only once the core accepted a record (its onRecord
// promise resolved), so a slow pipeline holds at most `receiverQueueSize` frames per partition.
// Acknowledgements are individual (the WebSocket API has no cumulative one): everything handed on
// below a committed position. Within one session offsets only go up: a frame at or below the last
// one handed on (the consumer inside the WebSocket service reconnected after a topic move and
// redelivers what is not acknowledged) is skipped, never handed on or acknowledged.
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeMessageId, offsetOf } from './pulsar-message-id.ts';
import { PulsarSocket, type PulsarSocketError } from './pulsar-socket.ts';
import type { PartitionRef, SourceRecord } from './types.ts';

/** How long a commit waits for its acknowledgement frames to leave the socket. */
const FLUSH_TIMEOUT_MS = 5_000;

/** A message frame of the consumer API (other frames — the keepalive's answer — have no messageId). */
export interface ConsumerFrame {
  readonly messageId: string;
  readonly payload?: string;
  readonly properties?: Record<string, string>;
  readonly publishTime?: string;
  readonly eventTime?: string;
  readonly key?: string;
}

export interface ConsumerSessionOptions {
  /** ws://host:port/ws/v2/consumer/persistent/<tenant>/<ns>/<partition topic>/<subscription>?... */
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly ref: PartitionRef;
  readonly receiverQueueSize: number;
  readonly keepaliveMs: number;
  /** A frame arrived (the delivery loop may be waiting for one). */
  readonly onFrame: () => void;
}

export class ConsumerSession {
  readonly ref: PartitionRef;
  readonly #options: ConsumerSessionOptions;
  #socket: PulsarSocket | undefined;
  readonly #frames: ConsumerFrame[] = [];
  #head = 0;
  /** Handed to the core, not acknowledged yet: offsets ascending (the broker delivers in order). */
  readonly #delivered: Array<{ offset: bigint; id: string }> = [];
  /** The offset of the last record handed on in this session (offsets handed on only go up). */
  #last: bigint | undefined;
  #consumedSincePermit = 0;
  /** Ownership checks in a row that did not find this consumer subscribed. */
  missing = 0;
  /** Closed by a rewind: the partition stays owned and is subscribed again (not revoked). */
  rewound = false;
  readonly closed: Promise<PulsarSocketError>;
  #onClosed: (error: PulsarSocketError) => void = () => undefined;
  #isClosed = false;

  constructor(options: ConsumerSessionOptions) {
    this.ref = options.ref;
    this.#options = options;
    this.closed = new Promise((resolve) => {
      this.#onClosed = resolve;
    });
  }

  /** Subscribes (the broker refuses a second Exclusive consumer); rejects when it cannot. */
  async open(signal: AbortSignal): Promise<void> {
    const ref = this.ref;
    this.#socket = await PulsarSocket.open(
      {
        url: this.#options.url,
        headers: this.#options.headers,
        what: `consumer of ${ref.topic}/${ref.partition}`,
        // Answered with {"endOfTopic": false}; keeps the session from the broker's idle timeout.
        keepalive: { frame: { type: 'isEndOfTopic' }, everyMs: this.#options.keepaliveMs },
        onFrame: (frame) => {
          // Not a message (the keepalive's answer, or anything else that is no object with an id).
          if (typeof frame !== 'object' || frame === null || typeof (frame as Partial<ConsumerFrame>).messageId !== 'string' || this.#isClosed) return;
          this.#frames.push(frame as ConsumerFrame);
          this.#options.onFrame();
        },
        onClose: (error) => {
          this.#isClosed = true;
          this.#frames.length = 0;
          this.#head = 0;
          this.#onClosed(error);
        },
      },
      signal,
    );
    this.#socket.send({ type: 'permit', permitMessages: this.#options.receiverQueueSize });
  }

  get isOpen(): boolean {
    return !this.#isClosed && this.#socket?.isOpen === true;
  }

  get hasFrames(): boolean {
    return this.#head < this.#frames.length;
  }

  /** Whether a record was handed on in this session (its stream no longer starts at the acknowledged position). */
  get handedOn(): boolean {
    return this.#last !== undefined;
  }

  /**
   * The next received frame as a record (recorded as handed on); undefined when none is waiting or
   * the session is closing. A frame whose offset is not above the last one handed on is skipped: the
   * WebSocket service's consumer redelivers what is not acknowledged when it reconnects by itself (a
   * topic move), and a record handed on out of order would be taken for one already seen by the
   * core and acknowledged unread. It is not recorded as handed on (never acknowledged in this
   * session: the next owner reads it again); its permit is given back.
   */
  take(): SourceRecord | undefined {
    while (!this.#isClosed && this.#head < this.#frames.length) {
      const frame = this.#frames[this.#head++] as ConsumerFrame;
      if (this.#head > 1024 && this.#head * 2 > this.#frames.length) {
        this.#frames.splice(0, this.#head);
        this.#head = 0;
      }
      const record = toRecord(this.ref, frame);
      if (this.#last !== undefined && record.offset <= this.#last) {
        this.#returnPermit();
        continue;
      }
      this.#last = record.offset;
      this.#delivered.push({ offset: record.offset, id: frame.messageId });
      return record;
    }
    return undefined;
  }

  /** The core accepted a record: give its permit back. */
  accepted(): void {
    this.#returnPermit();
  }

  /** Permits go back in batches of half the queue. */
  #returnPermit(): void {
    this.#consumedSincePermit++;
    const batch = Math.max(1, Math.floor(this.#options.receiverQueueSize / 2));
    if (this.#consumedSincePermit < batch || !this.isOpen) return;
    this.#socket?.send({ type: 'permit', permitMessages: this.#consumedSincePermit });
    this.#consumedSincePermit = 0;
  }

  /**
   * Acknowledges every message handed on below `offset`; resolves once the frames left the socket
   * (the WebSocket API does not answer acknowledgements). A closed session acknowledges nothing:
   * its messages go to the next owner (or the next subscription after a rewind), which the ledger
   * keeps from inserting twice.
   */
  async acknowledgeBelow(offset: bigint, signal: AbortSignal | undefined): Promise<number> {
    const socket = this.#socket;
    if (socket === undefined || !this.isOpen) return 0;
    let sent = 0;
    while (this.#delivered.length > 0 && (this.#delivered[0] as { offset: bigint }).offset < offset) {
      socket.send({ messageId: (this.#delivered.shift() as { id: string }).id });
      sent++;
    }
    const deadline = performance.now() + FLUSH_TIMEOUT_MS;
    while (socket.isOpen && socket.bufferedAmount > 0 && performance.now() < deadline) await sleep(2, undefined, signal === undefined ? {} : { signal });
    return sent;
  }

  /**
   * Closes the consumer; what was not acknowledged is delivered again to the next subscriber. From
   * the call on nothing more is handed on: the frames received are dropped at once.
   */
  async close(code = 1000, reason = 'closing'): Promise<void> {
    this.#isClosed = true;
    this.#frames.length = 0;
    this.#head = 0;
    await this.#socket?.close(code, reason);
  }
}

function toRecord(ref: PartitionRef, frame: ConsumerFrame): SourceRecord {
  const time = Date.parse(frame.eventTime ?? frame.publishTime ?? '');
  return {
    topic: ref.topic,
    partition: ref.partition,
    offset: offsetOf(decodeMessageId(frame.messageId)),
    timestamp: BigInt(Number.isFinite(time) ? time : Date.now()),
    key: frame.key === undefined ? undefined : Buffer.from(frame.key),
    value: frame.payload === undefined ? undefined : Buffer.from(frame.payload, 'base64'),
    headers: Object.entries(frame.properties ?? {}).map(([name, value]) => [Buffer.from(name), Buffer.from(value)] as const),
    epoch: 0,
  };
}
