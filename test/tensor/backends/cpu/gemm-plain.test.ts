/**
 * The plain SIMD128 gemm micro-kernel (f32x4.mul + f32x4.add), kept where relaxed SIMD is
 * unavailable and selected here with `MEGA_RELAXED_SIMD=0` (set before the kernels' module loads;
 * vitest gives every test file its own module graph): it is in use, and its f32 results are bit
 * for bit the k-ordered mul-then-add, the same for 1 and 2 threads.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { emulateGemm, EMULATED_SHAPES, firstDiff, mulAdd, randomF32 } from './gemm-emulate.js';

const before = process.env.MEGA_RELAXED_SIMD;
process.env.MEGA_RELAXED_SIMD = '0';
const { gemm } = await import('../../../../src/tensor/backends/cpu/gemm.js');
const { getNumThreads, setNumThreads } = await import('../../../../src/tensor/backends/cpu/pool.js');
const { relaxedSimd } = await import('../../../../src/tensor/backends/cpu/wasm/features.js');
const { GEMM_SHAPES, PLAIN_GEMM_SHAPES } = await import('../../../../src/tensor/backends/cpu/wasm/gemm.js');

afterAll(() => {
  if (before === undefined) delete process.env.MEGA_RELAXED_SIMD;
  else process.env.MEGA_RELAXED_SIMD = before;
});

describe('gemm with plain SIMD128 (MEGA_RELAXED_SIMD=0)', () => {
  it('is in use: relaxed SIMD off, the 4×8 f32 mul + add tile', () => {
    expect(relaxedSimd()).toBe(false);
    expect(GEMM_SHAPES).toBe(PLAIN_GEMM_SHAPES);
    expect(GEMM_SHAPES.f32).toMatchObject({ MR: 4, NR: 8 });
    expect(GEMM_SHAPES.f32.fma).toBeUndefined();
  });

  for (const [M, N, K] of EMULATED_SHAPES) {
    it(`${M}x${N}x${K}: bitwise the k-ordered mul then add, 1 and 2 threads`, () => {
      const a = randomF32(M * K, M + K);
      const b = randomF32(K * N, M + K + 1);
      const out: Float32Array[] = [];
      const prev = getNumThreads();
      try {
        for (const t of [1, 2]) {
          setNumThreads(t);
          const c = new Float32Array(M * N).fill(Number.NaN);
          gemm(a, b, c, 1, M, N, K, false, false, 0, 0);
          out.push(c);
        }
      } finally {
        setNumThreads(prev);
      }
      expect(firstDiff(out[0], out[1])).toBe(-1);
      expect(firstDiff(out[0], emulateGemm(a, b, M, N, K, mulAdd))).toBe(-1);
    });
  }
});
