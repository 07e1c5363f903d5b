/** Shared helpers of the fairseq-world tests: paths and the expected.json of each world. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Folder of the copied fixture worlds. */
export const WORLDS_DIR = join(import.meta.dirname, '.');
/** The worlds. */
export const WORLDS = ['lra-listops', 'lra-retrieval', 'lra-image', 'lm', 'translation'] as const;
/** A world name. */
export type World = (typeof WORLDS)[number];

/** Path inside a world. */
export function worldPath(w: World, ...p: string[]): string {
  return join(WORLDS_DIR, w, ...p);
}

/** expected.json of a world (untyped). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function expected(w: World): any {
  return JSON.parse(readFileSync(worldPath(w, 'expected.json'), 'utf8'));
}

/** The f32 tolerance of test/golden/FORMAT.md for a scalar: 2e-4·|R| + 1e-6. */
export function f32Close(actual: number, ref: number): boolean {
  return Math.abs(actual - ref) <= 2e-4 * Math.abs(ref) + 1e-6;
}
