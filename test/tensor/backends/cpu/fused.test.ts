/**
 * Each fused kernel equals the composition of primitive kernels it replaces (values and
 * gradients), in f64 and f32, and the differentiable op passes a finite-difference check.
 */
import { describe, expect, it } from 'vitest';
import * as F from '../../../../src/autograd/index.js';
import { emaKernel } from '../../../../src/autograd/ops/fused.js';
import { gradcheck } from '../../../../src/autograd/gradcheck.js';
import { batchNormGeneric, batchNormGradGeneric, laplaceGeneric } from '../../../../src/tensor/backends/generic-fused.js';
import { batchNorm } from '../../../../src/autograd/ops/fused.js';
import { simdTuning } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import { arange } from '../../../../src/tensor/create.js';
import type { FloatDType } from '../../../../src/tensor/dtype.js';
import * as K from '../../../../src/tensor/kernels.js';
import { Generator, randNormal, randUniform } from '../../../../src/tensor/random.js';
import { fromStorage, type Tensor } from '../../../../src/tensor/tensor.js';
import { maxRel } from './max-rel.js';

const gen = new Generator(7);

/** The unfused composition: Σ_n coef[..., n, None] · exp(l · log q[..., n, None]). */
function composed(coef: Tensor, q: Tensor, length: number): Tensor {
  const l = F.reshape(arange(0, length, 1, coef.dtype), [1, 1, length]);
  const vander = F.exp(F.mul(l, F.log(F.unsqueeze(q, -1))));
  return F.sum(F.mul(F.unsqueeze(coef, -1), vander), 1);
}

describe('fused emaKernel', () => {
  for (const dt of ['f64', 'f32'] as FloatDType[]) {
    it(`equals the composition, values and gradients (${dt})`, () => {
      const tol = dt === 'f64' ? 1e-13 : 1e-5;
      for (const [D, N, L] of [
        [6, 4, 37],
        [3, 16, 300],
        [8, 16, 1000],
      ]) {
        const coef = F.requiresGrad(randNormal([D, N], 0, 1, dt, gen));
        const q = F.requiresGrad(randUniform([D, N], 0.3, 0.999, dt, gen));
        const g = randNormal([D, L], 0, 1, dt, gen);
        const a = emaKernel(coef, q, L);
        F.backward(a, g);
        const [gc, gq] = [coef.grad!, q.grad!];
        coef.grad = q.grad = null;
        const b = composed(coef, q, L);
        F.backward(b, g);
        expect(maxRel(a, b)).toBeLessThanOrEqual(tol);
        expect(maxRel(gc, coef.grad!)).toBeLessThanOrEqual(tol);
        expect(maxRel(gq, q.grad!)).toBeLessThanOrEqual(dt === 'f64' ? 1e-12 : 1e-4);
      }
    });
  }

  it('passes a finite-difference gradient check (f64)', () => {
    const coef = F.requiresGrad(randNormal([3, 2], 0, 1, 'f64', gen));
    const q = F.requiresGrad(randUniform([3, 2], 0.4, 0.95, 'f64', gen));
    const r = gradcheck((c, qq) => emaKernel(c, qq, 9), [coef, q]);
    expect(r.ok, r.where).toBe(true);
  });
});

describe('fused softmaxGrad', () => {
  for (const dt of ['f64', 'f32'] as FloatDType[]) {
    for (const log of [false, true]) {
      it(`${log ? 'log-' : ''}softmax backward equals the composition (${dt})`, () => {
        for (const shape of [
          [5, 7],
          [3, 40, 129],
        ]) {
          const x = randNormal(shape, 0, 2, dt, gen);
          const y = K.softmax(x, log);
          const g = randNormal(shape, 0, 1, dt, gen);
          const last = shape.length - 1;
          const ref = log
            ? K.binary(g, K.binary(K.unary(y, 'exp'), K.reduce(g, 'sum', [last], true), 'mul'), 'sub')
            : (() => {
                const gy = K.binary(g, y, 'mul');
                return K.binary(gy, K.binary(y, K.reduce(gy, 'sum', [last], true), 'mul'), 'sub');
              })();
          const got = K.softmaxGrad(y, g, log);
          // relative to the gradient's scale (the difference g − Σ cancels)
          expect(maxRel(got, ref)).toBeLessThanOrEqual(dt === 'f64' ? 1e-13 : 1e-5);
        }
      });
    }
  }

  it('F.softmax / F.logSoftmax gradients along a middle axis (f64 finite differences)', () => {
    const x = F.requiresGrad(randNormal([3, 5, 4], 0, 1, 'f64', gen));
    expect(gradcheck((t) => F.softmax(t, 1), [x]).ok).toBe(true);
    expect(gradcheck((t) => F.logSoftmax(t, 1), [x]).ok).toBe(true);
    expect(gradcheck((t) => F.softmax(F.transpose(t, 0, 2), -1), [x]).ok).toBe(true);
  });
});

describe('fused laplace', () => {
  const MU = 0.707107,
    DEN = 0.282095 * Math.SQRT2;
  for (const dt of ['f64', 'f32'] as FloatDType[]) {
    it(`equals the composition of primitives, values and gradients (${dt})`, () => {
      for (const shape of [[7], [3, 5, 11], [2, 3, 64, 64]]) {
        const x = randNormal(shape, 0.7, 0.6, dt, gen);
        const g = randNormal(shape, 0, 1, dt, gen);
        // values: every step rounded as the primitives round it → bitwise equal
        expect(Array.from(K.laplace(x, MU, DEN).storage)).toEqual(Array.from(laplaceGeneric(x, MU, DEN).storage));
        // gradient (the composition on every backend): g·exp(−z²)/(√π·den), in f64 here
        const xs = K.cast(x, 'f64').storage,
          gs = K.cast(g, 'f64').storage;
        const want = Float64Array.from(xs, (v, i) => (gs[i] * Math.exp(-(((v - MU) / DEN) ** 2))) / (Math.sqrt(Math.PI) * DEN));
        expect(maxRel(K.cast(K.laplaceGrad(x, g, MU, DEN), 'f64'), fromStorage(want, shape))).toBeLessThanOrEqual(dt === 'f64' ? 1e-13 : 1e-5);
      }
    });
  }

  it('reads strided views, and the autograd op passes a finite-difference check', () => {
    const x = randNormal([5, 6], 0.7, 0.5, 'f64', gen);
    const xt = F.transpose(x, 0, 1);
    expect(Array.from(K.laplace(xt, MU, DEN).storage)).toEqual(Array.from(laplaceGeneric(K.copy(xt), MU, DEN).storage));
    const y = F.requiresGrad(randNormal([4, 3], 0.7, 0.5, 'f64', gen));
    expect(gradcheck((t) => F.laplace(t), [y]).ok).toBe(true);
  });

  it('rejects a gradient of another shape', () => {
    const x = randNormal([4], 0, 1, 'f32', gen);
    expect(() => K.laplaceGrad(x, randNormal([5], 0, 1, 'f32', gen), MU, DEN)).toThrow(/does not match/);
  });
});

describe('fused batchNorm', () => {
  const EPS = 1e-5;
  /** The FORMAT.md rule: max|a − b| ≤ atol + rtol·max|b|. */
  const within = (a: Tensor, b: Tensor, dt: FloatDType) => {
    const [rtol, atol] = dt === 'f64' ? [1e-9, 1e-12] : [2e-4, 1e-6];
    const x = K.copy(a).storage,
      y = K.copy(b).storage;
    let err = 0,
      mx = 0;
    for (let i = 0; i < y.length; i++) {
      err = Math.max(err, Math.abs(x[i] - y[i]));
      mx = Math.max(mx, Math.abs(y[i]));
    }
    expect(a.shape).toEqual(b.shape);
    expect(err).toBeLessThanOrEqual(atol + rtol * mx);
  };
  const bits = (t: Tensor) => Array.from(K.copy(t).storage);

  for (const dt of ['f64', 'f32'] as FloatDType[]) {
    it(`equals the composition of primitives, values and gradients (${dt})`, () => {
      for (const [N, D] of [
        [5, 3],
        [300, 32],
        [2000, 7],
      ]) {
        const x = randNormal([N, D], 0.3, 2, dt, gen);
        const w = randNormal([D], 1, 0.5, dt, gen),
          b = randNormal([D], 0, 0.5, dt, gen);
        const g = randNormal([N, D], 0, 1, dt, gen);
        for (const [ww, bb] of [
          [w, b],
          [null, null],
        ]) {
          const [y, st] = K.batchNorm(x, ww, bb, EPS);
          const [yr, str] = batchNormGeneric(x, ww, bb, EPS);
          // forward: every step rounded as the primitives round it → bitwise equal (rsqrt of the
          // [D] variances takes the plain-TS kernel unless every size is forced onto SIMD)
          if (simdTuning.force) {
            within(y, yr, dt);
            within(st, str, dt);
          } else {
            expect(bits(y)).toEqual(bits(yr));
            expect(bits(st)).toEqual(bits(str));
          }
          const [dx, dwb] = K.batchNormGrad(x, g, st, ww, EPS);
          const [dxr, dwbr] = batchNormGradGeneric(x, g, st, ww, EPS);
          within(dx, dxr, dt);
          within(dwb, dwbr, dt);
        }
      }
    });
  }

  it('its gradient is the derivative of the composition (finite differences, f64), strided input', () => {
    const x = F.requiresGrad(randNormal([9, 4], 0, 1, 'f64', gen));
    const w = F.requiresGrad(randNormal([4], 1, 0.3, 'f64', gen)),
      b = F.requiresGrad(randNormal([4], 0, 0.3, 'f64', gen));
    expect(gradcheck((t, ww, bb) => batchNorm(t, ww, bb, EPS).y, [x, w, b]).ok).toBe(true);
    const xt = F.transpose(randNormal([4, 9], 0, 1, 'f64', gen), 0, 1);
    expect(bits(K.batchNorm(xt, w, b, EPS)[0])).toEqual(bits(K.batchNorm(K.copy(xt), w, b, EPS)[0]));
  });

  it('rejects mismatched shapes and dtypes', () => {
    const x = randNormal([6, 4], 0, 1, 'f32', gen);
    expect(() => K.batchNorm(x, randNormal([5], 0, 1, 'f32', gen), null, EPS)).toThrow(/weight \[5\]/);
    expect(() => K.batchNorm(randNormal([6], 0, 1, 'f32', gen), null, null, EPS)).toThrow(/\[N, D\]/);
    const [, st] = K.batchNorm(x, null, null, EPS);
    expect(() => K.batchNormGrad(x, randNormal([6, 5], 0, 1, 'f32', gen), st, null, EPS)).toThrow(/does not match/);
    expect(() => K.batchNormGrad(x, x, randNormal([3, 4], 0, 1, 'f32', gen), null, EPS)).toThrow(/stats/);
  });
});
