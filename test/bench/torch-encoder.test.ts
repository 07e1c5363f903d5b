/**
 * The PyTorch baseline of issue 13's first figure (bench/torch_mega.py `EncoderLayer`) computes
 * the same function as the benchmarked mega-ts layer (bench/mega.ts `encoderLayer`): same
 * parameters, input and cotangent, float64 both sides, outputs and every gradient within the f64
 * rule of test/golden/FORMAT.md. Needs /usr/bin/python3 with python3-torch (the `torchrun` piece).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encoderLayer, MEGA_CFG } from '../../bench/mega.js';
import * as F from '../../src/autograd/index.js';
import { Generator, randNormal } from '../../src/tensor/random.js';
import { expectClose } from '../../src/verify/compare.js';
import { skipWithout } from '../system.js';

const PY = '/usr/bin/python3';
const hasTorch = spawnSync(PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const skip = skipWithout({ torchrun: hasTorch });
const dir = mkdtempSync(join(tmpdir(), 'mega-torch-encoder-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(skip)('bench PyTorch encoder layer = mega-ts MegaSentenceEncoderLayer', () => {
  for (const C of [-1, 8]) {
    it(`chunk ${C}: output and all gradients, float64`, () => {
      const L = 16,
        B = 2;
      const gen = new Generator(5);
      const layer = encoderLayer(L, C, 'f64', gen);
      const x = randNormal([L, B, MEGA_CFG.D], 0, 1, 'f64', gen);
      x.requiresGrad = true;
      const g = randNormal([L, B, MEGA_CFG.D], 0, 1, 'f64', gen);
      const out = layer.forward(x); // L × B × D
      F.backward(out, g);
      const named = layer.namedParameters();
      const input = {
        config: { ...MEGA_CFG, C, max_positions: L },
        params: Object.fromEntries(named.map(([n, t]) => [n, { shape: t.shape, data: t.toArray() }])),
        x: { shape: x.shape, data: x.toArray() },
        cotangent: g.toArray(),
      };
      const src = join(dir, `in${C}.json`),
        dst = join(dir, `out${C}.json`);
      writeFileSync(src, JSON.stringify(input));
      const r = spawnSync(PY, [join('bench', 'torch_mega.py'), '--run-json', src, dst], { encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      const res = JSON.parse(readFileSync(dst, 'utf8')) as { out: number[]; x_grad: number[]; grads: Record<string, number[]> };
      expectClose(out, res.out, { precision: 'f64', what: 'out' });
      expectClose(x.grad!, res.x_grad, { precision: 'f64', what: 'grad x' });
      expect(Object.keys(res.grads).sort()).toEqual(named.map(([n]) => n).sort());
      for (const [n, t] of named) expectClose(t.grad!, res.grads[n], { precision: 'f64', what: `grad ${n}` });
    });
  }
});
