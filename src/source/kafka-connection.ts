// Owns how every Kafka client connects: the TLS and SASL options built once from `config.kafka`
// (kafkaConnectionOptions), handed to each @platformatic/kafka client together with the brokers
// (kafkaClientOptions); a one-shot check at start that tells a refused login or an untrusted
// certificate apart from a broker that is merely unreachable (checkKafkaConnection,
// kafkaSecurityFailure, kafkaConnectionHint); and the words `check-config` and the start-up log use
// for the security mode (describeKafkaSecurity). Secrets stay inside functions the client calls when
// it authenticates: no options object holds a password or token in clear.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Admin, AuthenticationError, type SASLOptions } from '@platformatic/kafka';
import type { KafkaBusConfig, KafkaConfig } from '../config/load.ts';
import { InserterError, errorMessage } from '../errors/inserter-error.ts';

/** TLS and SASL as @platformatic/kafka's clients take them; empty for a plaintext, unauthenticated broker. */
export interface KafkaConnection {
  readonly tls?: TlsOptions;
  readonly tlsServerName?: string;
  readonly sasl?: SASLOptions;
}

/** What a Kafka client needs to reach the cluster. */
export interface KafkaBrokers {
  readonly brokers: readonly string[];
  /** TLS and SASL; none: plaintext (tests, a local broker). */
  readonly connection?: KafkaConnection;
}

/** The security part of `config.kafka`, with relative TLS paths resolved from `baseDir`. */
export function kafkaConnectionOptions(kafka: KafkaConfig, baseDir: string): KafkaConnection {
  const out: { tls?: TlsOptions; tlsServerName?: string; sasl?: SASLOptions } = {};
  const tls = kafka.tls;
  if (tls !== false) {
    const options: TlsOptions = {};
    if (tls !== true) {
      const read = (file: string): Buffer => readFileSync(resolve(baseDir, file));
      if (tls.caFile !== undefined) options.ca = read(tls.caFile);
      if (tls.certFile !== undefined) options.cert = read(tls.certFile);
      if (tls.keyFile !== undefined) options.key = read(tls.keyFile);
      if (tls.serverName !== undefined) out.tlsServerName = tls.serverName;
    }
    out.tls = options;
  }
  const sasl = kafka.sasl;
  // Functions, so that no options object a client might log holds a password or token in clear.
  if (sasl?.mechanism === 'OAUTHBEARER') {
    const { token, tokenFile } = sasl;
    out.sasl = {
      mechanism: sasl.mechanism,
      // A token file is re-read at every (re)authentication: whatever refreshes it is picked up.
      token: () => (tokenFile === undefined ? token.reveal() : readFileSync(tokenFile, 'utf8').trim()),
      ...(sasl.extensions === undefined ? {} : { oauthBearerExtensions: { ...sasl.extensions } }),
    };
  } else if (sasl !== undefined) {
    const password = sasl.password;
    out.sasl = { mechanism: sasl.mechanism, username: sasl.username, password: () => password.reveal() };
  }
  return out;
}

const built = new WeakMap<KafkaBusConfig, KafkaConnection>();

/** The connection of a loaded configuration, built (and its TLS files read) once per configuration. */
export function kafkaConnectionFor(config: KafkaBusConfig): KafkaConnection {
  let connection = built.get(config);
  if (connection === undefined) {
    connection = kafkaConnectionOptions(config.kafka, config.baseDir);
    built.set(config, connection);
  }
  return connection;
}

/** The options every @platformatic/kafka client is built with: brokers, TLS, SASL. */
export function kafkaClientOptions(access: KafkaBrokers): { bootstrapBrokers: string[] } & KafkaConnection {
  return { bootstrapBrokers: [...access.brokers], ...access.connection };
}

/** One line for `check-config`: the security mode and what it uses, never a secret. */
export function describeKafkaSecurity(kafka: KafkaConfig): string {
  const tls = kafka.tls;
  const protocol = `${kafka.sasl === undefined ? '' : 'SASL_'}${tls === false ? 'PLAINTEXT' : 'SSL'}`;
  const parts = [protocol];
  const sasl = kafka.sasl;
  if (sasl?.mechanism === 'OAUTHBEARER') {
    parts.push(`OAUTHBEARER with ${sasl.tokenFile === undefined ? `a fixed token (${sasl.token.reveal() === '' ? 'empty' : 'set'})` : `the token in ${sasl.tokenFile}, re-read at each login`}`);
  } else if (sasl !== undefined) {
    parts.push(`${sasl.mechanism} as user ${sasl.username} (password ${sasl.password.reveal() === '' ? 'empty' : 'set'})`);
  }
  if (tls === true) parts.push('TLS trusting the system CAs');
  else if (tls !== false) {
    parts.push(`TLS trusting ${tls.caFile === undefined ? 'the system CAs' : `the CA in ${tls.caFile}`}`);
    if (tls.certFile !== undefined) parts.push(`client certificate ${tls.certFile} (mTLS)`);
    if (tls.serverName !== undefined) parts.push(`server name ${tls.serverName}`);
  }
  if (tls === false && kafka.sasl !== undefined) parts.push('WARNING: credentials and data travel unencrypted');
  if (tls === false && kafka.sasl === undefined) parts.push('unencrypted and unauthenticated: for a local broker only');
  return parts.join('; ');
}

/** Node's codes for a certificate the client does not trust or that does not match the broker. */
const untrustedCodes = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * The security failure behind a client error, as a sentence naming the cause and the setting to
 * fix; undefined for anything else (a broker down, a timeout: worth retrying).
 */
export function kafkaSecurityFailure(error: unknown, kafka?: Pick<KafkaConfig, 'sasl'>): InserterError | undefined {
  for (const cause of causes(error)) {
    if (cause instanceof AuthenticationError) {
      const sasl = kafka?.sasl;
      const who = sasl === undefined ? 'SASL' : sasl.mechanism === 'OAUTHBEARER' ? 'SASL OAUTHBEARER' : `SASL ${sasl.mechanism} as user ${sasl.username}`;
      const check = sasl?.mechanism === 'OAUTHBEARER' ? 'kafka.sasl.token (expired? issued for this cluster?)' : "kafka.sasl (username, password, mechanism) against the cluster's users";
      return new InserterError('INSERTER_KAFKA_AUTH', `Kafka refused the login (${who}): ${cause.message} Check ${check}.`, { cause: error });
    }
    // A login the client took for accepted but the broker did not (a rejected OAUTHBEARER token).
    if ((cause as { apiId?: unknown }).apiId === 'ILLEGAL_SASL_STATE') {
      return new InserterError(
        'INSERTER_KAFKA_AUTH',
        `Kafka refused the login (SASL${kafka?.sasl === undefined ? '' : ` ${kafka.sasl.mechanism}`}): the broker answered ILLEGAL_SASL_STATE after authentication. Check ${kafka?.sasl?.mechanism === 'OAUTHBEARER' ? 'kafka.sasl.token (expired? issued for this cluster?)' : 'kafka.sasl'}.`,
        { cause: error },
      );
    }
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && untrustedCodes.has(code)) {
      const fix =
        code === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? 'connect by the name the certificate carries, or set kafka.tls.serverName'
          : code.startsWith('CERT_')
            ? "renew the broker's certificate"
            : 'set kafka.tls.caFile to the CA that signed it';
      return new InserterError('INSERTER_KAFKA_TLS', `the Kafka broker's TLS certificate is not trusted (${code}: ${errorMessage(cause)}): ${fix}`, { cause: error });
    }
    if (cause instanceof Error && /TLS handshake failed/.test(cause.message)) {
      return new InserterError('INSERTER_KAFKA_TLS', `TLS handshake with the Kafka broker failed: is kafka.tls set for a listener that speaks plaintext? (${cause.message})`, { cause: error });
    }
  }
  return undefined;
}

/**
 * A guess, for the log, at why a broker keeps closing the connection: a listener that wants a client
 * certificate or a SASL login the configuration does not give, or TLS the listener does not speak.
 */
export function kafkaConnectionHint(error: unknown, kafka: Pick<KafkaConfig, 'sasl' | 'tls'>): string | undefined {
  if (![...causes(error)].some((e) => e instanceof Error && /Connection closed/i.test(e.message))) return undefined;
  const tls = kafka.tls;
  const missing = [
    ...(tls === false ? ['TLS (kafka.tls)'] : []),
    ...(tls === false || tls === true || tls.certFile === undefined ? ['a client certificate (kafka.tls.certFile, keyFile)'] : []),
    ...(kafka.sasl === undefined ? ['a SASL login (kafka.sasl)'] : []),
  ];
  return missing.length === 0 ? undefined : `the broker closed the connection: does this listener require ${missing.join(' or ')}?`;
}

/**
 * Connects once to the brokers as every client will: resolves when one answers; throws an
 * InserterError (INSERTER_KAFKA_AUTH / INSERTER_KAFKA_TLS) at once when the login or the certificate
 * is refused; retries an unreachable broker until `signal` aborts, telling `onRetry` each time.
 */
export async function checkKafkaConnection(
  access: KafkaBrokers & { readonly clientId: string },
  kafka: Pick<KafkaConfig, 'sasl' | 'tls'>,
  signal: AbortSignal,
  onRetry?: (error: unknown, attempt: number) => void,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const admin = new Admin({ clientId: `${access.clientId}-preflight`, ...kafkaClientOptions(access), retries: 0, connectTimeout: 10_000, timeout: 15_000 });
    try {
      await admin.metadata({ topics: [], forceUpdate: true });
      return;
    } catch (error) {
      const security = kafkaSecurityFailure(error, kafka);
      if (security !== undefined) throw security;
      if (signal.aborted) throw error;
      onRetry?.(error, attempt);
    } finally {
      await admin.close().catch(() => undefined);
    }
    await sleep(Math.min(10_000, 250 * 2 ** attempt), undefined, { signal }).catch(() => undefined);
  }
}

function* causes(error: unknown, depth = 0): Generator<unknown> {
  if (error === undefined || error === null || depth > 8) return;
  yield error;
  const nested = (error as { errors?: unknown }).errors;
  if (Array.isArray(nested)) for (const e of nested) yield* causes(e, depth + 1);
  yield* causes((error as { cause?: unknown }).cause, depth + 1);
}
