/**
 * The SIMD gemm reads an operand in place or packs it first, depending on its layout and size
 * (gemm-run.ts `directOperands`): A in place when its k step is short (row-major, short columns),
 * packed for long columns; B in place when its columns are contiguous and it is small with few
 * rows of A, else packed. Every combination must give the bits of the k-ordered multiply-adds
 * (exact emulation), for 1 and 2 threads, and for batched products.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gemm } from '../../../../src/tensor/backends/cpu/gemm.js';
import { getNumThreads, setNumThreads } from '../../../../src/tensor/backends/cpu/pool.js';
import { GEMM_SHAPES } from '../../../../src/tensor/backends/cpu/wasm/gemm.js';
import { emulateGemm, firstDiff, fusedMulAdd, mulAdd, randomF32 } from './gemm-emulate.js';

function cpuHasFma(): boolean | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return undefined;
  const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  return flags.split(/\s+/).includes('fma');
}

/** R × C row-major → its transpose (C × R row-major). */
function transpose(x: Float32Array, R: number, C: number): Float32Array {
  const t = new Float32Array(R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) t[c * R + r] = x[r * C + c];
  return t;
}

const fma = cpuHasFma();
const step = fma === false ? mulAdd : fusedMulAdd;

/** [batch, M, N, K]: B in place (M ≤ 64, small B or B ≥ 2 MiB) and packed (M > 64); A's columns long (M > 256) when transposed. */
const SHAPES: [number, number, number, number][] = [
  [3, 40, 70, 40],
  [1, 20, 64, 8200],
  [1, 20, 16, 300],
  [2, 300, 29, 50],
  [1, 290, 64, 270],
];

describe('gemm operands read in place or packed', () => {
  it('the kernel this file checks: relaxed SIMD on an x86-64 CPU whose FMA is known', () => {
    expect(GEMM_SHAPES.f32.fma).toBe(true);
  });
  for (const [batch, M, N, K] of SHAPES) {
    for (const [tA, tB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ]) {
      it(`${batch}x[${M},${K}]x[${K},${N}] transA=${tA} transB=${tB}: the k-ordered multiply-adds, 1 and 2 threads`, () => {
        if (fma === undefined) return; // not x86-64 Linux: fused or not is the hardware's choice (bound tests cover it)
        const a = randomF32(batch * M * K, M * 3 + K);
        const b = randomF32(batch * K * N, N * 5 + K);
        const aIn = new Float32Array(batch * M * K),
          bIn = new Float32Array(batch * K * N);
        const want = new Float32Array(batch * M * N);
        for (let z = 0; z < batch; z++) {
          const az = a.subarray(z * M * K, (z + 1) * M * K),
            bz = b.subarray(z * K * N, (z + 1) * K * N);
          aIn.set(tA ? transpose(az, M, K) : az, z * M * K);
          bIn.set(tB ? transpose(bz, K, N) : bz, z * K * N);
          want.set(emulateGemm(az, bz, M, N, K, step), z * M * N);
        }
        for (const threads of [1, 2]) {
          const prev = getNumThreads();
          setNumThreads(threads);
          const c = new Float32Array(batch * M * N).fill(Number.NaN);
          try {
            gemm(aIn, bIn, c, batch, M, N, K, tA, tB, M * K, K * N);
          } finally {
            setNumThreads(prev);
          }
          expect(firstDiff(c, want)).toBe(-1);
        }
      });
    }
  }
});
