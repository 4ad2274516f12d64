// The one way tests get a real Apache Pulsar broker, and talk to it without the adapter under test.
//
//   const broker = await startPulsar();             // own standalone broker, own ports, fresh temp dir
//   await createPartitionedTopic(broker.url, 'public', 'default', topic, 2);
//   await produce(broker.url, 'public', 'default', `${topic}-partition-0`, [{ payload, key, properties }]);
//   await subscriptionBacklog(broker.url, 'public', 'default', `${topic}-partition-0`, 'sub');
//   await broker.stop();                            // stops it and removes the temp dir
//
// Brokers are started by scripts/pulsar.sh (a JVM in the background, detached). Every broker started
// here is stopped by stop(), and, as a safety net, synchronously when the process exits and by the
// script's watchdog (--owner-pid) if the process dies without running exit handlers (see
// service-script.ts).
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ServiceScript } from './service-script.ts';

export { REPO_ROOT } from './service-script.ts';

const script = new ServiceScript({ script: 'pulsar.sh', timeoutMs: 600_000, exitStopTimeoutMs: 30_000, keepDirEnv: 'KEEP_PULSAR_DIR' });
export const PULSAR_SCRIPT = script.path;

export interface PulsarBroker {
  /** http://127.0.0.1:WEBPORT: the admin REST API and, as ws://, the WebSocket API. */
  readonly url: string;
  readonly dir: string;
  /** Stops the broker (idempotent) and removes its temp dir (KEEP_PULSAR_DIR=1 keeps it). */
  stop(): Promise<void>;
}

export async function startPulsar(): Promise<PulsarBroker> {
  const dir = await script.makeTempDir('inserter-pulsar-');
  let url: string;
  try {
    url = await script.start(dir, ['--owner-pid', String(process.pid)], /^http:\/\/127\.0\.0\.1:\d+$/);
  } catch (error) {
    await script.discard(dir);
    throw error;
  }
  let stopped = false;
  return {
    url,
    dir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await script.stop(dir);
      await script.removeTempDir(dir);
    },
  };
}

export function uniqueTopic(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

async function admin(url: string, method: string, path: string, body?: unknown): Promise<Response> {
  const response = await fetch(`${url}/admin/v2/${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${await response.text()}`);
  return response;
}

export async function createPartitionedTopic(url: string, tenant: string, namespace: string, topic: string, partitions: number): Promise<void> {
  await admin(url, 'PUT', `persistent/${tenant}/${namespace}/${topic}/partitions`, partitions);
}

export interface ProducedMessage {
  readonly payload: Buffer | string;
  readonly key?: string;
  readonly properties?: Record<string, string>;
}

/** Publishes messages to one topic (a partition: `<topic>-partition-<n>`) and waits for every receipt; returns their message ids. */
export async function produce(url: string, tenant: string, namespace: string, topic: string, messages: readonly ProducedMessage[]): Promise<string[]> {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/ws/v2/producer/persistent/${tenant}/${namespace}/${topic}`);
  await new Promise<void>((resolvePromise, reject) => {
    socket.addEventListener('open', () => resolvePromise(), { once: true });
    socket.addEventListener('error', () => reject(new Error(`producer of ${topic} did not open`)), { once: true });
  });
  const ids: string[] = new Array<string>(messages.length);
  let received = 0;
  const done = new Promise<void>((resolvePromise, reject) => {
    socket.addEventListener('message', (event) => {
      const ack = JSON.parse(String(event.data)) as { result: string; messageId?: string; context: string; errorMsg?: string };
      if (ack.result !== 'ok' || ack.messageId === undefined) {
        reject(new Error(`publish to ${topic} refused: ${ack.result} ${ack.errorMsg ?? ''}`));
        return;
      }
      ids[Number(ack.context)] = ack.messageId;
      if (++received === messages.length) resolvePromise();
    });
    socket.addEventListener('close', () => reject(new Error(`producer of ${topic} closed after ${received} receipts`)), { once: true });
  });
  messages.forEach((m, i) => {
    const payload = typeof m.payload === 'string' ? Buffer.from(m.payload) : m.payload;
    socket.send(
      JSON.stringify({ payload: payload.toString('base64'), context: String(i), ...(m.key === undefined ? {} : { key: m.key }), ...(m.properties === undefined ? {} : { properties: m.properties }) }),
    );
  });
  try {
    if (messages.length > 0) await done;
  } finally {
    socket.close();
  }
  return ids;
}

interface SubscriptionStats {
  msgBacklog: number;
  consumers: Array<{ consumerName?: string }>;
}

/** The subscription's stats on one (partition) topic; undefined when the subscription does not exist. */
export async function subscriptionStats(url: string, tenant: string, namespace: string, topic: string, subscription: string): Promise<SubscriptionStats | undefined> {
  const stats = (await (await admin(url, 'GET', `persistent/${tenant}/${namespace}/${topic}/stats`)).json()) as { subscriptions?: Record<string, SubscriptionStats> };
  return stats.subscriptions?.[subscription];
}

/** Waits until `check` returns true (polling), or fails after `timeoutMs` with `what`. */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}
