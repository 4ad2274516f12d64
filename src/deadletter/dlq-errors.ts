// Owns the errors of the `inserter dlq` commands: bad arguments (exit 2) and a dead-letter, replay
// ledger or destination operation that could not be done (exit 3). Stable codes, never secrets.
import { InserterError, type InserterErrorOptions } from '../errors/inserter-error.ts';

/** A flag is missing, malformed or contradicts another. */
export class DlqUsageError extends InserterError {
  constructor(message: string, options: InserterErrorOptions = {}) {
    super('INSERTER_DLQ_USAGE', message, { ...options, retryable: false });
    this.name = 'DlqUsageError';
  }
}

/** Kafka (a dead-letter topic, the replay ledger, an original topic) could not be read or written. */
export class DlqKafkaError extends InserterError {
  constructor(message: string, options: InserterErrorOptions = {}) {
    super('INSERTER_DLQ_KAFKA', message, { ...options, retryable: true });
    this.name = 'DlqKafkaError';
  }
}

/** Another replay took over the replay ledger (its transactional producer fenced this one). */
export class DlqFencedError extends InserterError {
  constructor(options: InserterErrorOptions = {}) {
    super('INSERTER_DLQ_FENCED', 'another `inserter dlq replay` of this group started and fenced this one; nothing more was sent', { ...options, retryable: false });
    this.name = 'DlqFencedError';
  }
}
