/**
 * The SIMD gemm writes a resident output in place (no scratch, no copy out): it must write C's
 * own elements and nothing else — not the elements past a last, partial row or column panel, not
 * a byte before or after C — for every edge kernel, K blocking (edge tiles reload their sums),
 * batches and 1 or 2 threads; and give the same bits as into an ordinary array (f32: the exact
 * emulation of the kernel's k-ordered multiply-adds).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gemm } from '../../../../src/tensor/backends/cpu/gemm.js';
import { getNumThreads, setNumThreads } from '../../../../src/tensor/backends/cpu/pool.js';
import { allocateOut, isResident, residentScope } from '../../../../src/tensor/backends/cpu/resident.js';
import { GEMM_SHAPES } from '../../../../src/tensor/backends/cpu/wasm/gemm.js';
import { emulateGemm, fusedMulAdd, mulAdd, randomF32 } from './gemm-emulate.js';

type FloatArray = Float32Array | Float64Array;

/** Whether this x86-64 Linux CPU has FMA3 (undefined: cannot tell). */
function cpuHasFma(): boolean | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return undefined;
  const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  return flags.split(/\s+/).includes('fma');
}

/** [batch, M, N, K]: partial row panels, last column panels of 1–3 vectors (full or partial), K > 256. */
const SHAPES: [number, number, number, number][] = [
  [1, 50, 61, 600],
  [3, 7, 13, 30],
  [2, 130, 100, 300],
  [1, 64, 64, 40],
  [4, 20, 16, 20],
  [2, 40, 70, 290],
];
const PAD = 32;
const SENTINEL = 7.25;

function withThreads<T>(n: number, fn: () => T): T {
  const prev = getNumThreads();
  setNumThreads(n);
  try {
    return fn();
  } finally {
    setNumThreads(prev);
  }
}

const fma = cpuHasFma();

describe('gemm into a resident output, in place', () => {
  for (const dt of ['f32', 'f64'] as const) {
    for (const [batch, M, N, K] of SHAPES) {
      it(`${dt} ${batch}x[${M},${K}]x[${K},${N}]: C's elements only, 1 and 2 threads, same bits as an ordinary array`, () => {
        const Arr = dt === 'f32' ? Float32Array : Float64Array;
        const a = Arr.from(randomF32(batch * M * K, M + N));
        const b = Arr.from(randomF32(batch * K * N, K + 7));
        const n = batch * M * N;
        const plain = new Arr(n).fill(Number.NaN);
        gemm(a, b, plain, batch, M, N, K, false, false, M * K, K * N);
        if (dt === 'f32' && fma !== undefined && GEMM_SHAPES.f32.fma === fma) {
          // the ordinary array holds the k-ordered multiply-adds (independent emulation)
          for (let z = 0; z < batch; z++) {
            const want = emulateGemm(
              (a as Float32Array).subarray(z * M * K, (z + 1) * M * K),
              (b as Float32Array).subarray(z * K * N, (z + 1) * K * N),
              M,
              N,
              K,
              fma ? fusedMulAdd : mulAdd,
            );
            expect(Array.from(plain.subarray(z * M * N, (z + 1) * M * N))).toEqual(Array.from(want));
          }
        }
        for (const threads of [1, 2]) {
          residentScope(
            {},
            () => {
              const block = allocateOut(dt, n + 2 * PAD, false) as FloatArray;
              expect(isResident(block)).toBe(true);
              block.fill(SENTINEL);
              const c = block.subarray(PAD, PAD + n);
              withThreads(threads, () => gemm(a, b, c, batch, M, N, K, false, false, M * K, K * N));
              for (let i = 0; i < PAD; i++) {
                expect(block[i]).toBe(SENTINEL);
                expect(block[PAD + n + i]).toBe(SENTINEL);
              }
              let diff = -1;
              for (let i = 0; i < n && diff < 0; i++) if (!Object.is(c[i], plain[i])) diff = i;
              expect(diff).toBe(-1);
            },
            () => [],
          );
        }
      });
    }
  }
});
