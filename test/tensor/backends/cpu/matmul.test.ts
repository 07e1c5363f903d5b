import { describe, expect, it } from 'vitest';
import {
  gemm,
  getNumThreads,
  setNumThreads,
  threadStats,
  type FloatArray,
} from '../../../../src/tensor/backends/cpu/matmul.js';

type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;

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

/** Naive triple loop in float64: the reference. */
function naive(
  a: FloatArray, b: FloatArray, batch: number, M: number, N: number, K: number,
  tA: boolean, tB: boolean, aS: number, bS: number,
): Float64Array {
  const c = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          s += a[z * aS + (tA ? k * M + i : i * K + k)] * b[z * bS + (tB ? j * K + k : k * N + j)];
        }
        c[(z * M + i) * N + j] = s;
      }
    }
  }
  return c;
}

interface Case {
  batch: number;
  M: number;
  N: number;
  K: number;
  /** 'a' = A broadcast (aBatchStride 0), 'b' = B broadcast, 'ab' = both */
  bcast?: '' | 'a' | 'b' | 'ab';
}

/** Run gemm and the reference; return the max relative error (|Δ| / (|ref| + scale)). */
function maxRelError(Arr: Ctor, cs: Case, tA: boolean, tB: boolean, seed: number): number {
  const { batch, M, N, K } = cs;
  const bc = cs.bcast ?? '';
  const aS = bc.includes('a') ? 0 : M * K;
  const bS = bc.includes('b') ? 0 : K * N;
  const a = random(Arr, Math.max(1, (aS === 0 ? 1 : batch) * M * K), seed);
  const b = random(Arr, Math.max(1, (bS === 0 ? 1 : batch) * K * N), seed + 1);
  const c = new Arr(batch * M * N).fill(Number.NaN); // must be fully overwritten
  gemm(a, b, c, batch, M, N, K, tA, tB, aS, bS);
  const ref = naive(a, b, batch, M, N, K, tA, tB, aS, bS);
  // Errors are relative to the size of the terms (sqrt(K) for these inputs), not of the sum,
  // which can cancel to ~0.
  const scale = Math.sqrt(Math.max(K, 1)) * 1e-3;
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(c[i] - ref[i]) / (Math.abs(ref[i]) + scale);
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

const DTYPES: [string, Ctor, number][] = [
  ['f32', Float32Array, 1e-5],
  ['f64', Float64Array, 1e-12],
];

const TRANS: [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('gemm', () => {
  for (const [dt, Arr, tol] of DTYPES) {
    describe(dt, () => {
      for (const cs of SHAPES) {
        for (const [tA, tB] of TRANS) {
          const name = `${cs.batch}x${cs.M}x${cs.N}x${cs.K}${cs.bcast ? ` bcast=${cs.bcast}` : ''} tA=${tA} tB=${tB}`;
          it(name, () => {
            expect(maxRelError(Arr, cs, tA, tB, 17)).toBeLessThanOrEqual(tol);
          });
        }
      }

      it('large enough for the worker threads, 2 threads', () => {
        const prev = getNumThreads();
        setNumThreads(2);
        try {
          for (const [tA, tB] of TRANS) {
            expect(maxRelError(Arr, { batch: 1, M: 130, N: 133, K: 129 }, tA, tB, 5)).toBeLessThanOrEqual(tol);
          }
          expect(maxRelError(Arr, { batch: 5, M: 64, N: 70, K: 96, bcast: 'a' }, false, true, 6)).toBeLessThanOrEqual(tol);
          expect(maxRelError(Arr, { batch: 5, M: 64, N: 70, K: 96, bcast: 'b' }, true, false, 7)).toBeLessThanOrEqual(tol);
          expect(maxRelError(Arr, { batch: 5, M: 64, N: 70, K: 96 }, false, false, 8)).toBeLessThanOrEqual(tol);
          // many small matrices: several whole matrices per task
          expect(maxRelError(Arr, { batch: 1500, M: 8, N: 9, K: 130 }, true, true, 9)).toBeLessThanOrEqual(tol);
        } finally {
          setNumThreads(prev);
        }
      });

      it('1 thread and 2 threads give bitwise-equal results', async () => {
        const prev = getNumThreads();
        const [M, N, K, batch] = [200, 190, 150, 2];
        const a = random(Arr, batch * M * K, 1);
        const b = random(Arr, batch * K * N, 2);
        const c1 = new Arr(batch * M * N);
        const c2 = new Arr(batch * M * N);
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
    });
  }

  it('K = 0 gives zeros', () => {
    const c = new Float64Array(6).fill(7);
    gemm(new Float64Array(0), new Float64Array(0), c, 1, 2, 3, 0, false, false, 0, 0);
    expect(Array.from(c)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('rejects mixed dtypes and short arrays', () => {
    expect(() => gemm(new Float32Array(4), new Float64Array(4), new Float32Array(4), 1, 2, 2, 2, false, false, 0, 0)).toThrow(TypeError);
    expect(() => gemm(new Float64Array(3), new Float64Array(4), new Float64Array(4), 1, 2, 2, 2, false, false, 0, 0)).toThrow(RangeError);
  });

  it('setNumThreads validates and getNumThreads reports', () => {
    const prev = getNumThreads();
    expect(prev).toBeGreaterThanOrEqual(1);
    expect(() => setNumThreads(0)).toThrow(RangeError);
    setNumThreads(3);
    expect(getNumThreads()).toBe(3);
    setNumThreads(prev);
  });
});
