/** Shared helpers of the fairseq-world tests: paths and the expected.json of each world. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkClose } from '../../src/verify/compare.js';

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
  return checkClose([actual], [ref], { precision: 'f32' }).pass;
}

/** Runs the built CLI (`dist/`) in a world folder: exit code, stdout lines, stderr. */
export function mega(w: World | null, argv: string[]): { rc: number; stdout: string[]; stderr: string } {
  const main = join(WORLDS_DIR, '..', '..', 'dist', 'src', 'cli', 'main.js');
  const r = spawnSync(process.execPath, [main, ...argv], { cwd: w ? worldPath(w) : WORLDS_DIR, encoding: 'utf8', timeout: 120_000 });
  return { rc: r.status ?? -1, stdout: r.stdout.split('\n').filter((l) => l !== ''), stderr: r.stderr };
}

/** The last stdout line parsed as JSON. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function lastJson(lines: string[]): any {
  return JSON.parse(lines[lines.length - 1]!);
}
