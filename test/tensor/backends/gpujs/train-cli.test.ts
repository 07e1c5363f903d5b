/**
 * `mega train --backend gpujs` (a real process): the parameters live on the device (uploaded once,
 * at the start), Adam and clipping run there, and the run's losses equal the CPU backend's run to
 * the f32 rule. MEGA_DEBUG=gpujs:all traces every transfer: after the start no parameter crosses,
 * and an update reads back only the loss, the gradient norm and the accuracy count (the trainer's
 * log and divergence check).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildForChildren, run, type Built } from '../../../dist/helpers.js';
import { skipWithout } from '../../../system.js';
import { gpuAvailable } from '../gpu-probe.js';
import { tinyListops } from '../../../tiny.js';

const tmp = mkdtempSync(join(tmpdir(), 'mega-gpujs-train-'));
let built: Built;
afterAll(() => {
  built?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

const TINY = [...tinyListops(48), '--log-interval', '1', '--max-update', '4', '--validate-interval-updates', '0'];

function losses(dir: string): number[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => r.type === 'train')
    .map((r) => r.loss);
}

describe.skipIf(skipWithout({ gpu: gpuAvailable() }))('mega train --backend gpujs', () => {
  beforeAll(async () => {
    built = await buildForChildren();
  }, 60_000);

  it('keeps the parameters on the device and matches the CPU run', async () => {
    const cli = built.js('src/cli/main.ts');
    const cpu = await run('node', [cli, 'train', ...TINY, '--save-dir', join(tmp, 'cpu')], { timeoutMs: 180_000 }).done;
    expect(cpu.code, cpu.stderr).toBe(0);
    const gpu = await run('node', [cli, 'train', ...TINY, '--backend', 'gpujs', '--save-dir', join(tmp, 'gpu')], {
      env: { MEGA_DEBUG: 'gpujs:all' },
      timeoutMs: 180_000,
    }).done;
    expect(gpu.code, gpu.stderr).toBe(0);
    const lines = gpu.stderr.split('\n').filter((l) => /^\[gpujs\] (upload|read-back)/.test(l));
    // the parameters cross once, when the run starts; Adam never reads anything back
    expect(lines.filter((l) => /restore/.test(l)).length).toBeGreaterThan(0);
    expect(lines.filter((l) => /read-back/.test(l) && /Adam/.test(l))).toEqual([]);
    // between two loss read-backs (one update): the batch goes in (no parameter, no Adam upload
    // after the first update), and only the gradient norm and the accuracy count come back
    const isLoss = (l: string) => /read-back of 1 values at TrainRun\.step/.test(l);
    const cuts = lines.map((l, i) => (isLoss(l) ? i : -1)).filter((i) => i >= 0);
    expect(cuts).toHaveLength(4);
    for (let k = 1; k + 1 < cuts.length; k++) {
      const seg = lines.slice(cuts[k] + 1, cuts[k + 1]);
      expect(
        seg.filter((l) => /restore|Adam/.test(l)),
        seg.join('\n'),
      ).toEqual([]);
      const reads = seg.filter((l) => /read-back/.test(l));
      expect(reads.map((l) => (/clipGradNorm/.test(l) ? 'gnorm' : /tasks[\\/]common/.test(l) ? 'accuracy' : l)).sort()).toEqual(['accuracy', 'gnorm']);
    }
    const c = losses(join(tmp, 'cpu')),
      g = losses(join(tmp, 'gpu'));
    expect(g).toHaveLength(4);
    g.forEach((l, i) => expect(Math.abs(l - c[i])).toBeLessThanOrEqual(1e-6 + 2e-4 * Math.abs(c[i])));
  }, 300_000);
});
