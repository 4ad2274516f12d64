// Owns one connection to the broker's WebSocket API (Node's built-in WebSocket): opening it with a
// deadline and the caller's signal, parsing its JSON frames (a frame its user cannot take closes the
// connection, never throws out of the event listener), a keepalive frame so an idle but live
// connection is not closed by the broker's session idle timeout (webSocketSessionIdleTimeoutMillis,
// 5 minutes by default), and closing it gracefully: a peer that never answers the close is taken as
// gone after a bound, and the socket reported closed then. A connection whose process stalls sends no
// keepalive: the broker ends its session after the idle timeout, and that is what hands its
// subscription and its ledger producer to the next owner. Reconnecting is the owner's decision
// (a new connection is a new ownership): `openWithRetry` retries with backoff until the signal fires.
import { errorMessage } from '../errors/inserter-error.ts';
import { retry, type BackoffPolicy } from '../sink/retry.ts';

const OPEN_TIMEOUT_MS = 15_000;
const CLOSE_TIMEOUT_MS = 5_000;
/** The close code when a frame could not be taken (a client may send only 1000 or 3000–4999). */
const BAD_FRAME_CODE = 4001;

/** The WebSocket could not be opened, or closed under its user. */
export class PulsarSocketError extends Error {
  readonly code = 'PULSAR_SOCKET';
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'PulsarSocketError';
  }
}

export interface PulsarSocketOptions {
  readonly url: string;
  readonly headers: Record<string, string>;
  /** What the socket is for, in errors ("consumer of t-partition-0"). */
  readonly what: string;
  /** Sent every `keepaliveMs` while open; it must have no effect on the broker but an answer. */
  readonly keepalive?: { readonly frame: unknown; readonly everyMs: number };
  readonly onFrame: (frame: unknown) => void;
  /** Once, when the socket closed for any reason after it opened. */
  readonly onClose: (error: PulsarSocketError) => void;
}

export class PulsarSocket {
  readonly #socket: WebSocket;
  readonly #options: PulsarSocketOptions;
  #keepalive: NodeJS.Timeout | undefined;
  readonly #closed: Promise<void>;
  #reportClosed: (error: PulsarSocketError) => void = () => undefined;
  /** onClose was called: nothing more is handed to the user. */
  #reported = false;
  #open = true;
  /** Why the adapter closed the socket itself (a frame it could not take); reported on close. */
  #failure: PulsarSocketError | undefined;

  private constructor(socket: WebSocket, options: PulsarSocketOptions) {
    this.#socket = socket;
    this.#options = options;
    this.#closed = new Promise((resolve) => {
      // Once: from the close event, or from close() when the peer never completes the handshake.
      this.#reportClosed = (error) => {
        if (this.#reported) return;
        this.#reported = true;
        this.#stop();
        resolve();
        options.onClose(this.#failure ?? error);
      };
    });
    socket.addEventListener('close', (event) => {
      this.#reportClosed(new PulsarSocketError(`${options.what}: connection closed (${event.code}${event.reason === '' ? '' : ` ${event.reason}`})`));
    });
    socket.addEventListener('message', (event) => {
      if (typeof event.data !== 'string' || this.#failure !== undefined || this.#reported) return;
      let frame: unknown;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return; // the API speaks JSON only
      }
      // A frame its user cannot take must not throw out of the event listener (an uncaught
      // exception ends the process): the connection is closed, and its user learns why on close.
      try {
        options.onFrame(frame);
      } catch (error) {
        this.#failure = new PulsarSocketError(`${options.what}: closed after a frame it cannot take: ${errorMessage(error)}`, error);
        void this.close(BAD_FRAME_CODE, 'unexpected frame');
      }
    });
    if (options.keepalive !== undefined) {
      const { frame, everyMs } = options.keepalive;
      const text = JSON.stringify(frame);
      this.#keepalive = setInterval(() => {
        if (this.#open && socket.readyState === WebSocket.OPEN) socket.send(text);
      }, everyMs);
      this.#keepalive.unref();
    }
  }

  /** Opens the socket; rejects when the broker refuses the upgrade, it takes too long, or the signal fires. */
  static open(options: PulsarSocketOptions, signal: AbortSignal): Promise<PulsarSocket> {
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(options.url, { headers: options.headers });
      const fail = (error: Error): void => {
        cleanup();
        if (socket.readyState === WebSocket.CONNECTING || socket.readyState === WebSocket.OPEN) socket.close();
        reject(error);
      };
      const onError = (): void => fail(new PulsarSocketError(`${options.what}: refused or unreachable (the broker does not say why over WebSocket)`));
      const onAbort = (): void => fail(signal.reason instanceof Error ? signal.reason : new PulsarSocketError(`${options.what}: aborted`));
      const timer = setTimeout(() => fail(new PulsarSocketError(`${options.what}: not open after ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS);
      const onOpen = (): void => {
        cleanup();
        resolve(new PulsarSocket(socket, options));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        socket.removeEventListener('open', onOpen);
        socket.removeEventListener('error', onError);
        socket.removeEventListener('close', onError);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      socket.addEventListener('open', onOpen);
      socket.addEventListener('error', onError);
      socket.addEventListener('close', onError);
    });
  }

  get isOpen(): boolean {
    return this.#open && this.#socket.readyState === WebSocket.OPEN;
  }

  /** Bytes queued in the socket and not yet written. */
  get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }

  send(frame: unknown): void {
    if (!this.isOpen) throw new PulsarSocketError(`${this.#options.what}: not open`);
    this.#socket.send(JSON.stringify(frame));
  }

  /**
   * Closes gracefully (idempotent); resolves once closed. A peer that does not answer the close
   * handshake within a bound is taken as gone: the socket is reported closed (onClose) then, so
   * nothing waiting on it waits for a broker that stalled or a connection that is half open.
   */
  async close(code = 1000, reason = 'closing'): Promise<void> {
    this.#stop();
    if (this.#socket.readyState === WebSocket.CONNECTING || this.#socket.readyState === WebSocket.OPEN) this.#socket.close(code, reason);
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#reportClosed(new PulsarSocketError(`${this.#options.what}: closed (the peer did not answer the close within ${CLOSE_TIMEOUT_MS} ms)`));
        resolve();
      }, CLOSE_TIMEOUT_MS);
    });
    await Promise.race([this.#closed, bound]).finally(() => clearTimeout(timer));
  }

  #stop(): void {
    this.#open = false;
    clearInterval(this.#keepalive);
    this.#keepalive = undefined;
  }
}

/**
 * Opens a socket, retrying with backoff until it opens or the signal fires (then rejects with an
 * AbortedError). `onFailure` hears about every failed attempt.
 */
export function openWithRetry(options: PulsarSocketOptions, policy: BackoffPolicy, signal: AbortSignal, onFailure?: (error: unknown, attempt: number) => void): Promise<PulsarSocket> {
  return retry(() => PulsarSocket.open(options, signal), policy, signal, {
    isRetryable: () => true,
    onRetry: (error, attempt) => onFailure?.(error, attempt),
  });
}
