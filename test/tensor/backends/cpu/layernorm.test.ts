/**
 * Fused layer normalisation (and RMS normalisation without centering): the op equals the autograd
 * compositions it replaced in nn/norm.ts (values and every gradient, within the golden rule), the SIMD kernels
 * equal the generic kernels (odd widths, non-affine, strided and resident operands, rows split
 * across the pool), the op passes a finite-difference check, and bad operands are refused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as F from '../../../../src/autograd/index.js';
import { gradcheck } from '../../../../src/autograd/gradcheck.js';
import { layerNorm } from '../../../../src/autograd/ops/fused.js';
import { RMSNorm, ScaleNorm } from '../../../../src/nn/norm.js';
import { layerNormGradSimd, layerNormSimd } from '../../../../src/tensor/backends/cpu/layernorm-simd.js';
import { getNumThreads, setNumThreads } from '../../../../src/tensor/backends/cpu/pool.js';
import { residentScope } from '../../../../src/tensor/backends/cpu/resident.js';
import { simdTuning } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import { layerNormGeneric, layerNormGradGeneric } from '../../../../src/tensor/backends/generic-fused.js';
import type { FloatDType } from '../../../../src/tensor/dtype.js';
import * as K from '../../../../src/tensor/kernels.js';
import { Generator, randNormal } from '../../../../src/tensor/random.js';
import type { Tensor } from '../../../../src/tensor/tensor.js';
import * as V from '../../../../src/tensor/view.js';
import { maxRel } from './max-rel.js';

const gen = new Generator(17);
const EPS = 1e-5;
const threads = getNumThreads();

afterEach(() => {
  simdTuning.force = false;
  setNumThreads(threads);
});

/** The compositions nn/norm.ts's LayerNorm (center) and RMSNorm ran before the fused op. */
function composed(x: Tensor, w: Tensor | null, b: Tensor | null, center: boolean): Tensor {
  const xc = center ? F.sub(x, F.mean(x, -1, true)) : x;
  let y = F.mul(xc, F.rsqrt(F.add(F.mean(F.square(xc), -1, true), EPS)));
  if (w) y = F.mul(y, w);
  if (b) y = F.add(y, b);
  return y;
}

describe('fused layerNorm', () => {
  for (const dt of ['f64', 'f32'] as FloatDType[]) {
    it(`equals the composition, values and gradients (${dt}, SIMD and generic kernels)`, () => {
      // the golden rule's rtol (test/golden/FORMAT.md), relative to the tensor's own scale
      const tol = dt === 'f64' ? 1e-9 : 2e-4;
      for (const force of [false, true]) {
        simdTuning.force = force;
        // [R, D, weight, bias, center]: LayerNorm affine / not, RMSNorm (weight, no centering), ScaleNorm's part
        for (const [R, D, hasW, hasB, center] of [
          [1024, 64, true, true, true],
          [37, 13, true, true, true],
          [5, 3, true, true, true],
          [300, 30, false, false, true],
          [200, 29, true, false, false],
          [64, 128, false, false, false],
          [9, 7, false, true, true],
        ] as [number, number, boolean, boolean, boolean][]) {
          const x = F.requiresGrad(randNormal([R, D], 0.5, 2, dt, gen));
          const w = hasW ? F.requiresGrad(randNormal([D], 1, 0.3, dt, gen)) : null;
          const b = hasB ? F.requiresGrad(randNormal([D], 0, 0.3, dt, gen)) : null;
          const g = randNormal([R, D], 0, 1, dt, gen);
          const params = [x, w, b].filter((t): t is Tensor => t !== null);
          const y = layerNorm(x, w, b, EPS, center);
          F.backward(y, g);
          const got = [y, ...params.map((t) => t.grad!)];
          for (const t of params) t.grad = null;
          const ref = composed(x, w, b, center);
          F.backward(ref, g);
          const want = [ref, ...params.map((t) => t.grad!)];
          for (let i = 0; i < got.length; i++)
            expect(maxRel(got[i], want[i]), `R ${R} D ${D} center ${center} tensor ${i} force ${force}`).toBeLessThanOrEqual(tol);
        }
      }
    });
  }

  it('SIMD kernels equal the generic ones: strided x, resident operands, rows on the pool', () => {
    simdTuning.force = true;
    setNumThreads(2);
    for (const dt of ['f32', 'f64'] as FloatDType[]) {
      const tol = dt === 'f64' ? 1e-13 : 1e-6;
      const base = randNormal([7, 10, 19], 0, 1, dt, gen);
      const w = randNormal([19], 1, 0.2, dt, gen),
        b = randNormal([19], 0, 0.2, dt, gen);
      const g = randNormal([70, 19], 0, 1, dt, gen);
      const pairs: [Tensor, Tensor][] = [];
      residentScope(
        {},
        () => {
          const resident = K.binary(base, base, 'add'); // in the wasm memory
          const strided = V.reshape(V.permute(randNormal([10, 7, 19], 0, 1, dt, gen), [1, 0, 2]), [70, 19]);
          for (const x of [V.reshape(resident, [70, 19]), strided])
            for (const center of [true, false]) {
              const [y, st] = layerNormSimd(x, w, b, EPS, center)!;
              const [yr, str] = layerNormGeneric(x, w, b, EPS, center);
              const [dx, dw, db] = layerNormGradSimd(x, g, st, w, true, center)!;
              const [dxr, dwr, dbr] = layerNormGradGeneric(x, g, str, w, true, center);
              for (const [p, q] of [
                [y, yr],
                [st, str],
                [dx, dxr],
                [dw!, dwr!],
                [db!, dbr!],
              ])
                pairs.push([K.copy(p), K.copy(q)]);
            }
        },
        () => pairs.flat(),
      );
      for (const [p, q] of pairs) expect(maxRel(p, q)).toBeLessThanOrEqual(tol);
    }
  });

  it('ScaleNorm and RMSNorm modules equal their compositions (scalar gain through a broadcast weight)', () => {
    for (const dt of ['f64', 'f32'] as FloatDType[]) {
      const tol = dt === 'f64' ? 1e-9 : 2e-4;
      const x = F.requiresGrad(randNormal([24, 3, 40], 0.2, 1.5, dt, gen));
      const g = randNormal([24, 3, 40], 0, 1, dt, gen);
      for (const m of [new ScaleNorm(EPS, true, dt), new RMSNorm(40, EPS, true, dt)]) {
        const p = m.parameters()[0];
        K.copy(randNormal(p.shape, 1, 0.3, dt, gen)).storage.forEach((v, i) => (p.storage[i] = v));
        const y = m.forward(x);
        F.backward(y, g);
        const got = [y, x.grad!, p.grad!];
        x.grad = p.grad = null;
        const ref = F.mul(F.mul(x, F.rsqrt(F.add(F.mean(F.square(x), -1, true), EPS))), p);
        F.backward(ref, g);
        const want = [ref, x.grad!, p.grad!];
        x.grad = p.grad = null;
        for (let i = 0; i < 3; i++) expect(maxRel(got[i], want[i]), `${m.constructor.name} ${dt} tensor ${i}`).toBeLessThanOrEqual(tol);
      }
    }
  });

  it('passes a finite-difference check (f64)', () => {
    const x = F.requiresGrad(randNormal([6, 5], 0, 1, 'f64', gen)),
      w = F.requiresGrad(randNormal([5], 1, 0.3, 'f64', gen)),
      b = F.requiresGrad(randNormal([5], 0, 0.3, 'f64', gen));
    expect(gradcheck((t, ww, bb) => layerNorm(t, ww, bb, EPS), [x, w, b]).ok).toBe(true);
    expect(gradcheck((t, ww) => layerNorm(t, ww, null, EPS, false), [x, w]).ok).toBe(true);
  });

  it('refuses mismatched operands', () => {
    const x = randNormal([4, 6], 0, 1, 'f32', gen);
    expect(() => K.layerNorm(x, randNormal([5], 0, 1, 'f32', gen), randNormal([5], 0, 1, 'f32', gen), EPS)).toThrow(/weight \[5\]/);
    expect(() => K.layerNorm(x, null, randNormal([6], 0, 1, 'f64', gen), EPS)).toThrow(/bias \[6\] \(f64\)/);
    expect(() => K.layerNormGrad(x, x, randNormal([4, 3], 0, 1, 'f32', gen), null, false)).toThrow(/stats/);
  });
});
