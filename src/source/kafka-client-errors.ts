// Owns the 'error' events of @platformatic/kafka clients. A client emits one when a connection
// drops (a broker restart, a shutdown racing a fetch); the operation that needed the connection
// fails and is retried or reported by its caller, so the event itself only needs a listener — an
// EventEmitter 'error' without one would crash the process.
import type { EventEmitter } from 'node:events';

export function handleClientErrors(client: Pick<EventEmitter, 'on'>, report?: (error: unknown) => void): void {
  client.on('error', (error: unknown) => report?.(error));
}
