/**
 * The save folder of `mega train` in real processes and real files: a kill at any step of a save
 * leaves a pair that `--resume` continues exactly; `--overwrite` and `--no-save` keep the previous
 * run until there is something to replace it with; stale temporary files are removed; one run per
 * folder (a lock); unusable `--save-dir` values are clear user errors.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { buildForChildren, run, type Built } from '../dist/helpers.js';

let built: Built;
let cli: string;
const tmp = mkdtempSync(join(tmpdir(), 'mega-save-folder-'));
beforeAll(async () => {
  built = await buildForChildren();
  cli = built.js('src/cli/main.ts');
}, 60000);
afterAll(() => {
  built?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

const TINY = [
  '--listops-train', '48', '--listops-valid', '16', '--listops-test', '8', '--batch-size', '8', '--layers', '1', '--embed-dim', '16',
  '--hidden-dim', '16', '--z-dim', '8', '--n-dim', '2', '--warmup-updates', '1', '--quiet', '--dropout', '0.1',
];

function mega(args: string[], env: Record<string, string> = {}) {
  return run('node', [cli, 'train', ...TINY, ...args], { env, timeoutMs: 90000 }).done;
}

function weights(dir: string): Record<string, number[]> {
  const c = loadCheckpoint(join(dir, 'checkpoint_last.safetensors'));
  return Object.fromEntries(Object.entries(c.tensors).map(([k, t]) => [k, Array.from(t.toTypedArray())]));
}

describe('a kill during a save', () => {
  it('at every step leaves a pair that --resume continues to the exact parameters of an uninterrupted run', async () => {
    const common = ['--max-update', '4', '--total-num-update', '4', '--save-interval-updates', '2', '--validate-interval-updates', '0'];
    const steps = ['prev', 'state', 'weights'] as const;
    const [clean, ...killed] = await Promise.all([
      mega([...common, '--save-dir', join(tmp, 'clean')]),
      ...steps.map((s) => mega([...common, '--save-dir', join(tmp, `kill-${s}`)], { MEGA_SAVE_FAULT: `kill:${s}@4` })),
    ]);
    expect(clean.code, clean.stderr).toBe(0);
    for (const k of killed) expect(k.signal, k.stderr).toBe('SIGKILL');
    const resumed = await Promise.all(steps.map((s) => mega(['--resume', '--max-update', '4', '--save-dir', join(tmp, `kill-${s}`), '--json'])));
    const expectedFrom = { prev: 2, state: 2, weights: 4 };
    steps.forEach((s, i) => {
      const r = resumed[i]!;
      expect(r.code, `${s}: ${r.stderr}`).toBe(0);
      const j = JSON.parse(r.stdout.trim());
      expect(j.updates, s).toBe(4);
      expect(j.updates_this_run, s).toBe(4 - expectedFrom[s]);
      expect(weights(join(tmp, `kill-${s}`)), s).toEqual(weights(join(tmp, 'clean')));
      expect(readdirSync(join(tmp, `kill-${s}`)).filter((f) => f.includes('prev-state')), s).toEqual([]);
    });
  }, 180000);

  it('a folder holding new state + kept previous state + previous weights resumes from the previous pair', async () => {
    // the on-disk state of a save killed between its state and weights steps, built by hand
    const [a, b] = [join(tmp, 'pairA'), join(tmp, 'pairB')];
    const [ra, rb] = await Promise.all([
      mega(['--max-update', '2', '--total-num-update', '4', '--save-dir', a]),
      mega(['--max-update', '4', '--save-dir', b]),
    ]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    writeFileSync(join(a, 'checkpoint_last.prev-state.safetensors'), readFileSync(join(a, 'checkpoint_last.state.safetensors')));
    writeFileSync(join(a, 'checkpoint_last.state.safetensors'), readFileSync(join(b, 'checkpoint_last.state.safetensors')));
    const r = await mega(['--resume', '--max-update', '4', '--save-dir', a, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ updates: 4, updates_this_run: 2 });
    expect(weights(a)).toEqual(weights(b));
  }, 120000);
});
