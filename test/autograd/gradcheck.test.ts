import { describe, expect, it } from 'vitest';
import { backward, record, requiresGrad } from '../../src/autograd/engine.js';
import { gradcheck } from '../../src/autograd/gradcheck.js';
import { mul } from '../../src/autograd/ops/arith.js';
import { sum } from '../../src/autograd/ops/reduce.js';
import { tensor } from '../../src/tensor/create.js';
import { TensorError } from '../../src/tensor/errors.js';
import { transpose } from '../../src/tensor/view.js';
import type { Tensor } from '../../src/tensor/tensor.js';

/** sum(x) whose backward is deliberately wrong: d/dx_e = factor_e instead of 1. */
function wrongSum(x: Tensor, factor: Tensor): Tensor {
  return record(sum(x), 'wrongSum', [x], (g) => [mul(g, factor)]);
}

describe('gradcheck', () => {
  it('reports the element most out of tolerance, even after a larger passing error', () => {
    // with atol 0 and rtol 1 an element fails when |factor − 1| > 1: element 0 (error 0.9·|w|)
    // passes, element 1 (error 1.5·|w|) fails and must be the one reported
    const x = requiresGrad(tensor([0.3, -0.7, 1.1], 'f64'));
    const factor = tensor([1.9, 2.5, 1], 'f64');
    const r = gradcheck((t) => wrongSum(t, factor), [x], { atol: 0, rtol: 1 });
    expect(r.ok).toBe(false);
    expect(r.where).toMatch(/^input 0 element 1:/);
    const w = Math.abs(Number(/numeric (\S+)/.exec(r.where)![1]));
    expect(r.maxError).toBeCloseTo(1.5 * w, 6);
  });

  it('passes a correct gradient and names no failure', () => {
    const x = requiresGrad(tensor([0.3, -0.7, 1.1], 'f64'));
    const r = gradcheck((t) => sum(mul(t, t)), [x]);
    expect(r.ok).toBe(true);
  });

  it('refuses a non-contiguous input with a TensorError (a layout, not a dtype, problem)', () => {
    const base = tensor(
      [
        [1, 2],
        [3, 4],
      ],
      'f64',
    );
    const t = requiresGrad(transpose(base, 0, 1));
    expect(() => gradcheck((a) => sum(a), [t])).toThrow(TensorError);
    try {
      gradcheck((a) => sum(a), [t]);
    } catch (e) {
      expect((e as Error).name).toBe('TensorError');
    }
  });

  it('backward of a tensor that does not require grad is a TensorError, not a ShapeError', () => {
    const t = tensor([1, 2], 'f64');
    expect(() => backward(sum(t))).toThrow(/does not require grad/);
    try {
      backward(sum(t));
    } catch (e) {
      expect((e as Error).name).toBe('TensorError');
    }
  });
});
