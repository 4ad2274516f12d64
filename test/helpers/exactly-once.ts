// Test helper: the exactly-once check of the review tests over a TokenWarehouse and held dead letters
// (rows `u0`…`u{count-1}`): no row twice, none both stored and dead-lettered unless its letter is
// marked may-have-landed (docs/design/delivery.md §11), none lost.
import assert from 'node:assert/strict';
import type { HeldDeadLetters, TokenWarehouse } from './pipeline-world.ts';

export type Letter = HeldDeadLetters['written'][number];

export const uuids = (n: number): string[] => Array.from({ length: n }, (_, i) => `u${i}`);

/** Rows twice, rows both stored and dead-lettered unmarked, rows neither stored nor dead-lettered. */
export function violations(w: TokenWarehouse, letters: readonly Letter[], count: number): { twice: string[]; both: string[]; lost: string[] } {
  const landed = w.uuids();
  const dead = new Set(letters.map((d) => `u${d.offset}`));
  const unmarked = new Set(letters.filter((d) => d.reason.mayHaveLanded !== true).map((d) => `u${d.offset}`));
  return {
    twice: landed.filter((u, i) => landed.indexOf(u) !== i),
    both: [...unmarked].filter((u) => landed.includes(u)),
    lost: uuids(count).filter((u) => !landed.includes(u) && !dead.has(u)),
  };
}

export function expectExactlyOnce(w: TokenWarehouse, letters: readonly Letter[], count: number): void {
  assert.deepEqual(violations(w, letters, count), { twice: [], both: [], lost: [] }, `inserts: ${w.inserts.join(' ')}`);
}

/** Each dead-lettered offset with its may-have-landed mark. */
export const marks = (letters: readonly Letter[]): Array<[bigint, boolean | undefined]> => [...new Map(letters.map((d) => [d.offset, d.reason.mayHaveLanded])).entries()];
