// Owns the process logger: pino, JSON lines, with redaction of anything that looks like a credential.
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'inserter' },
      redact: { paths: ['password', '*.password', '*.*.password', 'headers.authorization', 'token', '*.token'], censor: '[redacted]' },
    },
    destination ?? process.stderr,
  );
}
