/**
 * The fused EMA coefficients (`emaCoeffs` / `emaCoeffsGrad`): the forward is bitwise the
 * composition of primitive kernels MultiHeadEMA ran before (plain-TS kernels, f32 and f64), the
 * gradients equal that composition's autograd gradients within the golden rule, the op passes a
 * finite-difference check, the generic kernels (what gpujs runs) equal the CPU ones, and bad
 * operands are refused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as F from '../../../../src/autograd/index.js';
import { backward } from '../../../../src/autograd/engine.js';
import { emaCoeffs } from '../../../../src/autograd/ops/fused.js';
import { emaCoeffsCpu, emaCoeffsGradCpu } from '../../../../src/tensor/backends/cpu/ema-coeffs.js';
import { setSimd } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import { emaCoeffsGeneric, emaCoeffsGradGeneric } from '../../../../src/tensor/backends/generic-fused.js';
import type { FloatDType } from '../../../../src/tensor/dtype.js';
import { DTypeError, ShapeError } from '../../../../src/tensor/errors.js';
import { Generator, randNormal } from '../../../../src/tensor/random.js';
import type { Tensor } from '../../../../src/tensor/tensor.js';
import * as V from '../../../../src/tensor/view.js';
import { expectGrad } from '../../../autograd/helpers.js';
import { maxRel } from './max-rel.js';
import { sameBits } from './bits.js';

const gen = new Generator(29);

afterEach(() => setSimd(true));

/** MultiHeadEMA-like parameters: delta, alpha, beta `[D, N, 1]`, gamma `[D, N]`. */
function params(D: number, N: number, dt: FloatDType): Tensor[] {
  return [
    randNormal([D, N, 1], 0, 1.5, dt, gen),
    randNormal([D, N, 1], 0, 1.5, dt, gen),
    randNormal([D, N, 1], 0.5, 1, dt, gen),
    randNormal([D, N], 0, 1, dt, gen),
  ].map((t) => F.requiresGrad(t));
}

/** The composition MultiHeadEMA.computeKernel ran before the fused op. */
function composed(delta: Tensor, alpha: Tensor, beta: Tensor, gamma: Tensor, scale: number): { coef: Tensor; q: Tensor } {
  const p = F.sigmoid(delta);
  const q = F.sub(1, F.mul(p, F.sigmoid(alpha)));
  return { coef: F.mul(F.mul(F.squeeze(F.mul(p, beta), -1), gamma), scale), q: F.squeeze(q, -1) };
}

describe('fused EMA coefficients', () => {
  for (const dt of ['f32', 'f64'] as FloatDType[]) {
    it(`forward: the composition bit for bit; gradients within the golden rule (${dt})`, () => {
      setSimd(false); // the composition on the plain-TS kernels (tiny tensors take them in a step too)
      const tol = dt === 'f64' ? 1e-9 : 2e-4;
      for (const [D, N] of [
        [64, 8],
        [5, 3],
        [1, 1],
      ]) {
        const ps = params(D, N, dt);
        const scale = Math.sqrt(1 / N);
        const got = emaCoeffs(ps[0], ps[1], ps[2], ps[3], scale);
        const ref = composed(ps[0], ps[1], ps[2], ps[3], scale);
        expect(sameBits(got.coef, ref.coef)).toBe(true);
        expect(sameBits(got.q, ref.q)).toBe(true);
        // a loss that weighs coef and q differently reaches every parameter
        const wc = randNormal([D, N], 0, 1, dt, gen),
          wq = randNormal([D, N], 0, 1, dt, gen);
        const loss = (c: { coef: Tensor; q: Tensor }) => F.add(F.sum(F.mul(c.coef, wc)), F.sum(F.mul(c.q, wq)));
        const gradsOf = (c: { coef: Tensor; q: Tensor }) => {
          for (const p of ps) p.grad = null;
          backward(loss(c));
          return ps.map((p) => p.grad!);
        };
        const gf = gradsOf(emaCoeffs(ps[0], ps[1], ps[2], ps[3], scale));
        const gr = gradsOf(composed(ps[0], ps[1], ps[2], ps[3], scale));
        for (let i = 0; i < 4; i++) {
          expect(gf[i].shape).toEqual(ps[i].shape);
          expect(maxRel(gf[i], gr[i])).toBeLessThan(tol);
        }
        // only q used: coef's gradient is taken as zero
        for (const p of ps) p.grad = null;
        backward(F.sum(F.mul(emaCoeffs(ps[0], ps[1], ps[2], ps[3], scale).q, wq)));
        expect(ps[2].grad === null || ps[2].grad.toArray().every((v) => v === 0)).toBe(true);
      }
    });
  }

  it('passes a finite-difference check (f64)', () => {
    const ps = params(4, 3, 'f64');
    const w = randNormal([4, 3], 0, 1, 'f64', gen);
    expectGrad((d, a, b, g) => {
      const c = emaCoeffs(d, a, b, g, 0.7);
      return F.add(F.sum(F.mul(c.coef, c.q)), F.sum(F.mul(c.q, w)));
    }, ps);
  });

  it('generic kernels (compositions of primitives) equal the CPU kernels', () => {
    for (const dt of ['f32', 'f64'] as FloatDType[]) {
      const ps = params(16, 4, dt);
      const gc = randNormal([16, 4], 0, 1, dt, gen),
        gq = V.transpose(randNormal([4, 16], 0, 1, dt, gen), 0, 1); // a strided gradient
      setSimd(false);
      expect(sameBits(emaCoeffsGeneric(ps[0], ps[1], ps[2], ps[3], 0.5), emaCoeffsCpu(ps[0], ps[1], ps[2], ps[3], 0.5))).toBe(true);
      setSimd(true);
      const a = emaCoeffsGradGeneric(ps[0], ps[1], ps[2], ps[3], 0.5, gc, gq),
        b = emaCoeffsGradCpu(ps[0], ps[1], ps[2], ps[3], 0.5, gc, gq);
      for (let i = 0; i < 4; i++) {
        expect(a[i].shape).toEqual(b[i].shape);
        expect(maxRel(a[i], b[i])).toBeLessThan(dt === 'f64' ? 1e-12 : 2e-6);
      }
    }
  });

  it('refuses bad operands', () => {
    const [d, a, b, g] = params(4, 3, 'f32');
    for (const f of [emaCoeffsCpu, emaCoeffsGeneric]) {
      expect(() => f(d, a, b, randNormal([4, 2], 0, 1, 'f32', gen), 1)).toThrow(ShapeError);
      expect(() => f(V.reshape(d, [4, 3]), a, b, g, 1)).toThrow(ShapeError);
      expect(() => f(d, randNormal([4, 3, 1], 0, 1, 'f64', gen), b, g, 1)).toThrow(DTypeError);
    }
    for (const f of [emaCoeffsGradCpu, emaCoeffsGradGeneric]) {
      expect(() => f(d, a, b, g, 1, randNormal([3, 4], 0, 1, 'f32', gen), randNormal([4, 3], 0, 1, 'f32', gen))).toThrow(ShapeError);
      expect(() => f(d, a, b, g, 1, randNormal([4, 3], 0, 1, 'f64', gen), randNormal([4, 3], 0, 1, 'f32', gen))).toThrow(DTypeError);
    }
  });
});
