/**
 * The WebAssembly SIMD fused kernels (simd-fused.ts) against their references: the laplace
 * forward bitwise equal to the plain-TS fused kernel (and so to the composition of primitives),
 * its backward bitwise equal to the generic composition run on the SIMD elementwise kernels and
 * within a few ulp of it on the plain-TS kernels; log-softmax and its backward within an ulp of
 * the plain-TS kernels (f64: both compute in float64 and round once; f32 with float32 exps, plus
 * two float32 ulp of the quantity they feed); batch norm forward bitwise equal
 * to the plain-TS fused kernel, backward to the generic composition; 1 vs 2 threads vs forced
 * smallest tasks bitwise.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { batchNormGradGeneric, laplaceGradGeneric } from '../../../../src/tensor/backends/generic-fused.js';
import { batchNormCpu } from '../../../../src/tensor/backends/cpu/batchnorm.js';
import { copyCpu } from '../../../../src/tensor/backends/cpu/elementwise.js';
import { laplaceCpu, softmaxGradCpu } from '../../../../src/tensor/backends/cpu/fused.js';
import { softmaxCpu } from '../../../../src/tensor/backends/cpu/reduce.js';
import { getNumThreads, setNumThreads } from '../../../../src/tensor/backends/cpu/pool.js';
import {
  batchNormGradSimd,
  batchNormSimd,
  laplaceGradSimd,
  laplaceSimd,
  logSoftmaxGradSimd,
  logSoftmaxSimd,
} from '../../../../src/tensor/backends/cpu/simd-fused.js';
import { setSimd, simdTuning } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import type { FloatDType } from '../../../../src/tensor/dtype.js';
import * as K from '../../../../src/tensor/kernels.js';
import { Generator, randNormal } from '../../../../src/tensor/random.js';
import type { Tensor } from '../../../../src/tensor/tensor.js';
import * as V from '../../../../src/tensor/view.js';

const gen = new Generator(5);
const DTYPES: FloatDType[] = ['f32', 'f64'];
const MU = 0.707107,
  DEN = 0.282095 * Math.SQRT2;
const prevThreads = getNumThreads();
const prevForce = simdTuning.force;
afterAll(() => {
  setNumThreads(prevThreads);
  simdTuning.force = prevForce;
  setSimd(true);
});

function bits(t: Tensor): Buffer {
  const x = copyCpu(t).storage;
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

/** Inputs around the laplace centre with special values (±0 at z = 0, ±∞, NaN, |z| ≥ 6, ties of the erf grid). */
function inputs(shape: number[], dt: FloatDType): Tensor {
  const t = randNormal(shape, MU, 0.8, dt, gen);
  const s = t.storage;
  // z = ±0, ±∞, NaN, beyond the table, exactly on a grid point and half-way between two
  const z = [0, -0, Infinity, -Infinity, NaN, 6, -6, 7.5, -40, 1 / 64, 0.5 / 64, -(3.5 / 64), 383.5 / 64, 1e-30];
  for (let i = 0; i < z.length && i * 53 < s.length; i++) s[i * 53] = z[i] * DEN + MU;
  return t;
}

describe('SIMD laplace vs plain TS', () => {
  for (const dt of DTYPES) {
    it(`forward bitwise equal to laplaceCpu (${dt})`, () => {
      for (const shape of [[4099], [3, 7, 130]]) {
        const x = inputs(shape, dt);
        expect(bits(laplaceSimd(x, MU, DEN)!).equals(bits(laplaceCpu(x, MU, DEN)))).toBe(true);
      }
      // exact grid ties and values just around them (round-half-up picks the upper grid point)
      const n = 4096;
      const t = randNormal([n], 0, 1, dt, gen);
      for (let i = 0; i < n; i++) t.storage[i] = ((i % 768) / 2 + (i % 3) * 1e-9 - 1e-9) / 64 - 3;
      expect(bits(laplaceSimd(t, 0, 1)!).equals(bits(laplaceCpu(t, 0, 1)))).toBe(true);
      // a strided view is staged
      const xt = V.transpose(inputs([70, 65], dt), 0, 1);
      expect(bits(laplaceSimd(xt, MU, DEN)!).equals(bits(laplaceCpu(xt, MU, DEN)))).toBe(true);
    });

    it(`backward equals the generic composition (${dt})`, () => {
      for (const shape of [[4099], [3, 7, 130]]) {
        const x = inputs(shape, dt);
        const g = randNormal(shape, 0, 1, dt, gen);
        const got = laplaceGradSimd(x, g, MU, DEN)!;
        // on the SIMD elementwise kernels the composition does the same operations: bitwise
        simdTuning.force = true;
        const simdRef = laplaceGradGeneric(x, g, MU, DEN);
        simdTuning.force = prevForce;
        expect(bits(got).equals(bits(simdRef))).toBe(true);
        // on the plain-TS kernels only exp differs (SIMD exp within 2 ulp of Math.exp)
        setSimd(false);
        const tsRef = laplaceGradGeneric(x, g, MU, DEN);
        setSimd(true);
        const a = copyCpu(got).storage,
          b = copyCpu(tsRef).storage;
        const rtol = dt === 'f32' ? 8 * 6e-8 : 8 * 1.2e-16;
        for (let i = 0; i < b.length; i++) {
          if (Number.isNaN(b[i])) expect(Number.isNaN(a[i])).toBe(true);
          else expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(rtol * Math.abs(b[i]) + (dt === 'f32' ? 1e-37 : 1e-307));
        }
      }
    });
  }

  it('declines small tensors and other dtypes; rejects a gradient of another shape', () => {
    simdTuning.force = false;
    expect(laplaceSimd(randNormal([100], 0, 1, 'f32', gen), MU, DEN)).toBeNull();
    simdTuning.force = prevForce;
    const x = randNormal([5000], 0, 1, 'f32', gen);
    expect(() => laplaceGradSimd(x, randNormal([5001], 0, 1, 'f32', gen), MU, DEN)).toThrow(/does not match/);
  });

  it('is bitwise the same on 1 and 2 threads and with the smallest tasks', () => {
    const x = inputs([300, 1200], 'f32');
    const g = randNormal([300, 1200], 0, 1, 'f32', gen);
    const run = () => [laplaceSimd(x, MU, DEN)!, laplaceGradSimd(x, g, MU, DEN)!, logSoftmaxSimd(x)!, logSoftmaxGradSimd(logSoftmaxSimd(x)!, g)!].map(bits);
    setNumThreads(1);
    const one = run();
    setNumThreads(2);
    const two = run();
    simdTuning.force = true;
    const forced = run();
    simdTuning.force = prevForce;
    for (let i = 0; i < one.length; i++) {
      expect(two[i].equals(one[i])).toBe(true);
      expect(forced[i].equals(one[i])).toBe(true);
    }
  });
});

/**
 * Max over elements of |a − b| / (ulp·|b| + extra) (NaN must match NaN, equal infinities match):
 * one rounding to the element type (`ulp` = 2⁻²³ or 2⁻⁵²) plus `extra`, the error allowed in the
 * float64 quantity `c` the result was computed from (the row constant m + log Σ exp of
 * log-softmax, exp(y)·Σ|g| of its backward): f64 a few float64 ulp of |c|; f32, whose exps are
 * float32, two float32 ulp of 1 (forward: the sum's relative error is an absolute error of its
 * log) or of |c| (backward: exp(y) and Σg in float32).
 */
function ulps(a: Tensor, b: Tensor, c: Tensor, dt: FloatDType, part: 'forward' | 'backward'): number {
  const x = copyCpu(a).storage,
    y = copyCpu(b).storage,
    z = copyCpu(c).storage;
  const u = dt === 'f32' ? 2 ** -23 : 2 ** -52;
  const extra = (i: number): number => {
    const f64 = 8 * 2 ** -52 * Math.abs(z[i]);
    if (dt === 'f64') return f64;
    return part === 'forward' ? 2 * u + f64 : 2 * u * Math.abs(z[i]);
  };
  let worst = 0;
  for (let i = 0; i < y.length; i++) {
    if (Number.isNaN(y[i]) || Number.isNaN(x[i])) {
      if (!(Number.isNaN(y[i]) && Number.isNaN(x[i]))) return Infinity;
      continue;
    }
    if (x[i] === y[i]) continue;
    worst = Math.max(worst, Math.abs(x[i] - y[i]) / (u * Math.abs(y[i]) + extra(i)));
  }
  return worst;
}

describe('SIMD log-softmax vs plain TS', () => {
  for (const dt of DTYPES) {
    it(`forward and backward, rows of every length (${dt})`, () => {
      for (const [rows, n] of [
        [700, 3],
        [90, 24],
        [33, 131],
        [20, 256],
        [4100, 1],
      ]) {
        const x = randNormal([rows, n], 0, 4, dt, gen);
        const s = x.storage;
        // masked entries (−∞), a row with NaN, a row of only −∞ (NaN, as PyTorch), a huge logit
        for (let i = 0; i < s.length; i += 7) s[i] = -Infinity;
        if (n > 2) {
          s[n + 1] = NaN;
          for (let j = 0; j < n; j++) s[2 * n + j] = -Infinity;
          s[3 * n] = 1e30;
        }
        const got = logSoftmaxSimd(x)!;
        const ref = softmaxCpu(x, true);
        // the row constant x − out = m + log Σ exp(x − m)
        expect(ulps(got, ref, K.binary(x, ref, 'sub'), dt, 'forward')).toBeLessThanOrEqual(1);
        const g = randNormal([rows, n], 0, 1, dt, gen);
        const ref2 = softmaxGradCpu(ref, g, true);
        // exp(y)·Σg: the float64 sums (in another order) are exact to a few ulp of Σ|g|; f32's exp(y) within one ulp
        const scale = K.binary(K.unary(ref, 'exp'), K.reduce(K.unary(g, 'abs'), 'sum', [1], true), 'mul');
        expect(ulps(logSoftmaxGradSimd(ref, g)!, ref2, scale, dt, 'backward')).toBeLessThanOrEqual(1);
      }
      // a strided input is staged
      const xt = V.transpose(randNormal([64, 70], 0, 3, dt, gen), 0, 1);
      const ref = softmaxCpu(xt, true);
      expect(ulps(logSoftmaxSimd(xt)!, ref, K.binary(xt, ref, 'sub'), dt, 'forward')).toBeLessThanOrEqual(1);
    });
  }
});

describe('SIMD batch norm vs plain TS', () => {
  for (const dt of DTYPES) {
    it(`forward bitwise equal to batchNormCpu, backward to the generic composition (${dt})`, () => {
      simdTuning.force = false; // rsqrt of the [D] variances: the plain-TS kernel, as in training
      for (const [N, D] of [
        [300, 32],
        [700, 7],
        [25, 130],
      ]) {
        const x = randNormal([N, D], 0.5, 3, dt, gen);
        const w = randNormal([D], 1, 0.3, dt, gen),
          b = randNormal([D], 0, 0.3, dt, gen);
        const g = randNormal([N, D], 0, 1, dt, gen);
        for (const [ww, bb] of [
          [w, b],
          [null, null],
        ]) {
          const got = batchNormSimd(x, ww, bb, 1e-5)!;
          const ref = batchNormCpu(x, ww, bb, 1e-5);
          for (let i = 0; i < 2; i++) expect(bits(got[i]).equals(bits(ref[i]))).toBe(true);
          const gg = batchNormGradSimd(x, g, ref[1], ww, 1e-5)!;
          const gr = batchNormGradGeneric(x, g, ref[1], ww, 1e-5);
          for (let i = 0; i < 2; i++) expect(bits(gg[i]).equals(bits(gr[i]))).toBe(true);
          // the backward's passes split into the smallest tasks over 2 threads (segments of rows)
          setNumThreads(2);
          simdTuning.force = true;
          const gs = batchNormGradSimd(x, g, ref[1], ww, 1e-5)!;
          simdTuning.force = false;
          setNumThreads(prevThreads);
          for (let i = 0; i < 2; i++) expect(bits(gs[i]).equals(bits(gr[i]))).toBe(true);
        }
      }
      // a strided input is staged
      const xt = V.transpose(randNormal([16, 300], 0, 1, dt, gen), 0, 1);
      expect(bits(batchNormSimd(xt, null, null, 1e-5)![0]).equals(bits(batchNormCpu(xt, null, null, 1e-5)[0]))).toBe(true);
      simdTuning.force = prevForce;
    });
  }
});
