// Owns one blocking HTTP GET, for the rare moment a record names a schema the decoder has not
// loaded and the caller did not `prepare` it (the decode contract is synchronous): a worker thread
// does the fetch while this thread waits on a shared flag (Atomics.wait), bounded by the timeout.
// The event loop stands still meanwhile, once per new schema id; callers that can wait use the
// asynchronous path (Decoder.prepare) instead and never come here.
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';

export interface HttpReply {
  readonly status: number;
  readonly body: string;
}

/** The worker: one fetch per request, the reply posted on the request's port, then the flag raised. */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', async ({ url, headers, timeoutMs, maxBodyBytes, port, flag }) => {
  let reply;
  try {
    const response = await fetch(url, { headers, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
    const declared = Number(response.headers.get('content-length') ?? 0);
    if (declared > maxBodyBytes) {
      await response.body?.cancel().catch(() => undefined);
      reply = { error: 'answer larger than ' + maxBodyBytes + ' bytes' };
    } else {
      const body = await response.text();
      reply = body.length > maxBodyBytes ? { error: 'answer larger than ' + maxBodyBytes + ' bytes' } : { status: response.status, body };
    }
  } catch (error) {
    reply = { error: error && error.name === 'TimeoutError' ? 'no answer within ' + timeoutMs + ' ms' : String((error && error.cause && error.cause.code) || (error && error.message) || error) };
  }
  port.postMessage(reply);
  port.close();
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
`;

let worker: Worker | undefined;

function theWorker(): Worker {
  if (worker === undefined) {
    worker = new Worker(WORKER_SOURCE, { eval: true });
    // Never what keeps the process alive.
    worker.unref();
    worker.on('error', () => {
      worker = undefined;
    });
  }
  return worker;
}

/** GETs `url`; throws an Error naming the network failure or the timeout (never the headers). */
export function getSync(url: string, headers: Readonly<Record<string, string>>, timeoutMs: number, maxBodyBytes: number): HttpReply {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  try {
    theWorker().postMessage({ url, headers, timeoutMs, maxBodyBytes, port: port2, flag }, [port2]);
    // The worker's own timeout answers first; the margin covers starting the worker.
    const waited = Atomics.wait(flag, 0, 0, timeoutMs + 5_000);
    const message = receiveMessageOnPort(port1)?.message as { status?: number; body?: string; error?: string } | undefined;
    if (waited === 'timed-out' || message === undefined) throw new Error(`no answer within ${timeoutMs} ms`);
    if (message.error !== undefined) throw new Error(message.error);
    return { status: message.status ?? 0, body: message.body ?? '' };
  } finally {
    port1.close();
  }
}
