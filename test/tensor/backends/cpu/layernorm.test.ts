/**
 * Fused layer normalisation: the op equals the autograd composition it replaced in nn/norm.ts
 * (values and every gradient, f64 tightly, f32 within the golden f32 rule), the SIMD kernels
 * equal the generic kernels (odd widths, non-affine, strided and resident operands, rows split
 * across the pool), the op passes a finite-difference check, and bad operands are refused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as F from '../../../../src/autograd/index.js';
import { gradcheck } from '../../../../src/autograd/gradcheck.js';
import { layerNorm } from '../../../../src/autograd/ops/fused.js';
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

const gen = new Generator(17);
const EPS = 1e-5;
const threads = getNumThreads();

afterEach(() => {
  simdTuning.force = false;
  setNumThreads(threads);
});

/** max |a − b| / max |b| */
function maxRel(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  const x = K.copy(a).storage,
    y = K.copy(b).storage;
  let err = 0,
    mx = 0;
  for (let i = 0; i < y.length; i++) {
    err = Math.max(err, Math.abs(x[i] - y[i]));
    mx = Math.max(mx, Math.abs(y[i]));
  }
  return err / mx;
}

/** The composition nn/norm.ts's LayerNorm ran before the fused op. */
function composed(x: Tensor, w: Tensor | null, b: Tensor | null): Tensor {
  const xc = F.sub(x, F.mean(x, -1, true));
  let y = F.mul(xc, F.rsqrt(F.add(F.mean(F.square(xc), -1, true), EPS)));
  if (w && b) y = F.add(F.mul(y, w), b);
  return y;
}

describe('fused layerNorm', () => {
  for (const dt of ['f64', 'f32'] as FloatDType[]) {
    it(`equals the composition, values and gradients (${dt}, SIMD and generic kernels)`, () => {
      // the golden rule's rtol (test/golden/FORMAT.md), relative to the tensor's own scale
      const tol = dt === 'f64' ? 1e-9 : 2e-4;
      for (const force of [false, true]) {
        simdTuning.force = force;
        for (const [R, D, affine] of [
          [1024, 64, true],
          [37, 13, true],
          [5, 3, true],
          [300, 30, false],
        ] as [number, number, boolean][]) {
          const x = F.requiresGrad(randNormal([R, D], 0.5, 2, dt, gen));
          const w = affine ? F.requiresGrad(randNormal([D], 1, 0.3, dt, gen)) : null;
          const b = affine ? F.requiresGrad(randNormal([D], 0, 0.3, dt, gen)) : null;
          const g = randNormal([R, D], 0, 1, dt, gen);
          const y = layerNorm(x, w, b, EPS);
          F.backward(y, g);
          const got = [y, x.grad!, ...(affine ? [w!.grad!, b!.grad!] : [])];
          for (const t of [x, w, b]) if (t) t.grad = null;
          const ref = composed(x, w, b);
          F.backward(ref, g);
          const want = [ref, x.grad!, ...(affine ? [w!.grad!, b!.grad!] : [])];
          for (let i = 0; i < got.length; i++) expect(maxRel(got[i], want[i]), `R ${R} D ${D} tensor ${i} force ${force}`).toBeLessThanOrEqual(tol);
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
          for (const x of [V.reshape(resident, [70, 19]), K.copy(V.reshape(V.permute(randNormal([10, 7, 19], 0, 1, dt, gen), [1, 0, 2]), [70, 19]))]) {
            const [y, st] = layerNormSimd(x, w, b, EPS)!;
            const [yr, str] = layerNormGeneric(x, w, b, EPS);
            const [dx, dwb] = layerNormGradSimd(x, g, st, w)!;
            const [dxr, dwbr] = layerNormGradGeneric(x, g, str, w);
            for (const [p, q] of [
              [y, yr],
              [st, str],
              [dx, dxr],
              [dwb!, dwbr!],
            ])
              pairs.push([K.copy(p), K.copy(q)]);
          }
        },
        () => pairs.flat(),
      );
      for (const [p, q] of pairs) expect(maxRel(p, q)).toBeLessThanOrEqual(tol);
    }
  });

  it('passes a finite-difference check (f64)', () => {
    const x = F.requiresGrad(randNormal([6, 5], 0, 1, 'f64', gen)),
      w = F.requiresGrad(randNormal([5], 1, 0.3, 'f64', gen)),
      b = F.requiresGrad(randNormal([5], 0, 0.3, 'f64', gen));
    expect(gradcheck((t, ww, bb) => layerNorm(t, ww, bb, EPS), [x, w, b]).ok).toBe(true);
  });

  it('refuses mismatched operands', () => {
    const x = randNormal([4, 6], 0, 1, 'f32', gen);
    expect(() => K.layerNorm(x, randNormal([5], 0, 1, 'f32', gen), randNormal([5], 0, 1, 'f32', gen), EPS)).toThrow(/weight \[5\]/);
    expect(() => K.layerNorm(x, randNormal([6], 0, 1, 'f32', gen), null, EPS)).toThrow(/both/);
    expect(() => K.layerNormGrad(x, x, randNormal([4, 3], 0, 1, 'f32', gen), null)).toThrow(/stats/);
  });
});
