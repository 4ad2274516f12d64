// Readiness probe used by scripts/kafka.sh start: exits 0 once the broker at argv[2] answers a
// real Metadata request that lists at least one broker, 1 otherwise. One attempt, short timeout.
import { Admin } from '@platformatic/kafka';

const bootstrap = process.argv[2];
if (bootstrap === undefined) {
  console.error('usage: probe.ts HOST:PORT');
  process.exit(2);
}

const admin = new Admin({
  clientId: 'inserter-kafka-probe',
  bootstrapBrokers: [bootstrap],
  retries: 0,
  timeout: 3000,
  connectTimeout: 2000,
});
let ok = false;
try {
  const metadata = await admin.metadata({ topics: [], forceUpdate: true });
  ok = metadata.brokers.size > 0;
  if (!ok) console.error('metadata lists no brokers yet');
} catch (error) {
  console.error(`probe failed: ${String(error)}`);
} finally {
  await admin.close().catch(() => undefined);
}
process.exit(ok ? 0 : 1);
