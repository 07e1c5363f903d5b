/**
 * The WebAssembly EMA kernel build and VJP (ema-simd.ts, wasm/ema.ts) against the plain-TS
 * kernels of fused.ts: bitwise equal (every element, ±0 and NaN included) in f32 and f64, for
 * lengths that are and are not multiples of the block (`emaBlock(L)` values), odd N, kernels that reach the
 * cut-off (in one lane of a pair before the other), resident and ordinary operands, and 1 vs 2
 * threads vs forced smallest tasks. `fdexp` (fdlibm's exp in wasm) equals `Math.exp` bitwise.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { emaKernelGradSimd, emaKernelSimd } from '../../../../src/tensor/backends/cpu/ema-simd.js';
import { copyCpu } from '../../../../src/tensor/backends/cpu/elementwise.js';
import { emaKernelCpu, emaKernelGradCpu } from '../../../../src/tensor/backends/cpu/fused.js';
import { getNumThreads, setNumThreads } from '../../../../src/tensor/backends/cpu/pool.js';
import { isResident, residentScope } from '../../../../src/tensor/backends/cpu/resident.js';
import { emaBlock } from '../../../../src/tensor/backends/cpu/wasm/ema.js';
import { simdTuning, wasmRuntime } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import type { FloatDType } from '../../../../src/tensor/dtype.js';
import * as K from '../../../../src/tensor/kernels.js';
import { Generator, randNormal, randUniform } from '../../../../src/tensor/random.js';
import type { Tensor } from '../../../../src/tensor/tensor.js';

const gen = new Generator(13);
const prevThreads = getNumThreads();
const prevForce = simdTuning.force;
afterAll(() => {
  setNumThreads(prevThreads);
  simdTuning.force = prevForce;
});

/** Index of the first element where a and b differ (Object.is: ±0 distinct, NaN equal), or -1. */
function firstDiff(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  const x = copyCpu(a).storage,
    y = copyCpu(b).storage;
  for (let i = 0; i < y.length; i++) if (!Object.is(x[i], y[i])) return i;
  return -1;
}

/**
 * coef ~ N(0, 1), q uniform in (lo, hi); then a few special states: q tiny (cut-off after a few
 * blocks), q = 1, q slightly above 1, coef = 0 and −0.
 */
function operands(D: number, N: number, dt: FloatDType, lo = 0.3, hi = 0.9999): [Tensor, Tensor] {
  const coef = randNormal([D, N], 0, 1, dt, gen);
  const q = randUniform([D, N], lo, hi, dt, gen);
  const qs = q.storage,
    cs = coef.storage;
  const special: [number, number][] = [
    [1, 1e-3],
    [2, 0.02],
    [5, 1],
    [7, 1.01],
    [8, 0.5],
  ];
  for (const [i, v] of special) if (i < qs.length) qs[(i * 7) % qs.length] = v;
  if (cs.length > 11) {
    cs[3] = 0;
    cs[11] = -0;
  }
  return [coef, q];
}

const CASES: [number, number, number][] = [
  [1, 1, 1],
  [3, 8, 24],
  [3, 2, 31],
  [5, 3, 32],
  [4, 16, 33],
  [6, 5, 100],
  [8, 16, 1000],
  [2, 7, 1024],
  [3, 16, 4099],
];

describe('wasm fdexp', () => {
  it('equals Math.exp bitwise (random and special arguments)', () => {
    const fdexp = wasmRuntime()!.main.ex.fdexp as (x: number) => number;
    const xs = [0, -0, 1, -1, Infinity, -Infinity, NaN, 709.78, 709.79, 710, -745.1, -745.2, -708.5, -1022 * Math.LN2];
    xs.push(1e-300, 0.5 * Math.LN2, 1.5 * Math.LN2, 2 ** -28, -(2 ** -29));
    for (let i = 0; i < 100000; i++) {
      xs.push((Math.random() * 2 - 1) * 750, -Math.random() * 2, (Math.random() - 0.5) * 1e-6);
      xs.push(Math.floor(Math.random() * 4096) * Math.log(Math.random()));
    }
    const bad = xs.filter((x) => !Object.is(fdexp(x), Math.exp(x)));
    expect(bad.slice(0, 5)).toEqual([]);
  });
});

describe('wasm emaKernel / emaKernelGrad vs plain TS', () => {
  for (const dt of ['f32', 'f64'] as FloatDType[]) {
    it(`bitwise equal, forward and VJP (${dt}; 1 thread, 2 threads, forced smallest tasks)`, () => {
      try {
        for (const [D, N, L] of CASES) {
          const [coef, q] = operands(D, N, dt);
          const g = randNormal([D, L], 0, 1, dt, gen);
          const refK = emaKernelCpu(coef, q, L),
            refG = emaKernelGradCpu(coef, q, g);
          for (const [threads, force] of [
            [1, true],
            [2, false],
            [2, true],
          ] as const) {
            if (!force && D * N * L < 1 << 12) continue; // declined below that size unless forced
            setNumThreads(threads);
            simdTuning.force = force;
            const k = emaKernelSimd(coef, q, L),
              gr = emaKernelGradSimd(coef, q, g);
            expect(k, `${D}×${N}×${L}`).not.toBeNull();
            expect(gr).not.toBeNull();
            expect(firstDiff(k!, refK), `kernel ${D}×${N}×${L} ${threads}t`).toBe(-1);
            expect(firstDiff(gr!, refG), `grad ${D}×${N}×${L} ${threads}t`).toBe(-1);
          }
        }
      } finally {
        setNumThreads(prevThreads);
        simdTuning.force = prevForce;
      }
    });
  }

  it('the cut-off path: small q (kernels decay below 1e-280 early), lanes of a pair stopping apart', () => {
    simdTuning.force = true;
    try {
      for (const dt of ['f32', 'f64'] as FloatDType[]) {
        const [coef, q] = operands(4, 9, dt, 1e-4, 0.2); // ln q ≤ −1.6: cut-off within 400 values
        const qs = q.storage;
        for (let i = 0; i < qs.length; i += 4) qs[i] = 0.999; // neighbours with and without a cut-off
        const L = 777;
        const g = randNormal([4, L], 0, 1, dt, gen);
        expect(firstDiff(emaKernelSimd(coef, q, L)!, emaKernelCpu(coef, q, L))).toBe(-1);
        expect(firstDiff(emaKernelGradSimd(coef, q, g)!, emaKernelGradCpu(coef, q, g))).toBe(-1);
        const k = copyCpu(emaKernelSimd(coef, q, L)!).storage;
        expect(k[L - 1]).not.toBe(0); // row 0 has q = 0.999
      }
      // rows whose block l0 (the one starting at or below 128) starts just above / below the
      // cut-off (l0·ln q = −643 / −650): the first is computed (values ~1e−280), the second is
      // exactly zero from there on
      const L = 200;
      const l0 = Math.floor(128 / emaBlock(L)) * emaBlock(L);
      const coef = randUniform([2, 3], 0.5, 1, 'f64', gen);
      const q = randUniform([2, 3], 0, 1, 'f64', gen);
      for (let i = 0; i < 3; i++) {
        q.storage[i] = Math.exp(-643 / l0);
        q.storage[3 + i] = Math.exp(-650 / l0);
      }
      const k = emaKernelSimd(coef, q, L)!;
      expect(firstDiff(k, emaKernelCpu(coef, q, L))).toBe(-1);
      expect(k.storage[l0]).toBeGreaterThan(1e-290);
      expect(k.storage[L + l0 - 1]).toBeGreaterThan(0);
      expect(k.storage[L + l0]).toBe(0);
    } finally {
      simdTuning.force = prevForce;
    }
  });

  it('reads a resident gradient in place and writes resident outputs (same bits)', () => {
    for (const dt of ['f32', 'f64'] as FloatDType[]) {
      const [coef, q] = operands(6, 16, dt);
      const L = 515;
      const g0 = randNormal([6, L], 0, 1, dt, gen);
      const refK = emaKernelCpu(coef, q, L),
        refG = emaKernelGradCpu(coef, q, K.binary(g0, g0, 'mul'));
      const got: Tensor[] = [];
      residentScope(
        {},
        () => {
          const g = K.binary(g0, g0, 'mul'); // resident [D, L]
          expect(isResident(g.storage)).toBe(true);
          const k = emaKernelSimd(coef, q, L)!,
            gr = emaKernelGradSimd(coef, q, g)!;
          expect(isResident(k.storage) && isResident(gr.storage)).toBe(true);
          got.push(k, gr);
        },
        () => got,
      );
      expect(firstDiff(got[0], refK)).toBe(-1);
      expect(firstDiff(got[1], refG)).toBe(-1);
    }
  });

  it('declines tiny sizes unless forced (the TS kernel runs them)', () => {
    simdTuning.force = false;
    const [coef, q] = operands(2, 2, 'f64');
    expect(emaKernelSimd(coef, q, 10)).toBeNull();
    simdTuning.force = prevForce;
  });
});
