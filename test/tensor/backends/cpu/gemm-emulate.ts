/**
 * Exact emulations of the SIMD gemm's f32 arithmetic, element by element in plain TypeScript,
 * for the bitwise tests of both micro-kernels (gemm-fma.test.ts, gemm-plain.test.ts): every
 * output is the sum over k increasing from 0, each step rounded to f32 —
 * `mulAdd`: product rounded, then the sum rounded (f32x4.mul + f32x4.add);
 * `fusedMulAdd`: a·b + c rounded once (relaxed_madd on a CPU with FMA).
 */

/** fround(c + fround(a·b)). */
export function mulAdd(a: number, b: number, c: number): number {
  return Math.fround(c + Math.fround(a * b));
}

/**
 * The f32 rounding of the exact a·b + c (f32 inputs). a·b is exact in a double (24 + 24 bits);
 * the double sum s carries an error e (TwoSum); rounding s to f32 is the rounding of s + e except
 * when s lies exactly halfway between two floats and e ≠ 0 — then e picks the side.
 */
export function fusedMulAdd(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const bb = s - p;
  const e = p - (s - bb) + (c - bb);
  const r = Math.fround(s);
  const d = s - r;
  if (e !== 0 && d !== 0) {
    const other = r + 2 * d; // the neighbour across s, a float exactly when s is a midpoint
    if (Math.fround(other) === other && Math.sign(e) === Math.sign(d)) return other;
  }
  return r;
}

/** C = A·B (row-major M×K times K×N, f32), each element summed with `step` for k = 0 … K-1. */
export function emulateGemm(
  a: Float32Array,
  b: Float32Array,
  M: number,
  N: number,
  K: number,
  step: (a: number, b: number, c: number) => number,
): Float32Array {
  const c = new Float32Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s = step(a[i * K + k], b[k * N + j], s);
      c[i * N + j] = s;
    }
  }
  return c;
}

/** Deterministic f32 data in (-1, 1) (mulberry32). */
export function randomF32(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    x[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return x;
}

/** Index of the first element where the bits differ, or -1. */
export function firstDiff(x: Float32Array, y: Float32Array): number {
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return i;
  return x.length === y.length ? -1 : Math.min(x.length, y.length);
}

/**
 * Shapes [M, N, K]: tile edges for 4×8 and 3×12 (last row panels of 1 and 2 rows, last column
 * panels of every vector count, full or partial), several K blocks (K > 256: edge tiles reload
 * their running sums), enough work for the pool; all above the size where gemm hands products to
 * the plain-TS kernel.
 */
export const EMULATED_SHAPES: [number, number, number][] = [
  [7, 13, 30],
  [12, 24, 64],
  [37, 29, 50],
  [50, 61, 600],
  [130, 100, 300],
  // last column panel of 4, 8, 10, 6 columns (the narrower edge kernels, a partial last vector)
  [61, 64, 300],
  [9, 8, 260],
  [40, 70, 290],
  [5, 6, 100],
  // one-vector last column panels run tiles of two row panels (f32 with fused multiply-add):
  // pairs only, the last pair's second panel partial (47 rows = 15 panels + 2 rows)
  [47, 64, 40],
];
