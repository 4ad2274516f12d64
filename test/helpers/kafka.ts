// The one way tests get a real Kafka broker (see docs/local-stack.md, "## Kafka").
//
//   const broker = await startKafka();            // own broker, own ports, fresh temp dir
//   await broker.restart();                        // same ports, same data
//   await broker.stop();                           // stops it and removes the temp dir
//
//   const bootstrap = await sharedKafka();         // $KAFKA_BOOTSTRAP, or one broker per process
//
//   const secure = await startKafka({ saslSsl: true });   // plus a SASL_SSL listener (SCRAM-SHA-512/256):
//   secure.saslSsl.bootstrap, .caFile, .username, .password; mTLS: .sslBootstrap, .clientCertFile, .clientKeyFile
//
// Brokers are started by scripts/kafka.sh (a JVM in the background, detached). Every broker
// started here is stopped by stop(), and, as a safety net, synchronously when the process exits
// and by the script's watchdog (--owner-pid) if the process dies without running exit handlers
// (see service-script.ts).
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Admin } from '@platformatic/kafka';
import { ServiceScript } from './service-script.ts';

export { REPO_ROOT } from './service-script.ts';

const script = new ServiceScript({ script: 'kafka.sh', timeoutMs: 180_000, exitStopTimeoutMs: 30_000, keepDirEnv: 'KEEP_KAFKA_DIR' });
export const KAFKA_SCRIPT = script.path;

export interface KafkaBroker {
  /** "127.0.0.1:PORT" */
  bootstrap: string;
  /** State dir: server.properties, data/, logs/server.log, kafka.pid, bootstrap. */
  dir: string;
  /** Stops the broker (idempotent). Removes dir if startKafka created it (set KEEP_KAFKA_DIR=1 to keep it). */
  stop(): Promise<void>;
  /** Stops and starts the same broker: same ports, same data dir, same cluster id. */
  restart(): Promise<void>;
  /** With `saslSsl: true`: the SASL_SSL listener and what a client needs to use it. */
  saslSsl?: SaslSslListener;
}

export interface SaslSslListener {
  /** "127.0.0.1:PORT" of the SASL_SSL listener. */
  bootstrap: string;
  /** PEM of the CA that signed the broker's certificate (for 127.0.0.1 and localhost). */
  caFile: string;
  /** A SCRAM-SHA-512 and SCRAM-SHA-256 user. */
  username: string;
  password: string;
  passwordFile: string;
  /** "127.0.0.1:PORT" of the SSL listener that requires a client certificate (mTLS). */
  sslBootstrap: string;
  /** A client certificate and its key, signed by the CA in caFile. */
  clientCertFile: string;
  clientKeyFile: string;
}

export interface StartKafkaOptions {
  /** State dir to use; default a fresh temp dir (removed again by stop()). */
  dir?: string;
  /** Adds a SASL_SSL listener and an mTLS (SSL) listener (scripts/kafka.sh --sasl-ssl); PLAINTEXT stays. */
  saslSsl?: boolean;
}

function startIn(dir: string, saslSsl = false): Promise<string> {
  return script.start(dir, ['--owner-pid', String(process.pid), ...(saslSsl ? ['--sasl-ssl'] : [])], /^127\.0\.0\.1:\d+$/);
}

/** Starts a broker of its own (free ports, fresh temp dir unless opts.dir is given). */
export async function startKafka(opts: StartKafkaOptions = {}): Promise<KafkaBroker> {
  const dir = opts.dir ?? (await script.makeTempDir('inserter-kafka-'));
  let bootstrap: string;
  try {
    bootstrap = await startIn(dir, opts.saslSsl === true);
  } catch (error) {
    await script.removeTempDir(dir);
    throw error;
  }
  const saslSsl = opts.saslSsl === true ? await readSaslSsl(dir) : undefined;
  let stopped = false;
  const broker: KafkaBroker = {
    bootstrap,
    dir,
    ...(saslSsl === undefined ? {} : { saslSsl }),
    async stop() {
      if (stopped) return;
      stopped = true;
      await script.stop(dir);
      await script.removeTempDir(dir);
    },
    async restart() {
      if (stopped) throw new Error('restart() after stop()');
      await script.stop(dir);
      const again = await startIn(dir);
      if (again !== broker.bootstrap) throw new Error(`broker came back on ${again}, expected ${broker.bootstrap}`);
    },
  };
  return broker;
}

async function readSaslSsl(dir: string): Promise<SaslSslListener> {
  const env = new Map(
    (await readFile(join(dir, 'sasl-ssl.env'), 'utf8'))
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
  );
  const field = (name: string): string => {
    const value = env.get(name);
    if (value === undefined) throw new Error(`${dir}/sasl-ssl.env has no ${name}`);
    return value;
  };
  const passwordFile = field('SASL_PASSWORD_FILE');
  return {
    bootstrap: field('SASL_SSL_BOOTSTRAP'),
    caFile: field('CA_FILE'),
    username: field('SASL_USER'),
    password: (await readFile(passwordFile, 'utf8')).trim(),
    passwordFile,
    sslBootstrap: field('SSL_BOOTSTRAP'),
    clientCertFile: field('CLIENT_CERT_FILE'),
    clientKeyFile: field('CLIENT_KEY_FILE'),
  };
}

let shared: Promise<KafkaBroker> | undefined;

/**
 * Bootstrap address of a broker shared by the whole process: $KAFKA_BOOTSTRAP when set (the test
 * runner starts one broker for the whole run), otherwise a broker started on first use and stopped
 * at process exit (or earlier by stopSharedKafka(), e.g. from a test `after`).
 * Never restart or stop a shared broker from a test: use startKafka() for that.
 */
export async function sharedKafka(): Promise<string> {
  const fromEnv = process.env.KAFKA_BOOTSTRAP;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  shared ??= startKafka();
  shared.catch(() => {
    shared = undefined;
  });
  return (await shared).bootstrap;
}

/** Stops the broker sharedKafka() started (no-op when it used $KAFKA_BOOTSTRAP or started none). */
export async function stopSharedKafka(): Promise<void> {
  const current = shared;
  shared = undefined;
  if (current !== undefined) await (await current).stop();
}

/** A topic name nobody else uses: `${prefix}-<time>-<random>` with only legal characters. */
export function uniqueTopic(prefix: string): string {
  const clean = prefix.replace(/[^a-zA-Z0-9._-]/g, '-').slice(0, 180);
  return `${clean}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/**
 * Creates a topic (replication factor 1) and waits until every partition has a leader in the
 * broker's metadata, so producing right away works.
 */
export async function createTopic(bootstrap: string, name: string, partitions: number, config: Record<string, string> = {}): Promise<void> {
  const admin = new Admin({ clientId: 'inserter-test-admin', bootstrapBrokers: [bootstrap] });
  try {
    await admin.createTopics({
      topics: [name],
      partitions,
      replicas: 1,
      configs: Object.entries(config).map(([configName, value]) => ({ name: configName, value })),
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const metadata = await admin.metadata({ topics: [name], forceUpdate: true }).catch(() => undefined);
      const topic = metadata?.topics.get(name);
      if (topic !== undefined && topic.partitionsCount === partitions && topic.partitions.every((p) => p.leader >= 0)) {
        return;
      }
      if (Date.now() > deadline) throw new Error(`topic ${name} has no leaders after 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await admin.close();
  }
}
