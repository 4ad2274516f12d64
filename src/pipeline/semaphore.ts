// Owns a counting semaphore whose waits take an AbortSignal: the insert slots of one destination.
import { AbortedError } from '../errors/inserter-error.ts';

export class Semaphore {
  #available: number;
  readonly #waiters: Array<() => void> = [];
  constructor(size: number) {
    this.#available = size;
  }
  async acquire(signal: AbortSignal): Promise<void> {
    if (this.#available > 0) {
      this.#available--;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(grant);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new AbortedError('waiting for an insert slot aborted'));
      };
      const grant = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(grant);
    });
  }
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#available++;
  }
}
