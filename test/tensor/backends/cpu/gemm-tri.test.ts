/**
 * The SIMD gemm's triangular structures (wasm/gemm.ts `TRI`, the products of square-chunk causal
 * attention): with an operand's promised zeros in place, A_LOWER, A_UPPER and B_LOWER skip
 * their terms and must give the full product's bits (up to the sign of a zero); OUT_LOWER gives
 * tril of the full product, bit for bit. Checked against the unstructured SIMD product of the same
 * operands, over tile edges, K blocks, row blocks of C, transposed operands, batches, both
 * dtypes, 1 and 2 threads.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { gemmStrided, TRI, type StridedOperand, type Tri } from '../../../../src/tensor/backends/cpu/gemm.js';
import { getNumThreads, setNumThreads } from '../../../../src/tensor/backends/cpu/pool.js';
import { gemmLimits } from '../../../../src/tensor/backends/cpu/wasm/gemm-run.js';
import { simdTuning } from '../../../../src/tensor/backends/cpu/wasm/runtime.js';
import type { Triangle } from '../../../../src/tensor/backend.js';
import { triMatmulGeneric } from '../../../../src/tensor/backends/generic-fused.js';
import { fromArray } from '../../../../src/tensor/create.js';
import { matmul, triMatmul } from '../../../../src/tensor/kernels.js';
import { Tensor } from '../../../../src/tensor/tensor.js';

type F = Float32Array | Float64Array;

/** Deterministic values in [−1, 1) (a small LCG), never zero. */
function values(n: number, seed: number, f64: boolean): F {
  const out = f64 ? new Float64Array(n) : new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1 || 0.5;
  }
  return out;
}

/**
 * A `[batch, R, C]` operand with element (z, r, c) = v[z·R·C + r·C + c], laid out row-major
 * (`t` false) or column-major (`t` true), zero where `zero(r, c)`.
 */
function operand(v: F, batch: number, R: number, C: number, t: boolean, zero: (r: number, c: number) => boolean): StridedOperand {
  const data = new (v.constructor as Float32ArrayConstructor)(batch * R * C);
  for (let z = 0; z < batch; z++)
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) data[z * R * C + (t ? c * R + r : r * C + c)] = zero(r, c) ? 0 : v[z * R * C + r * C + c];
  return t ? { data, off: 0, rs: 1, cs: R, bs: R * C } : { data, off: 0, rs: C, cs: 1, bs: R * C };
}

/** The structure's promised zeros: in A (i, k), in B (k, j). */
const ZEROS: Record<Tri, { a?: (i: number, k: number) => boolean; b?: (k: number, j: number) => boolean }> = {
  [TRI.NONE]: {},
  [TRI.OUT_LOWER]: {},
  [TRI.A_LOWER]: { a: (i, k) => k > i },
  [TRI.A_UPPER]: { a: (i, k) => k < i },
  [TRI.B_LOWER]: { b: (k, j) => k < j },
};
const NAMES = Object.fromEntries(Object.entries(TRI).map(([k, v]) => [v, k]));

/** Elements as numbers with −0 read as 0. */
function plain(x: F): number[] {
  return Array.from(x, (v) => v + 0);
}

/** [batch, M, N, K]: tile edges (3 × 12 / 4 × 4 tiles, one-vector tall edges), K blocks (K > 256), the chunks of attention. */
const SHAPES: [number, number, number, number][] = [
  [8, 128, 128, 32],
  [2, 128, 128, 128],
  [3, 37, 53, 37],
  [2, 13, 4, 13],
  [1, 40, 40, 64],
  [1, 300, 70, 300],
  [2, 20, 45, 70],
];

describe('gemm: triangular structures', () => {
  const threads = getNumThreads();
  const force = simdTuning.force;
  const cBlock = gemmLimits.cBlockBytes;
  afterEach(() => {
    setNumThreads(threads);
    simdTuning.force = force;
    gemmLimits.cBlockBytes = cBlock;
  });

  for (const f64 of [false, true])
    for (const tri of [TRI.OUT_LOWER, TRI.A_LOWER, TRI.A_UPPER, TRI.B_LOWER] as Tri[])
      for (const [batch, M, N, K] of SHAPES) {
        it(`${f64 ? 'f64' : 'f32'} ${NAMES[tri]} ${batch}×[${M},${K}]·[${K},${N}]: the full product's bits, both layouts, 1 and 2 threads`, () => {
          simdTuning.force = true;
          const va = values(batch * M * K, M * 7 + K, f64),
            vb = values(batch * K * N, N * 3 + K, f64);
          const z = ZEROS[tri];
          for (const [tA, tB] of [
            [false, false],
            [true, true],
            [true, false],
          ]) {
            const A = operand(va, batch, M, K, tA, z.a ?? (() => false));
            const B = operand(vb, batch, K, N, tB, z.b ?? (() => false));
            const Ctor = f64 ? Float64Array : Float32Array;
            const full = new Ctor(batch * M * N);
            gemmStrided(A, B, full, batch, M, N, K);
            const want = plain(full);
            if (tri === TRI.OUT_LOWER)
              for (let b = 0; b < batch; b++) for (let i = 0; i < M; i++) for (let j = i + 1; j < N; j++) want[(b * M + i) * N + j] = 0;
            for (const t of [1, 2]) {
              setNumThreads(t);
              const got = new Ctor(batch * M * N).fill(Number.NaN);
              gemmStrided(A, B, got, batch, M, N, K, tri);
              expect(plain(got)).toEqual(want);
            }
          }
        });
      }

  it('C in blocks of rows (the row index of a block continues the matrix): OUT_LOWER and A_LOWER', () => {
    simdTuning.force = true;
    const [M, N, K] = [200, 90, 200];
    gemmLimits.cBlockBytes = 12 * N * 4; // 12 rows per block
    for (const tri of [TRI.OUT_LOWER, TRI.A_LOWER, TRI.A_UPPER] as Tri[]) {
      const z = ZEROS[tri];
      const A = operand(values(M * K, 5, false), 1, M, K, false, z.a ?? (() => false));
      const B = operand(values(K * N, 6, false), 1, K, N, false, () => false);
      const full = new Float32Array(M * N);
      gemmStrided(A, B, full, 1, M, N, K);
      const want = plain(full);
      if (tri === TRI.OUT_LOWER) for (let i = 0; i < M; i++) for (let j = i + 1; j < N; j++) want[i * N + j] = 0;
      const got = new Float32Array(M * N).fill(Number.NaN);
      gemmStrided(A, B, got, 1, M, N, K, tri);
      expect(plain(got)).toEqual(want);
    }
  });

  it('OUT_LOWER on the plain-TypeScript path (a product below the SIMD size): tril of the product', () => {
    simdTuning.force = false;
    const A = operand(values(6, 1, false), 1, 3, 2, false, () => false);
    const B = operand(values(6, 2, false), 1, 2, 3, false, () => false);
    const full = new Float32Array(9);
    gemmStrided(A, B, full, 1, 3, 3, 2);
    const got = new Float32Array(9).fill(Number.NaN);
    gemmStrided(A, B, got, 1, 3, 3, 2, TRI.OUT_LOWER);
    expect(Array.from(got)).toEqual(Array.from(full, (v, k) => (k % 3 > Math.floor(k / 3) ? 0 : v)));
    expect(full[1]).not.toBe(0);
  });
});

describe('kernel triMatmul', () => {
  /** `[2, 9, 9] · [2, 9, 7]` operands (a transposed view for a) with the triangle's promised zeros. */
  function operands(tri: Triangle): [Tensor, Tensor] {
    const z = ZEROS[{ lower: TRI.OUT_LOWER, 'a-lower': TRI.A_LOWER, 'a-upper': TRI.A_UPPER, 'b-lower': TRI.B_LOWER }[tri]];
    const A = operand(values(2 * 9 * 9, 11, true), 2, 9, 9, true, z.a ?? (() => false));
    const B = operand(values(2 * 9 * 7, 12, true), 2, 9, 7, false, z.b ?? (() => false));
    return [new Tensor(A.data, [2, 9, 9], [81, A.rs, A.cs], 0), fromArray(B.data, [2, 9, 7])];
  }
  for (const tri of ['lower', 'a-lower', 'a-upper', 'b-lower'] as Triangle[]) {
    it(`'${tri}': the CPU kernel (forced through the SIMD gemm) equals the generic composition (matmul, where)`, () => {
      const [a, b] = operands(tri);
      const prev = simdTuning.force;
      simdTuning.force = true;
      try {
        const got = triMatmul(a, b, tri),
          want = triMatmulGeneric(a, b, tri);
        expect(plain(got.storage as F)).toEqual(plain(want.storage as F));
        if (tri === 'lower') expect(want.storage[1]).toBe(0);
        else expect(plain(want.storage as F)).toEqual(plain(matmul(a, b).storage as F));
      } finally {
        simdTuning.force = prev;
      }
    });
  }
  it('an unknown triangle is an error naming the choices', () => {
    const [a, b] = operands('lower');
    expect(() => triMatmul(a, b, 'upper' as Triangle)).toThrow(/unknown triangle 'upper' \(expected lower, a-lower, a-upper, b-lower\)/);
  });
});
