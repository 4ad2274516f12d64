// The events every drain reads: the topic preloaded once per benchmark with dev/posthog/produce.ts
// (JSON, or Protobuf in the Confluent wire format with --format protobuf), and for the engine under
// --format protobuf a JSON copy of the same events on a topic of its own.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { Producer, murmur2 } from '@platformatic/kafka';
import { generate } from '../../dev/posthog/generator.ts';
import { createTopic, REPO_ROOT } from '../../test/helpers/kafka.ts';
import { fmtInt } from '../lib/stats.ts';
import { argv, EVENTS, PARTITIONS, TOPIC } from './options.ts';
import { errorText, progress } from './output.ts';
import { registry } from './stack.ts';

export interface PreloadResult {
  messages: number;
  bytes: number;
  seconds: number;
  messagesPerSecond: number;
}

/** Preloads --events generated events into TOPIC (P partitions, kept forever) with dev/posthog/produce.ts. */
export async function preload(bootstrap: string): Promise<PreloadResult> {
  await createTopic(bootstrap, TOPIC, PARTITIONS, { 'retention.ms': '-1' });
  const child = spawn(
    join(REPO_ROOT, 'node_modules', '.bin', 'node'),
    [
      'dev/posthog/produce.ts',
      '--bootstrap',
      bootstrap,
      '--topic',
      TOPIC,
      '--count',
      String(EVENTS),
      '--partitions',
      String(PARTITIONS),
      '--teams',
      '1000',
      '--inflight',
      '8',
      '--compression',
      argv['topic-compression'],
      ...(registry === undefined ? [] : ['--format', 'protobuf', '--registry', registry.url]),
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderrTail = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString()).slice(-4000);
    const last = stderrTail.trimEnd().split('\n').at(-1) ?? '';
    if (last.startsWith('produce:')) progress(`preload: ${last.slice('produce: '.length)}`);
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  const summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { ok?: boolean; messages?: number; bytes?: number; seconds?: number; messagesPerSecond?: number; error?: string };
  if (code !== 0 || summary.ok !== true || summary.messages !== EVENTS) {
    throw new Error(`preload failed (exit ${code}): ${summary.error ?? stderrTail.slice(-1000)}`);
  }
  return { messages: summary.messages, bytes: summary.bytes ?? 0, seconds: summary.seconds ?? 0, messagesPerSecond: summary.messagesPerSecond ?? 0 };
}

/**
 * The engine's JSON copy of the preload (--format protobuf): the same generated events as
 * dev/posthog/produce.ts makes with its defaults (seed 1, 1,000 teams), keyed partitions by murmur2
 * as it assigns them, batches of ≤ 500 messages and ≤ 900 KB, 8 in flight; produced from here
 * because produce.ts writes each message to its generator topic's name.
 */
export async function preloadJsonCopy(bootstrap: string, topic: string): Promise<PreloadResult> {
  await createTopic(bootstrap, topic, PARTITIONS, { 'retention.ms': '-1' });
  const producer = new Producer({ clientId: 'bench-preload', bootstrapBrokers: [bootstrap], acks: -1, compression: argv['topic-compression'] as 'lz4', retries: 10, retryDelay: 250 });
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  let sent = 0;
  let bytes = 0;
  let roundRobin = 0;
  const start = performance.now();
  const send = async (messages: { topic: string; key?: Buffer; value: Buffer; partition: number }[], size: number): Promise<void> => {
    while (inflight.size >= 8) await Promise.race(inflight);
    const p: Promise<void> = producer
      .send({ messages })
      .then(
        () => {
          sent += messages.length;
          bytes += size;
          progress(`preload (JSON copy for the engine): ${fmtInt(sent)}/${fmtInt(EVENTS)}`);
        },
        (error: unknown) => void (failure ??= error),
      )
      .finally(() => inflight.delete(p));
    inflight.add(p);
  };
  try {
    let batch: { topic: string; key?: Buffer; value: Buffer; partition: number }[] = [];
    let size = 0;
    for (const m of generate(TOPIC, { seed: 1, count: EVENTS, teams: 1000 })) {
      if (failure !== undefined) break;
      if (batch.length > 0 && size + m.value.length > 900 * 1024) {
        await send(batch, size);
        batch = [];
        size = 0;
      }
      const value = m.value; // a view of a generator slab, never overwritten
      const partition = m.key === null ? roundRobin++ % PARTITIONS : (murmur2(m.key) >>> 0) % PARTITIONS;
      batch.push({ topic, value, partition, ...(m.key === null ? {} : { key: m.key }) });
      size += value.length + (m.key?.length ?? 0);
      if (batch.length >= 500) {
        await send(batch, size);
        batch = [];
        size = 0;
      }
    }
    if (batch.length > 0 && failure === undefined) await send(batch, size);
    await Promise.all(inflight);
  } finally {
    await producer.close();
  }
  if (failure !== undefined || sent !== EVENTS) throw new Error(`JSON copy for the engine: ${failure === undefined ? `${sent} of ${EVENTS} sent` : errorText(failure)}`);
  const seconds = (performance.now() - start) / 1000;
  return { messages: sent, bytes, seconds, messagesPerSecond: sent / seconds };
}
