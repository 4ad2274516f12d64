// Review 2026-12-07f: run by fake.test.ts in a child process (an uncaught exception ends it, and must
// not end the test runner). A fake broker sends one frame the adapter cannot take — `consumer`: the
// JSON text `null` to a PulsarSource's consumer; `receipt`: a ledger-write receipt whose messageId is
// not a MessageIdData — and the process prints "survived" if it is still running 500 ms later.
import { setTimeout as sleep } from 'node:timers/promises';
import type { LedgerJson } from '../../../src/ack/ledger.ts';
import { encodeMessageId } from '../../../src/source/pulsar-message-id.ts';
import { PulsarLedgerStore } from '../../../src/source/pulsar-ledger-store.ts';
import { PulsarSource } from '../../../src/source/pulsar-source.ts';
import { startFakePulsar } from './fake-pulsar.ts';

const mode = process.argv[2];
const fake = await startFakePulsar();
const stop = new AbortController();
if (mode === 'consumer') {
  const source = new PulsarSource({ url: fake.url, tenant: 'public', namespace: 'default', subscription: 'sub', topics: ['t'] });
  const running = source.run({ onRecord: () => undefined, onAssigned: () => undefined, onRevoked: () => undefined, onReset: () => undefined }, stop.signal);
  const consumer = await fake.next('consumer');
  consumer.sendText('null');
  await sleep(500);
  process.stdout.write('survived\n');
  stop.abort();
  await running;
  await source.close();
} else {
  let entry = 0n;
  let bad = false;
  fake.admin = (request) => {
    if (request.path.includes('/examinemessage')) return { status: 404 };
    if (request.path.endsWith('/internalStats')) return { status: 200, body: { ledgers: [{ ledgerId: 7, entries: 0 }] } };
    if (request.path.endsWith('/retention') && request.method === 'GET') return { status: 404 };
    return { status: 204 };
  };
  fake.onConnection = (connection) => {
    connection.onFrame = (frame) => {
      const context = (frame as { context?: string }).context;
      if (context === undefined) return;
      connection.send({ result: 'ok', messageId: bad ? '////' : encodeMessageId({ ledgerId: 7n, entryId: entry++, partition: -1, batchIndex: -1 }), context });
    };
  };
  const store = new PulsarLedgerStore({ url: fake.url, tenant: 'public', namespace: 'default', subscription: 'sub' });
  await store.load('t', 0, AbortSignal.timeout(5_000));
  bad = true;
  const ledger: LedgerJson = { v: 2, resolvedBelow: '1', intents: [] };
  void store.save('t', 0, ledger, stop.signal).catch(() => undefined);
  await sleep(500);
  process.stdout.write('survived\n');
  stop.abort();
  await store.close();
}
await fake.close();
