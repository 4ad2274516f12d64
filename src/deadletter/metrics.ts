// Owns the dead-letter writer's Prometheus metrics, registered on the registry it is given, and the
// hooks that feed them (deadletter/writer.ts). Labels are bounded: the dead-letter topic, a code.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DeadLetterHooks } from './writer.ts';

export function deadLetterMetrics(registry: Registry): DeadLetterHooks {
  const registers = [registry];
  const failures = new Counter({
    name: 'inserter_dead_letter_write_failures_total',
    help: 'Dead-letter write attempts that failed, by code (INSERTER_DLQ_TOPIC_MISSING, _WRITE_TIMEOUT, _REFUSED, _FAILED); each is retried',
    labelNames: ['topic', 'code'],
    registers,
  });
  const waiting = new Gauge({
    name: 'inserter_dead_letters_waiting',
    help: 'Dead letters whose write failed at least once and is being retried: their partitions commit no further',
    labelNames: ['topic'],
    registers,
  });
  const keyHeadersOmitted = new Counter({
    name: 'inserter_dead_letter_key_headers_omitted_total',
    help: 'Dead letters too large even without their value, written without their key and original headers too (left in the source topic)',
    labelNames: ['topic'],
    registers,
  });
  return {
    onFailure: (topic, code) => failures.inc({ topic, code }),
    onStuck: (topic, delta) => waiting.inc({ topic }, delta),
    onOmitted: (topic, what) => {
      if (what === 'key_headers') keyHeadersOmitted.inc({ topic });
    },
  };
}
