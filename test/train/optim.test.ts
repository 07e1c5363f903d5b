import { describe, expect, it } from 'vitest';
import { tensor } from '../../src/tensor/create.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { Adam, clipGradNorm, parseBetas } from '../../src/train/optim.js';

const leaf = (v: number[], dtype: 'f32' | 'f64' = 'f64'): Tensor => {
  const t = tensor(v, [v.length], dtype);
  t.requiresGrad = true;
  return t;
};

describe('fairseq Adam', () => {
  it('matches a hand-computed 2-step trajectory (decoupled wd, eps on raw sqrt(v), bias-corrected step)', () => {
    // θ0 = [1, −2], β = (0.9, 0.99), eps 1e-8, wd 0.1
    // step 1 (lr 0.1, g = [0.5, −1]): m = [0.05, −0.1], v = [0.0025, 0.01],
    //   stepSize = 0.1·√0.01/0.1 = 0.1, θ ← 0.99·θ − 0.1·m/(√v + 1e-8)
    //   = [0.99 − 0.1/(1 + 2e-7), −1.98 + 0.1/(1 + 1e-7)]
    // step 2 (lr 0.05, g = [0.5, 1]): m = [0.095, 0.01], v = [0.004975, 0.0199],
    //   stepSize = 0.05·√0.0199/0.19, θ ← 0.995·θ − stepSize·m/(√v + 1e-8)
    const p = leaf([1, -2]);
    const opt = new Adam([p], { lr: 0.1, betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.1 });
    p.grad = tensor([0.5, -1], [2], 'f64');
    opt.step();
    const t1 = [0.99 - 0.1 / (1 + 2e-7), -1.98 + 0.1 / (1 + 1e-7)];
    expect(p.toArray()[0]).toBeCloseTo(t1[0], 14);
    expect(p.toArray()[1]).toBeCloseTo(t1[1], 14);
    expect(t1[0]).toBeCloseTo(0.890000019999996, 14);
    opt.setLr(0.05);
    p.grad = tensor([0.5, 1], [2], 'f64');
    opt.step();
    const ss = (0.05 * Math.sqrt(0.0199)) / 0.19;
    const t2 = [0.995 * t1[0] - (ss * 0.095) / (Math.sqrt(0.004975) + 1e-8), 0.995 * t1[1] - (ss * 0.01) / (Math.sqrt(0.0199) + 1e-8)];
    expect(p.toArray()[0]).toBeCloseTo(t2[0], 13);
    expect(p.toArray()[1]).toBeCloseTo(t2[1], 13);
    expect(p.toArray()[0]).toBeCloseTo(0.8355500269888071, 13);
    expect(p.toArray()[1]).toBeCloseTo(-1.8732315887108195, 13);
    const st = opt.getState(p)!;
    expect(st.step).toBe(2);
    expect(st.exp_avg.toArray()[0]).toBeCloseTo(0.095, 15);
    expect(st.exp_avg_sq.toArray()[1]).toBeCloseTo(0.0199, 15);
  });

  it('skips parameters without a gradient (no decay, no state)', () => {
    const a = leaf([1, 2]),
      b = leaf([3]);
    const opt = new Adam([a, b], { lr: 0.1, weightDecay: 0.5 });
    a.grad = tensor([1, 1], [2], 'f64');
    opt.step();
    expect(b.toArray()).toEqual([3]);
    expect(opt.getState(b)).toBeUndefined();
  });

  it('deduplicates tied parameters and saves/restores its state', () => {
    const a = leaf([1, 2, 3], 'f32');
    const opt = new Adam([a, a], { lr: 0.01, betas: [0.9, 0.98] });
    expect(opt.params.length).toBe(1);
    a.grad = tensor([0.1, -0.2, 0.3], [3], 'f32');
    opt.step();
    const sd = opt.stateDict();
    const b = leaf(a.toArray(), 'f32');
    const opt2 = new Adam([b], { lr: 0.5 });
    opt2.loadStateDict(sd);
    expect(opt2.lr).toBe(0.01);
    expect(opt2.betas).toEqual([0.9, 0.98]);
    a.grad = tensor([0.3, 0.2, 0.1], [3], 'f32');
    b.grad = tensor([0.3, 0.2, 0.1], [3], 'f32');
    opt.step();
    opt2.step();
    expect(b.toArray()).toEqual(a.toArray());
    expect(opt2.getState(b)!.step).toBe(2);
  });

  it('parses fairseq --adam-betas strings', () => {
    expect(parseBetas('(0.9, 0.98)')).toEqual([0.9, 0.98]);
    expect(parseBetas('(0.9,0.999)')).toEqual([0.9, 0.999]);
    expect(() => parseBetas('(0.9)')).toThrow(/adam-betas/);
  });
});

describe('clipGradNorm', () => {
  it('returns the global L2 norm and scales by max/(norm + 1e-6)', () => {
    const a = leaf([0, 0]),
      b = leaf([0]),
      c = leaf([5]);
    a.grad = tensor([3, 0], [2], 'f64');
    b.grad = tensor([4], [1], 'f64');
    const n = clipGradNorm([a, b, c], 1);
    expect(n).toBe(5);
    const coef = 1 / (5 + 1e-6);
    expect(a.grad.toArray()[0]).toBeCloseTo(3 * coef, 15);
    expect(b.grad.toArray()[0]).toBeCloseTo(4 * coef, 15);
    expect(c.grad).toBeNull();
  });

  it('does not scale up small gradients, and max 0 only measures', () => {
    const a = leaf([0, 0]);
    a.grad = tensor([0.3, 0.4], [2], 'f64');
    expect(clipGradNorm([a], 10)).toBeCloseTo(0.5, 15);
    expect(a.grad.toArray()).toEqual([0.3, 0.4]);
    a.grad = tensor([30, 40], [2], 'f64');
    expect(clipGradNorm([a], 0)).toBe(50);
    expect(a.grad.toArray()).toEqual([30, 40]);
  });

  it('does not corrupt a gradient tensor shared by two parameters', () => {
    const a = leaf([0]),
      b = leaf([0]);
    const g = tensor([2], [1], 'f64');
    a.grad = g;
    b.grad = g;
    clipGradNorm([a, b], 1);
    expect(a.grad.toArray()[0]).toBeCloseTo(2 / (Math.SQRT2 * 2 + 1e-6), 15);
    expect(b.grad.toArray()[0]).toBeCloseTo(2 / (Math.SQRT2 * 2 + 1e-6), 15);
    expect(g.toArray()).toEqual([2]);
  });
});
