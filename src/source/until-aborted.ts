// Owns waiting on a bus client's call that takes no AbortSignal (the Kafka and Pulsar clients'):
// the caller stops waiting when its signal fires; the call itself goes on and settles by itself
// (the client answers or closes it), its outcome then nobody's.
import { AbortedError } from '../errors/inserter-error.ts';

/** `work`, or an AbortedError as soon as `signal` fires (`work` goes on; its failure is then nobody's). */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(new AbortedError(`${what}: aborted`, { cause: signal.reason }));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      work.catch(() => undefined);
      reject(new AbortedError(`${what}: aborted`, { cause: signal.reason }));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    void work.finally(() => signal.removeEventListener('abort', onAbort)).then(resolve, reject);
  });
}
