/**
 * The WebAssembly SIMD kernels against the plain-TypeScript reference kernels: elementwise
 * (unary, binary with broadcasting and strided views), sums, softmax and its backward, the FFT
 * convolution, strided gemm; 1 vs 2 threads bitwise; the faster JS data-movement paths.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { BinaryOp, UnaryOp } from '../../../../src/tensor/backend.js';
import { binaryCpu, copyCpu, unaryCpu } from '../../../../src/tensor/backends/cpu/elementwise.js';
import { indexAddFast, indexSelectFast, padFast } from '../../../../src/tensor/backends/cpu/indexing-fast.js';
import { fftConvCpu } from '../../../../src/tensor/backends/cpu/fftconv.js';
import { directTerms, fftConvLimits, fftConvRegime, fftConvSimd } from '../../../../src/tensor/backends/cpu/fftconv-simd.js';
import { softmaxGradCpu } from '../../../../src/tensor/backends/cpu/fused.js';
import { indexAddCpu, indexSelectCpu, padCpu } from '../../../../src/tensor/backends/cpu/indexing.js';
import { gemmStrided, type StridedOperand } from '../../../../src/tensor/backends/cpu/gemm.js';
import { getNumThreads, setNumThreads } from '../../../../src/tensor/backends/cpu/pool.js';
import { simdTuning } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import { reduceCpu, softmaxCpu } from '../../../../src/tensor/backends/cpu/reduce.js';
import { binarySimd, reduceSimd, softmaxGradSimd, softmaxSimd, unarySimd } from '../../../../src/tensor/backends/cpu/simd.js';
import { SIMD_BINARY, SIMD_UNARY } from '../../../../src/tensor/backends/cpu/wasm/elementwise.js';
import { fromArray } from '../../../../src/tensor/create.js';
import type { FloatDType } from '../../../../src/tensor/dtype.js';
import { Generator, randNormal } from '../../../../src/tensor/random.js';
import type { Tensor } from '../../../../src/tensor/tensor.js';
import * as V from '../../../../src/tensor/view.js';
import { sameBits } from './bits.js';

const gen = new Generator(99);
const DIRECT_DEFAULT = fftConvLimits.directWork;
const DTYPES: FloatDType[] = ['f32', 'f64'];
const prevThreads = getNumThreads();
afterAll(() => setNumThreads(prevThreads));

/** Max |a − b| / (atol + rtol·|b|) over all elements (NaN must match NaN). */
function ratio(a: Tensor, b: Tensor, rtol: number, atol: number): number {
  expect(a.shape).toEqual(b.shape);
  const x = copyCpu(a).storage,
    y = copyCpu(b).storage;
  let worst = 0;
  for (let i = 0; i < y.length; i++) {
    if (Number.isNaN(y[i]) || Number.isNaN(x[i])) {
      if (!(Number.isNaN(y[i]) && Number.isNaN(x[i]))) return Infinity;
      continue;
    }
    if (x[i] === y[i]) continue;
    worst = Math.max(worst, Math.abs(x[i] - y[i]) / (atol + rtol * Math.abs(y[i])));
  }
  return worst;
}

const tol = (dt: FloatDType) => (dt === 'f32' ? { rtol: 4e-7, atol: 1e-37 } : { rtol: 1e-15, atol: 1e-300 });

/** Inputs with special values mixed in (±0, ±∞, NaN, large, tiny). */
function special(shape: number[], dt: FloatDType, scale = 3): Tensor {
  const t = randNormal(shape, 0, scale, dt, gen);
  const s = t.storage;
  const sp = [0, -0, Infinity, -Infinity, NaN, 80, -80, 700, -700, 1e-30, 88.5, -87.5, 709.7, -708.5];
  // exp's edges: the last finite results and the first infinite ones, the flush to zero below
  // e^-87 (f32) / e^-708 (f64), arguments far outside
  sp.push(88.72283172607422, 88.72283935546875, 88.8, 89, 89.2, 89.5, 90, 100, 1e4, -86.9, -86.99, -87, -87.01, -90, -104, -1e4);
  sp.push(709.78, 709.782712893384, 709.7827128933841, 709.9, 710.2, 710.5, 720, -707.9, -708, -708.1, -708.3, -708.6, -709, -745.2, -746);
  for (let i = 0; i < sp.length && i * 97 < s.length; i++) s[i * 97] = sp[i];
  return t;
}

describe('SIMD unary vs plain TS', () => {
  for (const dt of DTYPES) {
    for (const op of SIMD_UNARY) {
      it(`${op} ${dt}`, () => {
        for (const shape of [[4099], [33, 130]]) {
          const x = special(shape, dt);
          const ok = op === 'sqrt' || op === 'rsqrt' ? unaryCpu(x, 'abs') : x;
          const got = unarySimd(ok, op as UnaryOp)!;
          const ref = unaryCpu(ok, op as UnaryOp);
          const { rtol, atol } = tol(dt);
          // exp-based ops: a few ulp, results below ~1e-38 / 1e-308 flushed to zero
          const r = ['exp', 'sigmoid', 'silu'].includes(op) ? ratio(got, ref, 8 * rtol, dt === 'f32' ? 1e-37 : 1e-307) : ratio(got, ref, rtol, atol);
          expect(r).toBeLessThanOrEqual(1);
        }
        // a strided (transposed) view goes through staging
        const xt = V.transpose(randNormal([70, 65], 0, 2, dt, gen), 0, 1);
        const a = op === 'sqrt' || op === 'rsqrt' ? unaryCpu(xt, 'abs') : xt;
        expect(ratio(unarySimd(a, op as UnaryOp)!, unaryCpu(a, op as UnaryOp), 8 * tol(dt).rtol, dt === 'f32' ? 1e-37 : 1e-307)).toBeLessThanOrEqual(1);
      });
    }
  }
});

describe('SIMD binary vs plain TS (bitwise: one rounding per op in both)', () => {
  const cases: [string, number[], number[], ((t: Tensor) => Tensor)?][] = [
    ['same shape', [37, 129], [37, 129]],
    ['row broadcast', [300, 67], [67]],
    ['column broadcast', [50, 3, 129], [50, 3, 1]],
    ['outer product', [1, 1, 130], [40, 7, 1]],
    ['scalar', [5000], []],
    ['scalar first', [], [4097]],
    [
      'transposed operand (staged)',
      [80, 90],
      [80, 90],
      (t) => V.transpose(t.shape.length ? randNormal([t.shape[1], t.shape[0]], 0, 1, t.dtype, gen) : t, 0, 1),
    ],
  ];
  for (const dt of DTYPES) {
    for (const op of SIMD_BINARY) {
      it(`${op} ${dt}`, () => {
        for (const [, sa, sb, tf] of cases) {
          const a = randNormal(sa, 0, 1, dt, gen);
          let b = randNormal(sb, 0.5, 1, dt, gen);
          if (tf) b = tf(b);
          const got = binarySimd(a, b, op as BinaryOp) ?? binarySimd(b, a, op as BinaryOp);
          expect(got).not.toBeNull();
          const g1 = binarySimd(a, b, op as BinaryOp);
          if (g1) expect(sameBits(g1, binaryCpu(a, b, op as BinaryOp))).toBe(true);
          const g2 = binarySimd(b, a, op as BinaryOp);
          if (g2) expect(sameBits(g2, binaryCpu(b, a, op as BinaryOp))).toBe(true);
        }
      });
    }
  }
});

describe('SIMD sums, softmax, softmax backward vs plain TS', () => {
  for (const dt of DTYPES) {
    it(`sum over blocks of axes ${dt}`, () => {
      const x = randNormal([6, 5, 70, 9], 0, 1, dt, gen);
      for (const axes of [[3], [2, 3], [0], [0, 1], [1, 2], [0, 1, 2, 3]]) {
        const got = reduceSimd(x, 'sum', axes, true)!;
        const ref = reduceCpu(x, 'sum', axes, true);
        // leading/middle blocks sum in the same order as the reference: bitwise equal
        if (axes[axes.length - 1] !== 3) expect(sameBits(got, ref)).toBe(true);
        else expect(ratio(got, ref, dt === 'f32' ? 6e-8 : 1e-13, 1e-12)).toBeLessThanOrEqual(1);
      }
      expect(reduceSimd(x, 'sum', [0, 2], false)).toBeNull(); // not one block
      const xt = V.permute(x, [3, 1, 2, 0]); // staged
      expect(ratio(reduceSimd(xt, 'sum', [0, 1], false)!, reduceCpu(xt, 'sum', [0, 1], false), 1e-6, 1e-12)).toBeLessThanOrEqual(1);
    });

    it(`softmax ${dt}`, () => {
      const x = special([40, 131], dt, 4);
      const s = x.storage;
      for (let j = 0; j < 131; j++) s[5 * 131 + j] = -Infinity; // an all −∞ row → NaN
      const got = softmaxSimd(x, false)!;
      const ref = softmaxCpu(x, false);
      expect(ratio(got, ref, dt === 'f32' ? 4e-6 : 1e-14, dt === 'f32' ? 1e-37 : 1e-300)).toBeLessThanOrEqual(1);
      expect(softmaxSimd(x, true)).toBeNull();
    });

    it(`softmax backward ${dt}`, () => {
      const y = softmaxCpu(randNormal([33, 257], 0, 2, dt, gen), false);
      const g = V.transpose(randNormal([257, 33], 0, 1, dt, gen), 0, 1);
      const got = softmaxGradSimd(y, g, false)!;
      const ref = softmaxGradCpu(y, g, false);
      expect(ratio(got, ref, dt === 'f32' ? 1e-5 : 1e-13, dt === 'f32' ? 1e-9 : 1e-18)).toBeLessThanOrEqual(1);
    });
  }
});

describe('SIMD FFT convolution vs plain TS (float64 FFT)', () => {
  for (const dt of DTYPES) {
    it(`broadcast kernel, per-row kernels, flipped views ${dt}`, () => {
      const cases: [number[], number[], number, number, boolean][] = [
        [[3, 5, 300], [5, 300], 0, 300, false],
        [[2, 7, 257], [2, 7, 257], 0, 513, false],
        [[4, 16, 200], [16, 399], 199, 200, false],
        [[2, 3, 400], [3, 400], 40, 420, true],
        [[1, 1, 300], [9, 300], -5, 310, false],
        // FFT sizes at the wrap-around limits (fftSize): start + length = 129 needs 256 …
        [[3, 64], [3, 129], 64, 65, false],
        // … so does full − start = 129 (the last output reads full[227] in a size-128 transform)
        [[3, 100], [3, 129], 99, 29, false],
        [[3, 100], [3, 100], -60, 120, false],
      ];
      for (const [xs, ks, start, len, flip] of cases) {
        const x = randNormal(xs, 0, 1, dt, gen);
        let k = randNormal(ks, 0, 1, dt, gen);
        if (flip) k = V.flip(k, -1);
        const ref = fftConvCpu(x, k, start, len);
        let mx = 0;
        for (const v of ref.storage) mx = Math.max(mx, Math.abs(v));
        // both SIMD regimes, forced
        for (const directWork of [0, Infinity]) {
          fftConvLimits.directWork = directWork;
          const got = fftConvSimd(x, k, start, len)!;
          fftConvLimits.directWork = DIRECT_DEFAULT;
          expect(got).not.toBeNull();
          expect(ratio(got, ref, 0, (dt === 'f32' ? 3e-6 : 1e-13) * mx)).toBeLessThanOrEqual(1);
        }
      }
      // small products stay on the plain-TS direct sum
      expect(fftConvSimd(randNormal([2, 20], 0, 1, dt, gen), randNormal([2, 3], 0, 1, dt, gen), 0, 20)).toBeNull();
    });

    it(`direct sum: the EMA's short rows, views, outputs outside the full convolution ${dt}`, () => {
      const cases: [number[], number[], number, number, boolean][] = [
        // the bidirectional EMA of a short sequence (kernel 2L − 1, outputs [L − 1, 2L − 1)) …
        [[5, 16, 40], [16, 79], 39, 40, false],
        // … its backward with respect to the kernel (per-row kernels: a flipped gradient)
        [[5, 16, 40], [5, 16, 40], 0, 79, true],
        // causal, a length not a multiple of the three outputs computed together
        [[3, 9, 25], [9, 25], 0, 25, false],
        // outputs partly and wholly outside [0, Lx + Lk − 1), rows fewer than a group
        [[2, 3, 17], [3, 11], -9, 40, false],
        [[2, 3, 17], [3, 11], 20, 30, false],
      ];
      for (const [xs, ks, start, len, flip] of cases) {
        expect(fftConvRegime(xs[xs.length - 1], ks[ks.length - 1], start, len)).toBe('direct');
        const x = randNormal(xs, 0, 1, dt, gen);
        let k = randNormal(ks, 0, 1, dt, gen);
        if (flip) k = V.flip(k, -1);
        const got = fftConvSimd(x, k, start, len)!;
        const ref = fftConvCpu(x, k, start, len);
        let mx = 0;
        for (const v of ref.storage) mx = Math.max(mx, Math.abs(v));
        expect(ratio(got, ref, 0, (dt === 'f32' ? 3e-6 : 1e-13) * mx)).toBeLessThanOrEqual(1);
      }
      // x as the [B, D, L] view of a time-major [L, B, D] tensor (rows read with a time stride)
      const xt = V.permute(randNormal([40, 5, 16], 0, 1, dt, gen), [1, 2, 0]);
      const k = randNormal([16, 79], 0, 1, dt, gen);
      const ref = fftConvCpu(xt, k, 39, 40);
      let mx = 0;
      for (const v of ref.storage) mx = Math.max(mx, Math.abs(v));
      expect(ratio(fftConvSimd(xt, k, 39, 40)!, ref, 0, (dt === 'f32' ? 3e-6 : 1e-13) * mx)).toBeLessThanOrEqual(1);
    });
  }

  it('regimes: tiny products plain, short rows direct, long rows FFT', () => {
    expect(fftConvRegime(20, 3, 0, 20)).toBe('plain');
    expect(fftConvRegime(24, 47, 23, 24)).toBe('direct'); // ListOps-size EMA
    expect(fftConvRegime(40, 79, 39, 40)).toBe('direct');
    expect(fftConvRegime(1024, 2047, 1023, 1024)).toBe('fft');
    expect(fftConvRegime(784, 784, 0, 784)).toBe('fft');
    // the count of terms: causal L(L+1)/2, bidirectional L², nothing outside the full convolution
    expect(directTerms(40, 40, 0, 40)).toBe(820);
    expect(directTerms(40, 79, 39, 40)).toBe(1600);
    expect(directTerms(10, 5, 20, 7)).toBe(0);
  });
});

describe('strided gemm', () => {
  for (const dt of DTYPES) {
    it(`views without copies equal the materialised product ${dt}`, () => {
      // A: [3, 40, 30] read as rows of a [40, 3, 30] storage (a transposed time/batch layout)
      const Ast = randNormal([40, 3, 30], 0, 1, dt, gen);
      const Bst = randNormal([3, 25, 30], 0, 1, dt, gen); // B = Bst[b]ᵀ: [30, 25]
      const A: StridedOperand = { data: Ast.storage as Float32Array, off: 0, rs: 90, cs: 1, bs: 30 };
      const B: StridedOperand = { data: Bst.storage as Float32Array, off: 0, rs: 1, cs: 30, bs: 750 };
      const c = new (dt === 'f32' ? Float32Array : Float64Array)(3 * 40 * 25);
      gemmStrided(A, B, c, 3, 40, 25, 30);
      for (let b = 0; b < 3; b++) {
        for (let i = 0; i < 40; i += 7) {
          for (let j = 0; j < 25; j += 3) {
            let s = 0;
            for (let k = 0; k < 30; k++) s += Ast.storage[i * 90 + b * 30 + k] * Bst.storage[b * 750 + j * 30 + k];
            expect(Math.abs(c[(b * 40 + i) * 25 + j] - s)).toBeLessThanOrEqual((dt === 'f32' ? 1e-5 : 1e-13) * 32);
          }
        }
      }
    });
  }
});

describe('determinism: 1 and 2 threads give the same bits', () => {
  for (const dt of DTYPES) {
    it(dt, () => {
      const x = randNormal([300, 257], 0, 2, dt, gen);
      const y = randNormal([257], 0, 1, dt, gen);
      const k = randNormal([30, 600], 0, 1, dt, gen);
      const xs = randNormal([10, 30, 600], 0, 1, dt, gen);
      const run = () => [
        unarySimd(x, 'silu')!,
        binarySimd(x, y, 'mul')!,
        reduceSimd(x, 'sum', [0], false)!,
        reduceSimd(x, 'sum', [1], false)!,
        softmaxSimd(x, false)!,
        softmaxGradSimd(softmaxCpu(x, false), x, false)!,
        fftConvSimd(xs, k, 0, 600)!,
        fftConvSimd(V.narrow(xs, -1, 0, 40), V.narrow(k, -1, 0, 79), 39, 40)!, // the direct sum
      ];
      setNumThreads(1);
      const one = run();
      setNumThreads(2);
      const two = run();
      simdTuning.force = true; // also with every job split into the smallest tasks
      const forced = run();
      simdTuning.force = false;
      one.forEach((t, i) => {
        expect(sameBits(t, two[i])).toBe(true);
        expect(sameBits(t, forced[i])).toBe(true);
      });
    });
  }
});

describe('fast data-movement paths equal the general kernels', () => {
  for (const dt of ['f32', 'f64', 'i32'] as const) {
    it(`pad / indexSelect / indexAdd ${dt}`, () => {
      const x =
        dt === 'i32'
          ? fromArray(
              Int32Array.from({ length: 6 * 40 }, (_, i) => i),
              [6, 40],
            )
          : randNormal([6, 40], 0, 1, dt, gen);
      for (const pads of [
        [
          [1, 2],
          [3, 20],
        ],
        [
          [0, 0],
          [-2, 5],
        ],
        [
          [-1, 1],
          [0, 0],
        ],
      ] as [number, number][][]) {
        const got = padFast(x, pads, 1.5);
        if (got) expect(sameBits(got, padCpu(x, pads, 1.5))).toBe(true);
      }
      const xt = V.transpose(x, 0, 1);
      const strided = padFast(
        V.transpose(xt, 0, 1),
        [
          [1, 1],
          [2, 2],
        ],
        0,
      );
      expect(
        strided &&
          sameBits(
            strided,
            padCpu(
              x,
              [
                [1, 1],
                [2, 2],
              ],
              0,
            ),
          ),
      ).toBe(true);
      const flat = V.reshape(x, [-1]);
      const idx = fromArray(
        Int32Array.from({ length: 500 }, (_, i) => (i * 37) % 240),
        [500],
      );
      expect(sameBits(indexSelectFast(flat, 0, idx)!, indexSelectCpu(flat, 0, idx))).toBe(true);
      const src = indexSelectCpu(flat, 0, idx);
      expect(sameBits(indexAddFast([240], 0, idx, src)!, indexAddCpu([240], 0, idx, src))).toBe(true);
      const bad = fromArray(Int32Array.from([0, 240]), [2]);
      expect(() => indexSelectFast(flat, 0, bad)).toThrow(/out of range/);
    });
  }
});
