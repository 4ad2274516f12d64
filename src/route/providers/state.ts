// Owns the snapshot in force for a provider that reloads: swaps in a new snapshot only when its
// content really changed, logs what changed (ids, never settings or passwords) and tells listeners,
// each isolated from the others' failures.
import type { Logger } from '../../telemetry/logger.ts';
import { diffSnapshots, DestinationsError, type DestinationSnapshot } from '../provider.ts';
import type { ParsedDocument } from './document.ts';

export class SnapshotState {
  readonly #logger: Logger;
  readonly #listeners = new Set<(snapshot: DestinationSnapshot) => void>();
  #current: DestinationSnapshot | undefined;
  #fingerprint = '';

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  get current(): DestinationSnapshot | undefined {
    return this.#current;
  }

  get(): DestinationSnapshot {
    if (this.#current === undefined) throw new DestinationsError('read', 'no destinations snapshot yet: start() has not completed');
    return this.#current;
  }

  /** Whether `next` has the content of the snapshot in force (nothing to check or apply). */
  isCurrent(next: Pick<ParsedDocument, 'fingerprint'>): boolean {
    return this.#current !== undefined && next.fingerprint === this.#fingerprint;
  }

  /** Applies `next` if its content differs from the snapshot in force; returns whether it did. */
  offer(next: ParsedDocument, source: string): boolean {
    const previous = this.#current;
    if (previous !== undefined && next.fingerprint === this.#fingerprint) return false;
    this.#current = next.snapshot;
    this.#fingerprint = next.fingerprint;
    const { version, destinations, teams } = next.snapshot;
    if (previous === undefined) {
      this.#logger.info({ source, version, destinations: [...destinations.keys()], teams: teams.size }, 'destinations loaded');
      return true;
    }
    const diff = diffSnapshots(previous, next.snapshot);
    if (version === previous.version) this.#logger.warn({ source, version }, 'destinations content changed without a new version');
    this.#logger.info({ source, from: previous.version, version, ...diff, teams: teams.size }, 'destinations changed');
    for (const listener of this.#listeners) {
      try {
        listener(next.snapshot);
      } catch (error) {
        this.#logger.error({ err: error, source }, 'destinations change listener failed');
      }
    }
    return true;
  }

  onChange(listener: (snapshot: DestinationSnapshot) => void): () => void {
    const entry = (snapshot: DestinationSnapshot): void => listener(snapshot);
    this.#listeners.add(entry);
    return () => void this.#listeners.delete(entry);
  }
}
