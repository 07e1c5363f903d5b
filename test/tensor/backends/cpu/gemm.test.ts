import { afterAll, describe, expect, it } from 'vitest';
import { gemm, gemmReference, threadStats, type FloatArray } from '../../../../src/tensor/backends/cpu/gemm.js';
import { getNumThreads, setNumThreads } from '../../../../src/tensor/backends/cpu/pool.js';
import { simdStatus } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import { gemmLimits } from '../../../../src/tensor/backends/cpu/wasm/gemm-run.js';

type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;
type Gemm = typeof gemm;

/** Small deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function random(Arr: Ctor, n: number, seed: number): FloatArray {
  const r = rng(seed);
  const x = new Arr(n);
  for (let i = 0; i < n; i++) x[i] = r() * 2 - 1;
  return x;
}

/** Naive triple loop in float64: the reference, and Σ|a·b| per element (the error scale). */
function naive(
  a: FloatArray,
  b: FloatArray,
  batch: number,
  M: number,
  N: number,
  K: number,
  tA: boolean,
  tB: boolean,
  aS: number,
  bS: number,
): { c: Float64Array; mag: Float64Array } {
  const c = new Float64Array(batch * M * N);
  const mag = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0,
          m = 0;
        for (let k = 0; k < K; k++) {
          const p = a[z * aS + (tA ? k * M + i : i * K + k)] * b[z * bS + (tB ? j * K + k : k * N + j)];
          s += p;
          m += Math.abs(p);
        }
        c[(z * M + i) * N + j] = s;
        mag[(z * M + i) * N + j] = m;
      }
    }
  }
  return { c, mag };
}

interface Case {
  batch: number;
  M: number;
  N: number;
  K: number;
  /** 'a' = A broadcast (aBatchStride 0), 'b' = B broadcast, 'ab' = both */
  bcast?: '' | 'a' | 'b' | 'ab';
}

/**
 * Run `fn` and the naive reference; return the worst error in units of the rounding bound:
 * |c − ref| / (γ · Σ|a·b|), where γ = (K + 2)·u for sums in the element type (u = 2⁻²⁴ for f32,
 * 2⁻⁵³ for f64) — the classical bound for a recursive dot product — so a correct kernel gives ≤ 1.
 */
function errorRatio(fn: Gemm, Arr: Ctor, cs: Case, tA: boolean, tB: boolean, seed: number): number {
  const { batch, M, N, K } = cs;
  const bc = cs.bcast ?? '';
  const aS = bc.includes('a') ? 0 : M * K;
  const bS = bc.includes('b') ? 0 : K * N;
  const a = random(Arr, Math.max(1, (aS === 0 ? 1 : batch) * M * K), seed);
  const b = random(Arr, Math.max(1, (bS === 0 ? 1 : batch) * K * N), seed + 1);
  const c = new Arr(batch * M * N).fill(Number.NaN); // must be fully overwritten
  fn(a, b, c, batch, M, N, K, tA, tB, aS, bS);
  const ref = naive(a, b, batch, M, N, K, tA, tB, aS, bS);
  const u = Arr === Float32Array ? 2 ** -24 : 2 ** -53;
  const gamma = (K + 2) * u;
  let worst = 0;
  for (let i = 0; i < ref.c.length; i++) {
    const e = Math.abs(c[i] - ref.c[i]) / (gamma * ref.mag[i] + 1e-300);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

const SHAPES: Case[] = [
  { batch: 1, M: 1, N: 1, K: 1 },
  { batch: 1, M: 7, N: 13, K: 5 },
  { batch: 1, M: 2, N: 50, K: 9 }, // M < tile rows: unpacked path
  { batch: 1, M: 40, N: 3, K: 20 }, // N < tile cols: unpacked path
  { batch: 1, M: 16, N: 16, K: 16 },
  { batch: 1, M: 33, N: 65, K: 17 },
  { batch: 1, M: 4, N: 4, K: 300 },
  { batch: 3, M: 20, N: 9, K: 30 },
  { batch: 3, M: 20, N: 9, K: 30, bcast: 'a' },
  { batch: 3, M: 20, N: 9, K: 30, bcast: 'b' },
  { batch: 3, M: 20, N: 9, K: 30, bcast: 'ab' },
  { batch: 4, M: 31, N: 37, K: 29, bcast: 'a' },
  { batch: 4, M: 31, N: 37, K: 29, bcast: 'b' },
  { batch: 2, M: 33, N: 65, K: 17 },
];

const SHAPES_BIG: Case[] = [
  { batch: 1, M: 130, N: 133, K: 129 },
  { batch: 1, M: 100, N: 72, K: 600 }, // several K blocks
  { batch: 5, M: 64, N: 70, K: 96, bcast: 'a' },
  { batch: 5, M: 64, N: 70, K: 96, bcast: 'b' },
  { batch: 5, M: 64, N: 70, K: 96 },
];

const DTYPES: [string, Ctor][] = [
  ['f32', Float32Array],
  ['f64', Float64Array],
];

const IMPLS: [string, Gemm][] = [
  ['simd', gemm],
  ['reference (plain TS)', gemmReference],
];

const TRANS: [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` with `n` threads, restoring the previous count. */
function withThreads<T>(n: number, fn: () => T): T {
  const prev = getNumThreads();
  setNumThreads(n);
  try {
    return fn();
  } finally {
    setNumThreads(prev);
  }
}

afterAll(() => {
  gemmLimits.cBlockBytes = 64 << 20;
});

describe('gemm', () => {
  it('uses the WebAssembly SIMD kernels on this machine', () => {
    expect(simdStatus()).toEqual({ enabled: true });
  });

  for (const [implName, fn] of IMPLS) {
    for (const [dt, Arr] of DTYPES) {
      describe(`${implName} ${dt}`, () => {
        for (const cs of SHAPES) {
          for (const [tA, tB] of TRANS) {
            const name = `${cs.batch}x${cs.M}x${cs.N}x${cs.K}${cs.bcast ? ` bcast=${cs.bcast}` : ''} tA=${tA} tB=${tB}`;
            it(name, () => {
              expect(errorRatio(fn, Arr, cs, tA, tB, 17)).toBeLessThanOrEqual(1);
            });
          }
        }

        it('large enough for the worker threads, 1 and 2 threads', () => {
          for (const threads of [1, 2]) {
            withThreads(threads, () => {
              for (const cs of SHAPES_BIG) {
                for (const [tA, tB] of TRANS) expect(errorRatio(fn, Arr, cs, tA, tB, 5)).toBeLessThanOrEqual(1);
              }
              // many small matrices: several whole matrices per task
              expect(errorRatio(fn, Arr, { batch: 1500, M: 8, N: 9, K: 130 }, true, true, 9)).toBeLessThanOrEqual(1);
            });
          }
        });
      });
    }
  }

  for (const [dt, Arr] of DTYPES) {
    it(`simd ${dt}: blocked C (row blocks, batch groups) gives the same bits as unblocked`, () => {
      const cases: [number, number, number, number][] = [
        [1, 203, 77, 45],
        [6, 41, 33, 20],
      ];
      for (const [batch, M, N, K] of cases) {
        const a = random(Arr, batch * M * K, 3);
        const b = random(Arr, batch * K * N, 4);
        const c1 = new Arr(batch * M * N);
        const c2 = new Arr(batch * M * N);
        gemm(a, b, c1, batch, M, N, K, false, true, M * K, K * N);
        gemmLimits.cBlockBytes = 4096; // forces tiny row blocks / single-matrix groups
        try {
          withThreads(2, () => gemm(a, b, c2, batch, M, N, K, false, true, M * K, K * N));
        } finally {
          gemmLimits.cBlockBytes = 64 << 20;
        }
        expect(Buffer.from(c2.buffer).equals(Buffer.from(c1.buffer))).toBe(true);
      }
    });

    it(`simd ${dt}: 1 thread and 2 threads give bitwise-equal results; workers really run`, async () => {
      const [M, N, K, batch] = [200, 190, 150, 2];
      const a = random(Arr, batch * M * K, 1);
      const b = random(Arr, batch * K * N, 2);
      const c1 = new Arr(batch * M * N);
      const c2 = new Arr(batch * M * N);
      const prev = getNumThreads();
      try {
        setNumThreads(1);
        gemm(a, b, c1, batch, M, N, K, false, true, M * K, K * N);
        setNumThreads(2);
        gemm(a, b, c2, batch, M, N, K, false, true, M * K, K * N);
        expect(Buffer.from(c2.buffer).equals(Buffer.from(c1.buffer))).toBe(true);
        // Workers start in the background; make sure one really computed part of a product.
        for (let i = 0; i < 100 && threadStats().workersReady < 1; i++) await sleep(50);
        expect(threadStats().workersReady).toBe(1);
        for (let i = 0; i < 20 && threadStats().workerTasks === 0; i++) {
          c2.fill(0);
          gemm(a, b, c2, batch, M, N, K, false, true, M * K, K * N);
          expect(Buffer.from(c2.buffer).equals(Buffer.from(c1.buffer))).toBe(true);
        }
        expect(threadStats().workerTasks).toBeGreaterThan(0);
      } finally {
        setNumThreads(prev);
      }
    });

    it(`reference ${dt}: 1 thread and 2 threads give bitwise-equal results`, () => {
      const [M, N, K, batch] = [200, 190, 150, 2];
      const a = random(Arr, batch * M * K, 1);
      const b = random(Arr, batch * K * N, 2);
      const c1 = new Arr(batch * M * N);
      const c2 = new Arr(batch * M * N);
      withThreads(1, () => gemmReference(a, b, c1, batch, M, N, K, false, true, M * K, K * N));
      withThreads(2, () => gemmReference(a, b, c2, batch, M, N, K, false, true, M * K, K * N));
      expect(Buffer.from(c2.buffer).equals(Buffer.from(c1.buffer))).toBe(true);
    });

    it(`simd ${dt} agrees with the plain-TS reference`, () => {
      const [M, N, K, batch] = [67, 45, 300, 3];
      const a = random(Arr, batch * M * K, 11);
      const b = random(Arr, K * N, 12);
      const c1 = new Arr(batch * M * N);
      const c2 = new Arr(batch * M * N);
      gemm(a, b, c1, batch, M, N, K, true, false, M * K, 0);
      gemmReference(a, b, c2, batch, M, N, K, true, false, M * K, 0);
      const tol = dt === 'f32' ? 1e-4 : 1e-12;
      for (let i = 0; i < c1.length; i++) expect(Math.abs(c1[i] - c2[i])).toBeLessThanOrEqual(tol * Math.sqrt(K));
    });
  }

  for (const [implName, fn] of IMPLS) {
    it(`${implName}: K = 0 gives zeros`, () => {
      const c = new Float64Array(6).fill(7);
      fn(new Float64Array(0), new Float64Array(0), c, 1, 2, 3, 0, false, false, 0, 0);
      expect(Array.from(c)).toEqual([0, 0, 0, 0, 0, 0]);
    });

    it(`${implName}: rejects mixed dtypes and short arrays`, () => {
      expect(() => fn(new Float32Array(4), new Float64Array(4), new Float32Array(4), 1, 2, 2, 2, false, false, 0, 0)).toThrow(TypeError);
      expect(() => fn(new Float64Array(3), new Float64Array(4), new Float64Array(4), 1, 2, 2, 2, false, false, 0, 0)).toThrow(RangeError);
    });
  }

  it('setNumThreads validates and getNumThreads reports', () => {
    const prev = getNumThreads();
    expect(prev).toBeGreaterThanOrEqual(1);
    expect(() => setNumThreads(0)).toThrow(RangeError);
    setNumThreads(3);
    expect(getNumThreads()).toBe(3);
    setNumThreads(prev);
  });
});
