/**
 * Dense batched matrix multiply for the CPU backend: `C[b] = op(A[b]) · op(B[b])`.
 *
 * Two implementations behind one entry point:
 * - **WebAssembly SIMD** (wasm/gemm.ts, wasm/gemm-run.ts): panels (packed where that pays), a register tile of
 *   v128 accumulators (3×12 f32 with relaxed SIMD's fused multiply-add, else 4×8 with mul + add;
 *   4×4 f64), K blocking, over a worker pool that shares one `WebAssembly.Memory`. Used whenever
 *   WebAssembly SIMD and shared memory are available.
 * - **Plain TypeScript** (gemm-js.ts): the reference implementation the SIMD kernel is tested
 *   against, and the fallback (`MEGA_SIMD=0` or `setSimd(false)` selects it). Tiny products
 *   (≤ {@link SMALL_WORK} multiply-adds in all) always use it: the call into wasm would cost more
 *   than the product.
 *
 * Numerics: the SIMD kernel sums each output element in the element type (f32 sums for f32, as
 * BLAS does), k increasing, one rounding per step with fused multiply-add, two without (see
 * wasm/features.ts); the plain-TS kernel sums in float64. Both are bitwise deterministic
 * and independent of the thread count (`setNumThreads`).
 */
import { gemmJs, gemmSizes, jsThreadStats, type FloatArray } from './gemm-js.js';
import { TRI, type Tri } from './wasm/gemm.js';
import { gemmWasm, type BiasRow, type StridedOperand } from './wasm/gemm-run.js';
import { settleJobs, simdTuning, wasmRuntime, wasmThreadStats } from './wasm/runtime.js';

export type { BiasRow, FloatArray, StridedOperand, Tri };
export { TRI };

/**
 * Up to this many multiply-adds (the whole batch) the plain-TS kernel is used even with SIMD on.
 * Measured (1 thread, per CPU time): the SIMD path is 4–9× faster from ≈ 1,700 multiply-adds on,
 * whatever the shape (one row, one column, batches of 8 × 8 matrices), and about even at 512.
 */
export const SMALL_WORK = 512;

/**
 * Diagnostics for tests and benchmarks: started workers and tasks run by workers (not the
 * calling thread) in the pool the active implementation uses; zeros before the first threaded
 * product.
 */
export function threadStats(): { workersReady: number; workerTasks: number } {
  return wasmRuntime() ? wasmThreadStats() : jsThreadStats();
}

/**
 * C[b] = op(A[b]) · op(B[b]) for b < batch; A is [batch, M, K] contiguous (or [batch, K, M] when
 * transA), B is [batch, K, N] (or [batch, N, K] when transB), C is [batch, M, N] contiguous and
 * fully overwritten. aBatchStride/bBatchStride may be 0 (broadcast one matrix over the batch).
 * All arrays share one dtype. `c` must not overlap `a` or `b`.
 *
 * Synchronous; large products run on the worker pool (see `setNumThreads`); the result is
 * bitwise the same for any thread count.
 */
export function gemm(
  a: FloatArray,
  b: FloatArray,
  c: FloatArray,
  batch: number,
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
  aBatchStride: number,
  bBatchStride: number,
): void {
  const f32 = c instanceof Float32Array;
  if (!(f32 || c instanceof Float64Array) || a.constructor !== c.constructor || b.constructor !== c.constructor) {
    throw new TypeError('gemm: a, b and c must all be Float32Array or all Float64Array');
  }
  if (!gemmSizes(a, b, c, batch, M, N, K, aBatchStride, bBatchStride)) return;
  if (tiny(batch, M, N, K) || wasmRuntime() === null) {
    gemmJs(a, b, c, batch, M, N, K, transA, transB, aBatchStride, bBatchStride);
    return;
  }
  const A: StridedOperand = { data: a, off: 0, rs: transA ? 1 : K, cs: transA ? M : 1, bs: aBatchStride };
  const B: StridedOperand = { data: b, off: 0, rs: transB ? 1 : N, cs: transB ? K : 1, bs: bBatchStride };
  gemmStridedWasm(A, B, c, batch, M, N, K, TRI.NONE, null);
}

/**
 * C[b] = A[b] · B[b] for strided operands: element (b, i, k) of A is
 * `A.data[A.off + b·A.bs + i·A.rs + k·A.cs]` (likewise B with (b, k, j)); all strides ≥ 0,
 * `bs = 0` broadcasts. C is [batch, M, N] contiguous, fully overwritten, not overlapping A or B.
 * Views (transposes, slices, chunked time axes) need no copy on the SIMD path; the plain-TS path
 * materialises them first.
 *
 * `tri` ({@link TRI}): the triangular structure of square-chunk causal attention, per matrix.
 * OUT_LOWER gives tril(A·B); A_LOWER, A_UPPER and B_LOWER promise zeros in an operand, whose
 * terms the SIMD kernel then skips (the result is A·B either way). The plain-TS path computes
 * the full product.
 *
 * `bias` (no triangle): N values added to every row of C — each element the product as it would
 * be stored plus the bias, rounded once (the SIMD kernel adds it as it stores C). `defer`: see
 * wasm/gemm-run.ts (the Tensor kernels of matmul.ts pass true).
 */
export function gemmStrided(
  A: StridedOperand,
  B: StridedOperand,
  c: FloatArray,
  batch: number,
  M: number,
  N: number,
  K: number,
  tri: Tri = TRI.NONE,
  bias: BiasRow | null = null,
  defer = false,
): void {
  if (A.data.constructor !== c.constructor || B.data.constructor !== c.constructor || !(c instanceof Float32Array || c instanceof Float64Array)) {
    throw new TypeError('gemmStrided: A, B and c must all be Float32Array or all Float64Array');
  }
  for (const o of [A, B]) {
    if (![o.off, o.rs, o.cs, o.bs].every((v) => Number.isInteger(v) && v >= 0))
      throw new RangeError('gemmStrided: offsets and strides must be non-negative integers');
  }
  if (batch === 0 || M === 0 || N === 0) return;
  if (c.length < batch * M * N) throw new RangeError(`gemmStrided: c has ${c.length} elements, needs ${batch * M * N}`);
  if (bias && (tri !== TRI.NONE || bias.off + N > bias.data.length || bias.data.constructor !== c.constructor))
    throw new RangeError("gemmStrided: a bias row needs N values of C's type and no triangle");
  if (K === 0 || tiny(batch, M, N, K) || wasmRuntime() === null) settleJobs(); // JavaScript reads the operands below
  if (K === 0) {
    c.fill(0, 0, batch * M * N);
    if (bias) addRows(c, bias, batch * M, N);
    return;
  }
  const last = (o: StridedOperand, R: number, C: number) => o.off + (batch - 1) * o.bs + (R - 1) * o.rs + (C - 1) * o.cs;
  if (last(A, M, K) >= A.data.length || last(B, K, N) >= B.data.length) throw new RangeError('gemmStrided: operand out of range');
  if (tiny(batch, M, N, K) || wasmRuntime() === null) {
    const a = materialize(A, batch, M, K),
      b = materialize(B, batch, K, N);
    gemmJs(a.data, b.data, c, batch, M, N, K, a.trans, b.trans, a.bs, b.bs);
    if (tri === TRI.OUT_LOWER) zeroUpper(c, batch, M, N);
    if (bias) addRows(c, bias, batch * M, N);
    return;
  }
  gemmStridedWasm(A, B, c, batch, M, N, K, tri, bias, defer);
}

/** C(i, j) += bias(j) for the `rows` rows of c (each sum rounded once to c's type). */
function addRows(c: FloatArray, bias: BiasRow, rows: number, N: number): void {
  const b = bias.data.subarray(bias.off, bias.off + N);
  for (let i = 0; i < rows; i++) for (let j = 0, o = i * N; j < N; j++) c[o + j] += b[j];
}

/** C(i, j) = 0 for j > i in each of the `batch` contiguous M × N matrices of c. */
function zeroUpper(c: FloatArray, batch: number, M: number, N: number): void {
  for (let z = 0; z < batch; z++) for (let i = 0; i < Math.min(M, N - 1); i++) c.fill(0, (z * M + i) * N + i + 1, (z * M + i + 1) * N);
}

/** Whether a product is too small for the copy into wasm memory (never with `simdTuning.force`). */
function tiny(batch: number, M: number, N: number, K: number): boolean {
  return !simdTuning.force && batch * M * N * K <= SMALL_WORK;
}

/** The SIMD path after shape normalisation (batch folding, full broadcast). */
function gemmStridedWasm(
  A: StridedOperand,
  B: StridedOperand,
  c: FloatArray,
  batch: number,
  M: number,
  N: number,
  K: number,
  tri: Tri,
  bias: BiasRow | null,
  defer = false,
): void {
  const rt = wasmRuntime()!;
  if (batch === 1) {
    A = { ...A, bs: 0 };
    B = { ...B, bs: 0 };
  }
  // One B for every batch and A's batches continuing its rows: one tall product with batch·M rows
  // (not with a triangle: it is per matrix).
  if (tri === TRI.NONE && batch > 1 && B.bs === 0 && A.bs === M * A.rs && A.rs > 0) {
    M *= batch;
    batch = 1;
    A = { ...A, bs: 0 };
  }
  // Everything broadcast: compute once and replicate.
  if (batch > 1 && A.bs === 0 && B.bs === 0) {
    gemmWasm(rt, A, B, c, 1, M, N, K, tri, bias);
    for (let i = 1; i < batch; i++) c.copyWithin(i * M * N, 0, M * N);
    return;
  }
  gemmWasm(rt, A, B, c, batch, M, N, K, tri, bias, defer);
}

/**
 * A strided operand as the plain-TS gemm wants it: row-major or column-major matrices from
 * index 0 with a uniform batch stride (copied unless it already is).
 */
function materialize(o: StridedOperand, batch: number, R: number, C: number): { data: FloatArray; trans: boolean; bs: number } {
  const bs = batch === 1 ? 0 : o.bs;
  if (o.cs === 1 && (o.rs === C || R === 1) && (bs === 0 || bs === R * C)) return { data: o.off === 0 ? o.data : o.data.subarray(o.off), trans: false, bs };
  if (o.rs === 1 && (o.cs === R || C === 1) && (bs === 0 || bs === R * C)) return { data: o.off === 0 ? o.data : o.data.subarray(o.off), trans: true, bs };
  const n = bs === 0 ? 1 : batch;
  const out = new (o.data.constructor as Float32ArrayConstructor | Float64ArrayConstructor)(n * R * C);
  const d = o.data;
  let p = 0;
  for (let z = 0; z < n; z++) {
    for (let r = 0; r < R; r++) {
      const base = o.off + z * bs + r * o.rs;
      for (let q = 0; q < C; q++) out[p++] = d[base + q * o.cs];
    }
  }
  return { data: out, trans: false, bs: bs === 0 ? 0 : R * C };
}

/** The plain-TypeScript gemm (the reference implementation), same contract as {@link gemm}. */
export function gemmReference(
  a: FloatArray,
  b: FloatArray,
  c: FloatArray,
  batch: number,
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
  aBatchStride: number,
  bBatchStride: number,
): void {
  gemmJs(a, b, c, batch, M, N, K, transA, transB, aBatchStride, bBatchStride);
}
