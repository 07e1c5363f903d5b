/**
 * `mega train --workers N` end to end (the built CLI in real processes): the same result as one
 * process, rank 0 alone writes, a killed worker fails the job with the last checkpoint intact, and
 * `--max-restarts` resumes to exactly the parameters of an uninterrupted run.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { expectClose } from '../../src/verify/compare.js';
import { buildForChildren, run, type Built } from './helpers.js';
import { tinyListops } from '../tiny.js';

let built: Built;
let cli: string;
const tmp = mkdtempSync(join(tmpdir(), 'mega-dist-train-'));
beforeAll(async () => {
  built = await buildForChildren();
  cli = built.js('src/cli/main.ts');
}, 60000);
afterAll(() => {
  built?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

/** Tiny generated-ListOps run (dropout off: data parallel equals one process only without it). */
const TINY = [...tinyListops(48), '--warmup-updates', '1', '--dropout', '0', '--update-freq', '2'];

function mega(args: string[], env: Record<string, string> = {}) {
  return run('node', [cli, 'train', ...TINY, ...args], { env, timeoutMs: 90000 }).done;
}

function weights(dir: string): Record<string, number[]> {
  const c = loadCheckpoint(join(dir, 'checkpoint_last.safetensors'));
  return Object.fromEntries(Object.entries(c.tensors).map(([k, t]) => [k, Array.from(t.toTypedArray())]));
}

describe('mega train --workers', () => {
  it('2 workers on the split batch = 1 process on the whole batch; only rank 0 prints and writes', async () => {
    const [one, two] = await Promise.all([
      mega(['--max-update', '4', '--save-dir', join(tmp, 'one'), '--json']),
      mega(['--max-update', '4', '--save-dir', join(tmp, 'two'), '--json', '--workers', '2']),
    ]);
    expect(one.code, one.stderr).toBe(0);
    expect(two.code, two.stderr).toBe(0);
    const lines = two.stdout.trim().split('\n');
    expect(lines).toHaveLength(1); // one JSON line: rank 0's
    const r = JSON.parse(lines[0]!);
    expect(r).toMatchObject({ status: 'completed', updates: 4 });
    expect(r.valid_accuracy).toBe(JSON.parse(one.stdout).valid_accuracy);
    const a = weights(join(tmp, 'one')),
      b = weights(join(tmp, 'two'));
    for (const k of Object.keys(a)) expectClose(b[k]!, a[k]!, { rtol: 1e-5, what: k }); // f32: float rounding
    const starts = readFileSync(join(tmp, 'two', 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"type":"start"'));
    expect(starts).toHaveLength(1);
  }, 90000);

  it(
    'a killed worker fails the job naming the lost rank, the last checkpoint ' +
      'intact; --max-restarts resumes it to the exact parameters of an uninterrupted run',
    async () => {
      const common = ['--max-update', '6', '--save-interval-updates', '2', '--workers', '2', '--dist-timeout', '20'];
      const [clean, failed, restarted] = await Promise.all([
        mega([...common, '--save-dir', join(tmp, 'clean')]),
        mega([...common, '--save-dir', join(tmp, 'failed')], { MEGA_DIST_FAULT: 'kill:1@3' }),
        mega([...common, '--save-dir', join(tmp, 'restarted'), '--max-restarts', '1'], { MEGA_DIST_FAULT: 'kill:1@3' }),
      ]);
      expect(clean.code, clean.stderr).toBe(0);
      // without restarts: non-zero exit, rank 0 names rank 1, the checkpoint of update 2 is intact
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(/mega train: rank 0: lost rank 1/);
      expect(failed.stderr).toMatch(/worker rank 1 was killed by SIGKILL/);
      const ck = loadCheckpoint(join(tmp, 'failed', 'checkpoint_last.safetensors'));
      expect(ck.update).toBe(2);
      // with a restart: resumed from update 2, bitwise the clean run's parameters
      expect(restarted.code, restarted.stderr).toBe(0);
      expect(restarted.stderr).toMatch(/restarting 2 workers \(restart 1 of 1\) from .*checkpoint_last/);
      expect(weights(join(tmp, 'restarted'))).toEqual(weights(join(tmp, 'clean')));
      expect(existsSync(join(tmp, 'restarted', 'checkpoint_last.state.safetensors'))).toBe(true);
    },
    90000,
  );
});
