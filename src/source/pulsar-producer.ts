// Owns one WebSocket producer of one Pulsar topic for the writers that only publish (dead letters,
// the control log): sending a message and resolving with its id on the broker's receipt (the message
// is persisted), refusing locally a frame the WebSocket service would refuse by closing the whole
// connection, and failing every unanswered send when the connection ends. The ledger store keeps its
// own producer: its name is a lease and every receipt is checked (pulsar-ledger-store.ts).
//
// Too large, as the broker tells it (docs/design/pulsar.md, "Bus adapters"): a frame above the
// WebSocket service's webSocketMaxTextFrameSize (1 MiB by default) closes the connection (1009,
// "Text message size [n] exceeds maximum size [m]", or 1006 for much larger frames) and loses every
// receipt in flight, so frames above `maxFrameBytes` are never sent; a message above the topic's or
// the broker's maxMessageSize is answered with a `send-error` receipt ("Exceed maximum message size").
// A frame of several MB often gets the abnormal 1006 instead of the 1009 naming the limit: a 1006 with
// a send above the default limit in flight is taken as that send being too large, and the limit as
// the default's.
//
// A broken connection (half-open: open, but nothing comes back) is known only by a receipt that does
// not come: a receipt wait that ends by the caller's timeout (an abort whose reason is a TimeoutError)
// or by the producer's own bound closes the connection, so the next send goes through a new producer
// (`isOpen` is false at once). Closing a half-open connection: Node's WebSocket has no forced close —
// pulsar-socket.ts reports it closed after its close bound (5 s), but the TCP socket itself stays open
// until the peer answers or the operating system gives up on it.
import type { PulsarAdmin } from './pulsar-admin.ts';
import { decodeMessageId, type PulsarMessageId } from './pulsar-message-id.ts';
import { PulsarSocket } from './pulsar-socket.ts';

/** The WebSocket service's default webSocketMaxTextFrameSize. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
/** sendTimeoutMillis of the client inside the WebSocket service: it answers an error receipt after it. */
const SERVICE_SEND_TIMEOUT_MS = 30_000;
/** A receipt later than the service's own timeout means the connection is broken. */
const RECEIPT_TIMEOUT_MS = SERVICE_SEND_TIMEOUT_MS + 15_000;
const TOO_LARGE = /exceed(?:s|ed)? (?:the )?max(?:imum)? ?message ?size|maxMessageSize|message too (?:big|large)/i;
const FRAME_LIMIT = /exceeds maximum size \[(\d+)\]/;
/** The abnormal close (no close frame: the peer dropped the connection), as pulsar-socket.ts words it. */
const ABNORMAL_CLOSE = /connection closed \(1006\b/;

/** A publish that did not get an `ok` receipt. */
export class PulsarPublishError extends Error {
  readonly code = 'PULSAR_PUBLISH';
  /** Refused as too large: by the broker, by the WebSocket service's frame limit, or before sending. */
  readonly tooLarge: boolean;
  /** The frame left: the message may have been published (no receipt), unless the broker refused it. */
  readonly sent: boolean;
  constructor(message: string, options: { tooLarge?: boolean; sent: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PulsarPublishError';
    this.tooLarge = options.tooLarge ?? false;
    this.sent = options.sent;
  }
}

export interface OutgoingMessage {
  readonly payload: Buffer;
  readonly key?: string;
  readonly properties?: Readonly<Record<string, string>>;
  /** Milliseconds since the epoch (the message's event time). */
  readonly eventTime?: number;
}

export interface PulsarProducerOptions {
  readonly admin: PulsarAdmin;
  /** The broker's web service, http(s)://host:port. */
  readonly url: string;
  readonly topic: string;
  /** What the producer is for, in errors. */
  readonly what: string;
  /** Frames above this are refused before sending (the broker's webSocketMaxTextFrameSize). Default 1 MiB. */
  readonly maxFrameBytes?: number;
  /** A keepalive frame while idle (the broker ends idle sessions after 5 minutes by default). Default 60 s. */
  readonly keepaliveMs?: number;
  /** The broker closed the connection over a frame: its real limit, for the next producer. */
  readonly onFrameLimit?: (bytes: number) => void;
}

interface Waiting {
  readonly bytes: number;
  readonly resolve: (id: PulsarMessageId) => void;
  readonly reject: (error: PulsarPublishError) => void;
}

export class PulsarProducer {
  readonly #socket: PulsarSocket;
  readonly #waiting: Map<string, Waiting>;
  readonly #limit: { bytes: number };
  readonly #what: string;
  #context = 0;

  private constructor(socket: PulsarSocket, waiting: Map<string, Waiting>, limit: { bytes: number }, what: string) {
    this.#socket = socket;
    this.#waiting = waiting;
    this.#limit = limit;
    this.#what = what;
  }

  /** Opens the producer (one attempt); rejects when the broker refuses it, it takes too long, or the signal fires. */
  static async open(options: PulsarProducerOptions, signal: AbortSignal): Promise<PulsarProducer> {
    const waiting = new Map<string, Waiting>();
    const limit = { bytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES };
    const query = new URLSearchParams({ sendTimeoutMillis: String(SERVICE_SEND_TIMEOUT_MS) });
    const socket = await PulsarSocket.open(
      {
        url: `${options.url.replace(/^http/, 'ws').replace(/\/$/, '')}/ws/v2/producer/${options.admin.topicPath(options.topic)}?${query.toString()}`,
        headers: options.admin.authHeaders(),
        what: options.what,
        // A frame without a payload publishes nothing and is answered with an error receipt (no context).
        keepalive: { frame: {}, everyMs: options.keepaliveMs ?? 60_000 },
        onFrame: (frame) => {
          const f = frame as { result?: unknown; messageId?: unknown; context?: unknown; errorMsg?: unknown };
          if (typeof f.context !== 'string') return;
          const sent = waiting.get(f.context);
          if (sent === undefined) return;
          waiting.delete(f.context);
          if (f.result === 'ok' && typeof f.messageId === 'string') {
            try {
              sent.resolve(decodeMessageId(f.messageId));
            } catch (error) {
              sent.reject(new PulsarPublishError(`${options.what}: published, but its id is not readable: ${(error as Error).message}`, { sent: true, cause: error }));
            }
            return;
          }
          const detail = typeof f.errorMsg === 'string' ? f.errorMsg : '';
          sent.reject(new PulsarPublishError(`${options.what}: the broker refused the message: ${String(f.result)} ${detail}`.trim(), { sent: true, tooLarge: TOO_LARGE.test(detail) }));
        },
        onClose: (error) => {
          // Over the WebSocket service's frame limit: learn the limit; the frames above it were refused.
          const frameLimit = FRAME_LIMIT.exec(error.message);
          // A frame of several MB is often dropped with 1006, without the limit: a send above the
          // default limit in flight is taken as the cause, and the limit as the default's (sending it
          // again would only drop the connection again).
          const dropped = frameLimit === null && ABNORMAL_CLOSE.test(error.message) && [...waiting.values()].some((sent) => sent.bytes > DEFAULT_MAX_FRAME_BYTES);
          if (frameLimit !== null || dropped) {
            limit.bytes = Math.min(limit.bytes, frameLimit === null ? DEFAULT_MAX_FRAME_BYTES : Number(frameLimit[1]));
            options.onFrameLimit?.(limit.bytes);
          }
          for (const sent of waiting.values()) {
            const tooLarge = (frameLimit !== null || dropped) && sent.bytes > limit.bytes;
            sent.reject(
              new PulsarPublishError(tooLarge ? `${options.what}: the frame of ${sent.bytes} bytes is over the broker's WebSocket frame limit of ${limit.bytes}` : error.message, {
                sent: true,
                tooLarge,
                cause: error,
              }),
            );
          }
          waiting.clear();
        },
      },
      signal,
    );
    return new PulsarProducer(socket, waiting, limit, options.what);
  }

  get isOpen(): boolean {
    return this.#socket.isOpen;
  }

  /**
   * Publishes one message and resolves with its id once the broker acknowledged it (persisted).
   * Rejects with a PulsarPublishError: refused (receipt), too large, the connection ended, no receipt
   * in time (then the connection is closed: it is broken), or the signal fired (the message may still
   * land). A signal that fired with a TimeoutError (`AbortSignal.timeout`) is a receipt that did not
   * come in time as well: the connection is closed, so the next send does not reuse a broken one.
   */
  send(message: OutgoingMessage, signal?: AbortSignal): Promise<PulsarMessageId> {
    const context = String(++this.#context);
    const frame = {
      ...(message.key === undefined ? {} : { key: message.key }),
      ...(message.properties === undefined ? {} : { properties: message.properties }),
      ...(message.eventTime === undefined ? {} : { eventTime: new Date(message.eventTime).toISOString() }),
      context,
      payload: message.payload.toString('base64'),
    };
    // The payload is base64: one byte per character, nothing to escape.
    const bytes = Buffer.byteLength(JSON.stringify({ ...frame, payload: '' })) + frame.payload.length;
    if (bytes > this.#limit.bytes)
      return Promise.reject(new PulsarPublishError(`${this.#what}: a frame of ${bytes} bytes is over the broker's WebSocket frame limit of ${this.#limit.bytes}`, { sent: false, tooLarge: true }));
    if (signal?.aborted === true) return Promise.reject(new PulsarPublishError(`${this.#what}: aborted before sending`, { sent: false, cause: signal.reason }));
    if (!this.#socket.isOpen) return Promise.reject(new PulsarPublishError(`${this.#what}: the connection is closed`, { sent: false }));
    return new Promise<PulsarMessageId>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        this.#waiting.delete(context);
        finish();
        const timedOut = signal?.reason instanceof DOMException && signal.reason.name === 'TimeoutError';
        reject(
          new PulsarPublishError(
            `${this.#what}: ${timedOut ? 'no receipt in time' : 'aborted while waiting for the receipt'} (the message may still land)${timedOut ? '; the connection is closed' : ''}`,
            {
              sent: true,
              cause: signal?.reason,
            },
          ),
        );
        // No receipt in time: the connection is taken as broken (half-open), and closed.
        if (timedOut) void this.#socket.close(4000, 'no receipt');
      };
      const timer = setTimeout(() => {
        this.#waiting.delete(context);
        finish();
        reject(new PulsarPublishError(`${this.#what}: no receipt within ${RECEIPT_TIMEOUT_MS} ms (the message may still land); the connection is closed`, { sent: true }));
        void this.#socket.close(4000, 'no receipt');
      }, RECEIPT_TIMEOUT_MS);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.set(context, {
        bytes,
        resolve: (id) => {
          finish();
          resolve(id);
        },
        reject: (error) => {
          finish();
          reject(error);
        },
      });
      try {
        this.#socket.send(frame);
      } catch (error) {
        this.#waiting.delete(context);
        finish();
        reject(new PulsarPublishError(`${this.#what}: the connection is closed`, { sent: false, cause: error }));
      }
    });
  }

  /**
   * Closes the producer; sends still waiting fail (they may have been published). On a half-open
   * connection this resolves after pulsar-socket.ts's close bound (5 s), the sends failing then, but
   * the TCP socket outlives it: Node's WebSocket has no forced close (docs/design/pulsar.md, "Bus adapters").
   */
  close(): Promise<void> {
    return this.#socket.close();
  }
}
