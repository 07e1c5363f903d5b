/**
 * System pieces some tests need beyond Node: mpirun and libmpi, torchrun, network namespaces, a
 * GPU mode for gpu.js, chromium. `.ci/run` installs them all. Without `CI` in the environment, a test whose
 * piece is missing is skipped and the run ends with ONE line naming what was missing and how to
 * get it (test/global-setup.ts prints it); with `CI` set nothing is skipped, so a missing piece
 * fails its tests.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { inject } from 'vitest';

/** A system piece a test may need. */
export type Piece = 'mpirun' | 'libmpi' | 'torchrun' | 'netns' | 'gpu' | 'chromium';

declare module 'vitest' {
  export interface ProvidedContext {
    /** File the test workers append missing pieces to (one name a line). */
    missingPiecesFile: string;
  }
}

/** Whether a command exists on PATH. */
export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Whether this process may create network namespaces (root with iproute2). */
export function canNetns(): boolean {
  if (process.getuid?.() !== 0 || !have('ip')) return false;
  const name = `megaprobe${process.pid}`;
  const ok = spawnSync('ip', ['netns', 'add', name], { stdio: 'ignore' }).status === 0;
  if (ok) spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  return ok;
}

/**
 * Whether tests needing `pieces` must be skipped: true only when one is missing (`present` says
 * which are there) and `CI` is unset; the missing ones are recorded for the run's summary line.
 */
export function skipWithout(present: Partial<Record<Piece, boolean>>): boolean {
  const missing = (Object.keys(present) as Piece[]).filter((p) => !present[p]);
  if (missing.length === 0 || process.env.CI) return false;
  let file: string | undefined;
  try {
    file = inject('missingPiecesFile');
  } catch {
    file = undefined;
  }
  if (file) appendFileSync(file, missing.map((p) => `${p}\n`).join(''));
  return true;
}
