/**
 * The gpujs fused kernels (EMA kernel build, its VJP, softmax backward) against the CPU kernels in
 * f64, to FORMAT.md's f32 tolerance (`max|T − R| ≤ 1e-6 + 2e-4·max|R|`), computed on the device:
 * no CPU fallback and no read-back until the result is asked for.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipWithout } from '../../../system.js';
import { gpuAvailable } from '../gpu-probe.js';
import { setBackend } from '../../../../src/tensor/backend.js';
import { emaKernelCpu, emaKernelGradCpu, softmaxGradCpu } from '../../../../src/tensor/backends/cpu/fused.js';
import {
  emaCoeffsGeneric,
  emaCoeffsGradGeneric,
  emaKernelGeneric,
  emaKernelGradGeneric,
  softmaxGradGeneric,
  toeplitzGeneric,
  toeplitzGradGeneric,
} from '../../../../src/tensor/backends/generic-fused.js';
import { toeplitzCpu, toeplitzGradCpu } from '../../../../src/tensor/backends/cpu/toeplitz.js';
import { emaCoeffsCpu, emaCoeffsGradCpu } from '../../../../src/tensor/backends/cpu/ema-coeffs.js';
import { fallbacks, GpuData, GpuDevice, resetFallbacks, selectBackend } from '../../../../src/tensor/backends/gpujs/index.js';
import { emaKernelGpu, emaKernelGradGpu, softmaxGradGpu } from '../../../../src/tensor/backends/gpujs/kernels.js';
import { fftConvGpuBy } from '../../../../src/tensor/backends/gpujs/fftconv.js';
import { fftConvCpu } from '../../../../src/tensor/backends/cpu/fftconv.js';
import { fromStorage, Tensor } from '../../../../src/tensor/tensor.js';
import { Generator } from '../../../../src/tensor/random.js';
import { skipWithout } from '../../../system.js';
import { gpuAvailable } from '../gpu-probe.js';
import { expectClose } from '../../../../src/verify/compare.js';

// without a GPU mode (and without CI) skipped, named in the run's summary line (test/system.ts)
const skip = skipWithout({ gpu: gpuAvailable() });

/** Uniform values in [lo, hi) as an f64 tensor (deterministic). */
function uniform(gen: Generator, shape: number[], lo: number, hi: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const s = new Float64Array(n);
  for (let i = 0; i < n; i++) s[i] = lo + (hi - lo) * gen.uniform();
  return fromStorage(s, shape);
}

function f32(t: Tensor): Tensor {
  return fromStorage(Float32Array.from(t.toTypedArray() as Float64Array), [...t.shape]);
}

/** FORMAT.md's f32 rule (the first element outside it is named on failure). */
function expectF32Close(got: Tensor, ref: Tensor): void {
  expectClose(got, ref, { precision: 'f32' });
}

describe.skipIf(skip)('gpujs fused kernels', () => {
  beforeAll(() => {
    selectBackend('gpujs');
  }, 180_000);
  afterAll(() => setBackend('cpu'));

  /** Runs `fn` and checks it stayed on the device (no fallback, no read-back, a launch). */
  function onDevice(fn: () => Tensor): Tensor {
    const d = GpuDevice.get()!;
    resetFallbacks();
    const reads = d.counters.readbacks,
      launches = d.counters.launches;
    const out = fn();
    expect(out.device).toBeInstanceOf(GpuData);
    expect(d.counters.readbacks).toBe(reads);
    expect(d.counters.launches).toBeGreaterThan(launches);
    expect(fallbacks()).toEqual({});
    return out;
  }

  const gen = new Generator(7);
  // q in (0, 1) as MultiHeadEMA makes it (1 − p·α), including values close to 1 (long memory)
  const D = 6,
    N = 4,
    L = 300;
  const coef = uniform(gen, [D, N], -1, 1),
    q = uniform(gen, [D, N], 0.5, 0.999);

  it('emaKernel equals the f64 CPU kernel', () => {
    const got = onDevice(() => emaKernelGpu(f32(coef), f32(q), L));
    expectF32Close(got, emaKernelCpu(coef, q, L));
  });

  it('emaKernelGrad equals the f64 CPU kernel (strided gradient view)', () => {
    const gT = uniform(gen, [L, D], -1, 1); // g given as a transposed view [D, L]
    const view = (t: Tensor) => new Tensor(t.data, [D, L], [1, D], 0);
    const got = onDevice(() => emaKernelGradGpu(f32(coef), f32(q), view(f32(gT))));
    expectF32Close(got, emaKernelGradCpu(coef, q, view(gT)));
  });

  for (const log of [false, true]) {
    it(`softmaxGrad${log ? ' (log-softmax)' : ''} equals the f64 CPU kernel`, () => {
      const x = uniform(gen, [3, 5, 17], -3, 3).toTypedArray();
      const ys = new Float64Array(x.length);
      for (let r = 0; r < x.length; r += 17) {
        let s = 0;
        for (let j = 0; j < 17; j++) s += Math.exp(x[r + j]);
        for (let j = 0; j < 17; j++) ys[r + j] = log ? x[r + j] - Math.log(s) : Math.exp(x[r + j]) / s;
      }
      const y = fromStorage(ys, [3, 5, 17]);
      const g = uniform(gen, [3, 5, 17], -1, 1);
      const got = onDevice(() => softmaxGradGpu(f32(y), f32(g), log));
      expectF32Close(got, softmaxGradCpu(y, g, log));
    });
  }

  it('emaCoeffs and emaCoeffsGrad (generic: compositions of primitives) equal the f64 CPU kernels', () => {
    const [D, N] = [12, 4];
    const [d, a, b] = [0, 1, 2].map(() => uniform(gen, [D, N, 1], -2, 2));
    const [g, gc, gq] = [0, 1, 2].map(() => uniform(gen, [D, N], -1, 1));
    expectF32Close(
      onDevice(() => emaCoeffsGeneric(f32(d), f32(a), f32(b), f32(g), 0.5)),
      emaCoeffsCpu(d, a, b, g, 0.5),
    );
    const got = emaCoeffsGradGeneric(f32(d), f32(a), f32(b), f32(g), 0.5, f32(gc), f32(gq));
    const ref = emaCoeffsGradCpu(d, a, b, g, 0.5, gc, gq);
    for (let i = 0; i < 4; i++) {
      expect(got[i].device).toBeInstanceOf(GpuData);
      expectF32Close(got[i], ref[i]);
    }
  });

  it('toeplitz and toeplitzGrad (generic: the indexSelect / indexAdd of the index) equal the f64 CPU kernels', () => {
    const M = 40,
      n = 33;
    const w = uniform(gen, [2 * M - 1], -1, 1),
      g = uniform(gen, [n, n], -1, 1);
    expectF32Close(
      onDevice(() => toeplitzGeneric(f32(w), n)),
      toeplitzCpu(w, n),
    );
    expectF32Close(
      onDevice(() => toeplitzGradGeneric(f32(g), 2 * M - 1)),
      toeplitzGradCpu(g, 2 * M - 1),
    );
  });
});

describe('generic fused kernels (compositions of primitives)', () => {
  const gen = new Generator(11);
  const D = 5,
    N = 3,
    L = 40;
  const coef = uniform(gen, [D, N], -1, 1),
    q = uniform(gen, [D, N], 0.3, 0.99);
  const rel = (a: Tensor, b: Tensor) => {
    const x = a.toTypedArray(),
      y = b.toTypedArray();
    let e = 0,
      m = 0;
    for (let i = 0; i < y.length; i++) {
      e = Math.max(e, Math.abs(x[i] - y[i]));
      m = Math.max(m, Math.abs(y[i]));
    }
    return e / m;
  };
  it('equal the CPU fused kernels in f64 on the cpu backend', () => {
    expect(rel(emaKernelGeneric(coef, q, L), emaKernelCpu(coef, q, L))).toBeLessThan(1e-12);
    const g = uniform(gen, [D, L], -1, 1);
    const got = emaKernelGradGeneric(coef, q, g);
    expect(got.shape).toEqual([2, D, N]);
    expect(rel(got, emaKernelGradCpu(coef, q, g))).toBeLessThan(1e-12);
    const y = uniform(gen, [4, 9], 0, 1),
      gy = uniform(gen, [4, 9], -1, 1);
    for (const log of [false, true]) expect(rel(softmaxGradGeneric(y, gy, log), softmaxGradCpu(y, gy, log))).toBeLessThan(1e-12);
  });
});

describe.skipIf(skip)('gpujs FFT convolution', () => {
  beforeAll(() => {
    selectBackend('gpujs');
  }, 180_000);
  afterAll(() => setBackend('cpu'));
  const gen = new Generator(3);
  // [x shape, k shape, start, length]: causal (start 0), bidirectional (start Lk−1), broadcast
  // leading axes, a length that is not a power of two, a window past Lx
  const cases: [number[], number[], number, number][] = [
    [[2, 3, 40], [3, 40], 0, 40],
    [[2, 3, 33], [3, 65], 32, 33],
    [[1, 5], [4, 7], 0, 11],
    [[3, 100], [100], 0, 100],
  ];
  for (const [xs, ks, start, length] of cases) {
    it(`equals the f64 CPU convolution: x [${xs}], k [${ks}], window [${start}, ${start + length})`, () => {
      const x = uniform(gen, xs, -1, 1),
        k = uniform(gen, ks, -1, 1);
      const ref = fftConvCpu(x, k, start, length);
      const d = GpuDevice.get()!;
      resetFallbacks();
      const reads = d.counters.readbacks;
      const l0 = d.counters.launches;
      const fft = fftConvGpuBy(f32(x), f32(k), start, length, 'fft');
      const N = 2 ** Math.ceil(Math.log2(Math.max(xs[xs.length - 1] + ks[ks.length - 1] - 1, start + length)));
      expect(d.counters.launches - l0).toBe(3 * Math.log2(N) + 4); // load ×2, passes ×3, product, window
      const direct = fftConvGpuBy(f32(x), f32(k), start, length, 'direct');
      expect(d.counters.readbacks).toBe(reads);
      expect(fallbacks()).toEqual({});
      expectF32Close(fft, ref);
      expectF32Close(direct, ref);
    });
  }
  it('the FFT path transforms strided views (a transposed input)', () => {
    const xT = uniform(gen, [50, 4], -1, 1),
      k = uniform(gen, [4, 50], -1, 1);
    const view = (t: Tensor) => new Tensor(t.data, [4, 50], [1, 4], 0);
    expectF32Close(fftConvGpuBy(view(f32(xT)), f32(k), 0, 50, 'fft'), fftConvCpu(view(xT), k, 0, 50));
  });
});
