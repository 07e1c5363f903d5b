/**
 * The relaxed-SIMD gemm micro-kernel (fused multiply-add), the default on this Node: it is in
 * use, its f32 results are bit for bit the sequential fused multiply-add in k order (on a CPU with
 * FMA), the same for 1 and 2 threads, and within the error bound of the plain-TS reference.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { emulateGemm, EMULATED_SHAPES, firstDiff, fusedMulAdd, mulAdd, randomF32 } from './gemm-emulate.js';

// the default (relaxed SIMD wanted), whatever the environment says; read when the kernels' module loads
const before = process.env.MEGA_RELAXED_SIMD;
delete process.env.MEGA_RELAXED_SIMD;
const { gemm, gemmReference } = await import('../../../../src/tensor/backends/cpu/gemm.js');
const { getNumThreads, setNumThreads } = await import('../../../../src/tensor/backends/cpu/pool.js');
const { relaxedSimd } = await import('../../../../src/tensor/backends/cpu/wasm/features.js');
const { GEMM_SHAPES } = await import('../../../../src/tensor/backends/cpu/wasm/gemm.js');

afterAll(() => {
  if (before !== undefined) process.env.MEGA_RELAXED_SIMD = before;
});

/** Whether this x86-64 Linux CPU has FMA3 (V8 then compiles relaxed_madd to vfmadd). */
function cpuHasFma(): boolean | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return undefined;
  const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  return flags.split(/\s+/).includes('fma');
}

function run(M: number, N: number, K: number, threads: number, seed: number): { a: Float32Array; b: Float32Array; c: Float32Array } {
  const a = randomF32(M * K, seed);
  const b = randomF32(K * N, seed + 1);
  const c = new Float32Array(M * N).fill(Number.NaN);
  const prev = getNumThreads();
  setNumThreads(threads);
  try {
    gemm(a, b, c, 1, M, N, K, false, false, 0, 0);
  } finally {
    setNumThreads(prev);
  }
  return { a, b, c };
}

const fma = cpuHasFma();

describe('gemm with relaxed SIMD (fused multiply-add)', () => {
  it('is in use on this Node: relaxed SIMD enabled, 3×12 f32 tile with relaxed_madd', () => {
    expect(relaxedSimd()).toBe(true);
    expect(GEMM_SHAPES.f32).toMatchObject({ MR: 3, NR: 12, fma: true });
    expect(GEMM_SHAPES.f64.fma).toBe(true);
  });

  it('the emulations differ where one rounding matters (the test below can tell the kernels apart)', () => {
    const x = Math.fround(1 + 2 ** -12);
    expect(fusedMulAdd(x, x, -(1 + 2 ** -11))).toBe(2 ** -24);
    expect(mulAdd(x, x, -(1 + 2 ** -11))).toBe(0);
  });

  for (const [M, N, K] of EMULATED_SHAPES) {
    it(`${M}x${N}x${K}: bitwise the k-ordered ${fma === false ? 'unfused' : 'fused'} multiply-add, 1 and 2 threads`, () => {
      const one = run(M, N, K, 1, M + K);
      const two = run(M, N, K, 2, M + K);
      expect(firstDiff(one.c, two.c)).toBe(-1);
      if (fma === undefined) return; // not x86-64 Linux: fused or not is the hardware's choice; the bound test covers it
      const want = emulateGemm(one.a, one.b, M, N, K, fma ? fusedMulAdd : mulAdd);
      expect(firstDiff(one.c, want)).toBe(-1);
    });
  }

  it('the crafted case: one rounding gives 2^-24 where mul + add gives 0', () => {
    // c = a0·b0 + a1·b1 (+ zeros) with a0·b0 = -(1 + 2^-11), a1·b1 = (1 + 2^-12)² = 1 + 2^-11 + 2^-24
    const [M, N, K] = [12, 24, 16];
    const a = new Float32Array(M * K),
      b = new Float32Array(K * N);
    for (let i = 0; i < M; i++) {
      a[i * K] = -(1 + 2 ** -11);
      a[i * K + 1] = 1 + 2 ** -12;
    }
    for (let j = 0; j < N; j++) {
      b[j] = 1;
      b[N + j] = 1 + 2 ** -12;
    }
    const c = new Float32Array(M * N);
    gemm(a, b, c, 1, M, N, K, false, false, 0, 0);
    expect(Array.from(c)).toEqual(new Array(M * N).fill(fma === false ? 0 : 2 ** -24));
  });

  it('f32 and f64 stay within (K+2)·u·Σ|a·b| of the plain-TS reference (float64 sums) at large K', () => {
    const [M, N, K] = [40, 50, 3000];
    const a64 = new Float64Array(M * K).map((_, i) => Math.fround(Math.sin(i) * 0.9));
    const b64 = new Float64Array(K * N).map((_, i) => Math.fround(Math.cos(i * 1.3) * 0.9));
    const ref = new Float64Array(M * N);
    const mag = new Float64Array(M * N);
    gemmReference(a64, b64, ref, 1, M, N, K, false, false, 0, 0);
    gemmReference(a64.map(Math.abs), b64.map(Math.abs), mag, 1, M, N, K, false, false, 0, 0);
    const c32 = new Float32Array(M * N);
    gemm(Float32Array.from(a64), Float32Array.from(b64), c32, 1, M, N, K, false, false, 0, 0);
    const c64 = new Float64Array(M * N);
    gemm(a64, b64, c64, 1, M, N, K, false, false, 0, 0);
    let worst32 = 0,
      worst64 = 0;
    for (let i = 0; i < ref.length; i++) {
      worst32 = Math.max(worst32, Math.abs(c32[i] - ref[i]) / ((K + 2) * 2 ** -24 * mag[i]));
      worst64 = Math.max(worst64, Math.abs(c64[i] - ref[i]) / ((K + 2) * 2 ** -53 * mag[i]));
    }
    expect(worst32).toBeLessThanOrEqual(1);
    // the float64 reference itself is off by up to (K+2)·2^-53·Σ|a·b|: allow both errors
    expect(worst64).toBeLessThanOrEqual(2);
  });
});
