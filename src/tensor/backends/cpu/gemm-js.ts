/**
 * Dense batched matrix multiply in plain JavaScript: `C[b] = op(A[b]) · op(B[b])`. This is the
 * reference implementation the WebAssembly SIMD gemm (wasm/) is tested against, and the fallback
 * where WebAssembly SIMD or shared memory is unavailable (`MEGA_SIMD=0` forces it).
 *
 * How it is fast in plain JavaScript:
 * - A is packed into row panels of MR rows and B into column panels of NR columns, both
 *   k-major, so the micro-kernel reads two short contiguous runs per k and keeps an MR×NR tile
 *   of C in local variables (registers). MR×NR = 3×4 keeps 12 accumulators + 4 operands within
 *   the 16 xmm registers V8 uses, and measured fastest (≈5.5 GFLOP/s per core on Zen 4).
 * - All kernels come from one source string (`KERNEL_SRC`) instantiated with its own
 *   `new Function` per dtype: V8 slows a function that has seen both Float32Array and
 *   Float64Array, so each dtype gets a monomorphic copy. Worker threads build theirs from the
 *   same string.
 * - Large problems (batch·M·N·K ≥ 2^21) are cut into tasks (batch × row block × column block)
 *   run by a {@link SyncPool} of worker_threads on SharedArrayBuffers, synchronously.
 *
 * Numerics: every output element is `((0 + a₀b₀) + a₁b₁) + …`, summed in float64 in increasing
 * k, whatever path (small, packed, threaded) or thread computes it, then stored in the output
 * dtype. Results are therefore bitwise deterministic and independent of the thread count; f32
 * results are the exactly rounded products summed in double (more accurate than f32 sums).
 */
import { getNumThreads, onThreadCountChange, splitGemmTasks, SyncPool, type PoolKernel } from './pool.js';

/** The float storage types the kernels accept. */
export type FloatArray = Float32Array | Float64Array;

/** Register tile: MR rows of A × NR columns of B. */
const MR = 3;
const NR = 4;
/** Below this many multiply-adds (or when M < MR or N < NR) use the unpacked kernel. */
const SMALL_WORK = 4096;
/** From this many multiply-adds (batch·M·N·K) on, use the worker pool. */
const PARALLEL_WORK = 1 << 21;
/** Smallest task worth handing to another thread, in multiply-adds. */
const MIN_TASK_WORK = 1 << 18;

// Parameter slots of a threaded job (see `runTask` in the kernel source).
const P_M = 0;
const P_N = 1;
const P_K = 2;
const P_AOFF = 3;
const P_ASTRIDE = 4;
const P_BOFF = 5;
const P_BSTRIDE = 6;
const P_COFF = 7;
const P_BATCH = 8;
const P_BPT = 9;
const P_MCH = 10;
const P_NCH = 11;
const P_PPM = 12;
const P_PPN = 13;

/**
 * Checks the sizes and strides of a gemm (the contract of `gemm` in gemm.ts; the element types
 * are checked by the caller) and settles the empty cases: false when nothing is left to compute
 * (no output elements, or K = 0 and C zeroed).
 */
export function gemmSizes(
  a: FloatArray,
  b: FloatArray,
  c: FloatArray,
  batch: number,
  M: number,
  N: number,
  K: number,
  aBatchStride: number,
  bBatchStride: number,
): boolean {
  for (const [name, v] of [
    ['batch', batch],
    ['M', M],
    ['N', N],
    ['K', K],
    ['aBatchStride', aBatchStride],
    ['bBatchStride', bBatchStride],
  ] as const) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`gemm: ${name} must be a non-negative integer, got ${v}`);
  }
  if (batch === 0 || M === 0 || N === 0) return false;
  if (c.length < batch * M * N) throw new RangeError(`gemm: c has ${c.length} elements, needs ${batch * M * N}`);
  if (a.length < (batch - 1) * aBatchStride + M * K) throw new RangeError(`gemm: a has ${a.length} elements, too few`);
  if (b.length < (batch - 1) * bBatchStride + K * N) throw new RangeError(`gemm: b has ${b.length} elements, too few`);
  if (K === 0) {
    c.fill(0, 0, batch * M * N);
    return false;
  }
  return true;
}

/** `base + r*step` as source text, folding the r = 0 case. */
function off(base: string, r: number, step: string): string {
  return r === 0 ? base : `${base} + ${r} * ${step}`;
}

/**
 * Source of a packing function for panels of width W: element (i, k) of the logical matrix is
 * `x[xOff + i*si + k*sk]`; panel p holds rows p*W … p*W+W-1, k-major (`dst[… + k*W + r]`),
 * zero-padded past `rows`.
 */
function packSource(name: string, W: number): string {
  const loads = Array.from({ length: W }, (_, r) => `dst[d + ${r}] = x[${off('s', r, 'si')}];`).join(' ');
  return `function ${name}(x, xOff, rows, K, si, sk, dst, dOff) {
  // rows × K logical matrix -> ceil(rows/${W}) panels of ${W}×K, k-major
  const np = Math.ceil(rows / ${W});
  let d = dOff;
  for (let p = 0; p < np; p++) {
    const i0 = p * ${W};
    if (i0 + ${W} <= rows) {
      let s = xOff + i0 * si;
      for (let k = 0; k < K; k++) { ${loads} d += ${W}; s += sk; }
    } else {
      for (let k = 0; k < K; k++) {
        for (let r = 0; r < ${W}; r++) dst[d + r] = i0 + r < rows ? x[xOff + (i0 + r) * si + k * sk] : 0;
        d += ${W};
      }
    }
  }
}`;
}

/**
 * Source of the macro-kernel: row panels [p0,p1) of packed A (at w[apOff…]) × column panels
 * [q0,q1) of packed B (at w[bpOff…]) into C (row-major M×N at c[cOff…]).
 */
function macroSource(): string {
  const L: string[] = [];
  const acc = (r: number, c: number): string => `c${r}_${c}`;
  // One array w holds both packed operands: V8 then checks and loads one typed array per k step.
  L.push(`function macro(w, apOff, bpOff, c, cOff, M, N, K, p0, p1, q0, q1) {`);
  L.push(`  // A rows of one block stay in L2 while every B panel of the range passes over them`);
  L.push(`  const PB = Math.max(1, Math.floor(ABLOCK / (${MR} * K)));`);
  L.push(`  for (let pb = p0; pb < p1; pb += PB) {`);
  L.push(`    const pe = Math.min(p1, pb + PB);`);
  L.push(`    for (let q = q0; q < q1; q++) {`);
  L.push(`      const bo = bpOff + q * K * ${NR};`);
  L.push(`      const col0 = q * ${NR};`);
  L.push(`      for (let p = pb; p < pe; p++) {`);
  L.push(`        let ai = apOff + p * K * ${MR};`);
  L.push(`        let bi = bo;`);
  const decl: string[] = [];
  for (let r = 0; r < MR; r++) for (let c = 0; c < NR; c++) decl.push(`${acc(r, c)} = 0`);
  L.push(`        let ${decl.join(', ')};`);
  L.push(`        for (let k = 0; k < K; k++) {`);
  L.push(`          ${Array.from({ length: NR }, (_, c) => `const b${c} = w[${off('bi', c, '1')}];`).join(' ')}`);
  for (let r = 0; r < MR; r++) {
    const fma = Array.from({ length: NR }, (_, c) => `${acc(r, c)} += a * b${c};`).join(' ');
    L.push(`          { const a = w[${off('ai', r, '1')}]; ${fma} }`);
  }
  L.push(`          ai += ${MR}; bi += ${NR};`);
  L.push(`        }`);
  L.push(`        const r0 = p * ${MR};`);
  L.push(`        if (r0 + ${MR} <= M && col0 + ${NR} <= N) {`);
  for (let r = 0; r < MR; r++) {
    const st = Array.from({ length: NR }, (_, c) => `c[${off('o', c, '1')}] = ${acc(r, c)};`).join(' ');
    L.push(`          { const o = cOff + (r0 + ${r}) * N + col0; ${st} }`);
  }
  L.push(`        } else {`);
  for (let r = 0; r < MR; r++) {
    const st = Array.from({ length: NR }, (_, c) => `if (col0 + ${c} < N) c[o + ${c}] = ${acc(r, c)};`).join(' ');
    L.push(`          if (r0 + ${r} < M) { const o = cOff + (r0 + ${r}) * N + col0; ${st} }`);
  }
  L.push(`        }`);
  L.push(`      }`);
  L.push(`    }`);
  L.push(`  }`);
  L.push(`}`);
  return L.join('\n');
}

/**
 * Body of `function (Arr)` returning the kernel object for typed-array class `Arr`. Shared
 * verbatim by the main thread and the workers.
 */
const KERNEL_SRC = `"use strict";
const ABLOCK = (256 * 1024) / Arr.BYTES_PER_ELEMENT;
${packSource('packA', MR)}
${packSource('packB', NR)}
${macroSource()}
/** Unpacked kernel for small or skinny problems; same summation order as macro. */
function small(a, aOff, ais, aks, b, bOff, bks, bjs, c, cOff, M, N, K, acc) {
  for (let i = 0; i < M; i++) {
    const ci = cOff + i * N;
    if (bks === 1) {
      // B rows of op(B)ᵀ are contiguous: dot products
      for (let j = 0; j < N; j++) {
        let s = 0, ai = aOff + i * ais, bj = bOff + j * bjs;
        for (let k = 0; k < K; k++) { s += a[ai] * b[bj]; ai += aks; bj++; }
        c[ci + j] = s;
      }
    } else {
      // rows of op(B) are contiguous: axpy into a float64 row
      for (let j = 0; j < N; j++) acc[j] = 0;
      let ai = aOff + i * ais;
      for (let k = 0; k < K; k++) {
        const aik = a[ai], bk = bOff + k * bks;
        for (let j = 0; j < N; j++) acc[j] += aik * b[bk + j];
        ai += aks;
      }
      for (let j = 0; j < N; j++) c[ci + j] = acc[j];
    }
  }
}
let view = new Arr(0);
function setBuffer(buf) { view = new Arr(buf); }
/** Task t of a threaded job: a group of batches × a block of row panels × a block of column panels. */
function runTask(P, t) {
  // |0: parameters arrive as float64; int32 values keep macro's index arithmetic in integers
  // (double-typed feedback here would slow macro down everywhere).
  const M = P[${P_M}] | 0, N = P[${P_N}] | 0, K = P[${P_K}] | 0;
  const mch = P[${P_MCH}] | 0, nch = P[${P_NCH}] | 0, per = mch * nch;
  const ppm = P[${P_PPM}] | 0, ppn = P[${P_PPN}] | 0, bpt = P[${P_BPT}] | 0;
  const g = Math.floor(t / per), rest = t - g * per;
  const mi = Math.floor(rest / nch), ni = rest - mi * nch;
  const p0 = mi * ppm, p1 = Math.min(p0 + ppm, Math.ceil(M / ${MR}));
  const q0 = ni * ppn, q1 = Math.min(q0 + ppn, Math.ceil(N / ${NR}));
  const b0 = g * bpt, b1 = Math.min(b0 + bpt, P[${P_BATCH}] | 0);
  const aOff = P[${P_AOFF}] | 0, aStride = P[${P_ASTRIDE}] | 0;
  const bOff = P[${P_BOFF}] | 0, bStride = P[${P_BSTRIDE}] | 0, cOff = P[${P_COFF}] | 0;
  for (let b = b0; b < b1; b++) {
    macro(view, aOff + b * aStride, bOff + b * bStride, view, cOff + b * M * N, M, N, K, p0, p1, q0, q1);
  }
}
return { packA, packB, macro, small, setBuffer, runTask };
`;

/** The kernel object built from KERNEL_SRC for one dtype. */
interface Kernels extends PoolKernel {
  packA(x: FloatArray, xOff: number, rows: number, K: number, si: number, sk: number, dst: FloatArray, dOff: number): void;
  packB(x: FloatArray, xOff: number, rows: number, K: number, si: number, sk: number, dst: FloatArray, dOff: number): void;
  macro(
    w: FloatArray,
    apOff: number,
    bpOff: number,
    c: FloatArray,
    cOff: number,
    M: number,
    N: number,
    K: number,
    p0: number,
    p1: number,
    q0: number,
    q1: number,
  ): void;
  small(
    a: FloatArray,
    aOff: number,
    ais: number,
    aks: number,
    b: FloatArray,
    bOff: number,
    bks: number,
    bjs: number,
    c: FloatArray,
    cOff: number,
    M: number,
    N: number,
    K: number,
    acc: Float64Array,
  ): void;
}

/** Per-dtype state on the main thread: its kernels and packing scratch. */
interface DtypeState {
  readonly Arr: Float32ArrayConstructor | Float64ArrayConstructor;
  readonly kind: number;
  readonly k: Kernels;
  /** packing scratch of the single-threaded path: packed A, then packed B */
  pack: FloatArray;
}

const KINDS = ['Float32Array', 'Float64Array'];

function makeState(Arr: Float32ArrayConstructor | Float64ArrayConstructor, kind: number): DtypeState {
  const k = new Function('Arr', KERNEL_SRC)(Arr) as Kernels;
  return { Arr, kind, k, pack: new Arr(0) };
}

const F32 = makeState(Float32Array, 0);
const F64 = makeState(Float64Array, 1);
let accRow = new Float64Array(64);

let pool: SyncPool | undefined;
onThreadCountChange(() => {
  pool?.close();
  pool = undefined;
});

/**
 * Diagnostics for tests and benchmarks: the JS pool's started workers and the number of tasks
 * they (not the calling thread) have run; zeros before the first threaded product.
 */
export function jsThreadStats(): { workersReady: number; workerTasks: number } {
  return pool?.stats() ?? { workersReady: 0, workerTasks: 0 };
}

function getPool(): SyncPool {
  pool ??= new SyncPool(getNumThreads() - 1, KERNEL_SRC, KINDS, [F32.k, F64.k]);
  return pool;
}

/** Logical strides of op(A) (M×K) and op(B) (K×N) over their storage. */
function strides(M: number, N: number, K: number, transA: boolean, transB: boolean) {
  return {
    ais: transA ? 1 : K, // A(i,k) = a[i*ais + k*aks]
    aks: transA ? M : 1,
    bks: transB ? 1 : N, // B(k,j) = b[k*bks + j*bjs]
    bjs: transB ? K : 1,
  };
}

/**
 * C[b] = op(A[b]) · op(B[b]) for b < batch; A is [batch, M, K] contiguous (or [batch, K, M] when
 * transA), B is [batch, K, N] (or [batch, N, K] when transB), C is [batch, M, N] contiguous and
 * fully overwritten. aBatchStride/bBatchStride may be 0 (broadcast one matrix over the batch).
 * All arrays share one dtype. `c` must not overlap `a` or `b`.
 *
 * Synchronous; products of batch·M·N·K ≥ 2^21 multiply-adds run on the worker pool (see
 * {@link setNumThreads}), the result is bitwise the same for any thread count.
 */
export function gemmJs(
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
  const st = c instanceof Float32Array ? F32 : c instanceof Float64Array ? F64 : undefined;
  if (st === undefined || a.constructor !== st.Arr || b.constructor !== st.Arr) {
    throw new TypeError('gemm: a, b and c must all be Float32Array or all Float64Array');
  }
  if (!gemmSizes(a, b, c, batch, M, N, K, aBatchStride, bBatchStride)) return;
  if (batch === 1) aBatchStride = bBatchStride = 0;
  // One B for every batch and A contiguous: one tall product with batch·M rows.
  if (batch > 1 && bBatchStride === 0 && !transA && aBatchStride === M * K) {
    M *= batch;
    batch = 1;
    aBatchStride = 0;
  }
  // Everything broadcast: compute once and replicate.
  if (batch > 1 && aBatchStride === 0 && bBatchStride === 0) {
    gemmJs(a, b, c, 1, M, N, K, transA, transB, 0, 0);
    for (let i = 1; i < batch; i++) c.copyWithin(i * M * N, 0, M * N);
    return;
  }
  const s = strides(M, N, K, transA, transB);
  const work = batch * M * N * K;
  if (M < MR || N < NR || M * N * K <= SMALL_WORK) {
    if (accRow.length < N) accRow = new Float64Array(Math.max(N, 2 * accRow.length));
    for (let i = 0; i < batch; i++) {
      st.k.small(a, i * aBatchStride, s.ais, s.aks, b, i * bBatchStride, s.bks, s.bjs, c, i * M * N, M, N, K, accRow);
    }
  } else if (getNumThreads() > 1 && work >= PARALLEL_WORK) {
    gemmThreaded(st, a, b, c, batch, M, N, K, s, aBatchStride, bBatchStride);
  } else {
    gemmSingle(st, a, b, c, batch, M, N, K, s, aBatchStride, bBatchStride);
  }
}

type Strides = ReturnType<typeof strides>;

/** Packed path on the calling thread, one batch at a time (broadcast operands packed once). */
function gemmSingle(
  st: DtypeState,
  a: FloatArray,
  b: FloatArray,
  c: FloatArray,
  batch: number,
  M: number,
  N: number,
  K: number,
  s: Strides,
  aBS: number,
  bBS: number,
): void {
  const mp = Math.ceil(M / MR);
  const np = Math.ceil(N / NR);
  const bOff = mp * MR * K;
  const need = bOff + np * NR * K;
  if (st.pack.length < need) st.pack = new st.Arr(Math.max(need, Math.min(2 * st.pack.length, need + (1 << 22))));
  const w = st.pack;
  for (let i = 0; i < batch; i++) {
    if (i === 0 || aBS !== 0) st.k.packA(a, i * aBS, M, K, s.ais, s.aks, w, 0);
    if (i === 0 || bBS !== 0) st.k.packB(b, i * bBS, N, K, s.bjs, s.bks, w, bOff);
    st.k.macro(w, 0, bOff, c, i * M * N, M, N, K, 0, mp, 0, np);
  }
}

/** Packed path on the worker pool: pack into the shared buffer, run tasks, copy C out. */
function gemmThreaded(
  st: DtypeState,
  a: FloatArray,
  b: FloatArray,
  c: FloatArray,
  batch: number,
  M: number,
  N: number,
  K: number,
  s: Strides,
  aBS: number,
  bBS: number,
): void {
  const p = getPool();
  const mp = Math.ceil(M / MR);
  const np = Math.ceil(N / NR);
  const aPanel = mp * MR * K;
  const bPanel = np * NR * K;
  const nA = aBS === 0 ? 1 : batch;
  const nB = bBS === 0 ? 1 : batch;
  const aOff = 0;
  const bOff = nA * aPanel;
  const cOff = bOff + nB * bPanel;
  const total = cOff + batch * M * N;
  if (total >= 2 ** 31) {
    // Offsets travel as int32 (see runTask); such sizes do not fit one SharedArrayBuffer anyway.
    gemmSingle(st, a, b, c, batch, M, N, K, s, aBS, bBS);
    return;
  }
  const buf = p.ensureBuffer(total * st.Arr.BYTES_PER_ELEMENT);
  const view: FloatArray = st.kind === 0 ? new Float32Array(buf, 0, total) : new Float64Array(buf, 0, total);
  for (let i = 0; i < nA; i++) st.k.packA(a, i * aBS, M, K, s.ais, s.aks, view, aOff + i * aPanel);
  for (let i = 0; i < nB; i++) st.k.packB(b, i * bBS, N, K, s.bjs, s.bks, view, bOff + i * bPanel);

  // Tasks: about 4 per thread for balance on shared cores, none smaller than MIN_TASK_WORK.
  const perMatrix = M * N * K;
  const target = Math.max(1, Math.min(getNumThreads() * 4, Math.floor((batch * perMatrix) / MIN_TASK_WORK)));
  const t = splitGemmTasks(batch, mp, np, target);
  fillParams(p.params, M, N, K, aOff, nA > 1 ? aPanel : 0, bOff, nB > 1 ? bPanel : 0, cOff, batch, t.bpt, t.mch, t.nch, t.ppm, t.ppn);
  p.run(st.kind, t.tasks);
  c.set(view.subarray(cOff, total));
}

function fillParams(
  P: Float64Array,
  M: number,
  N: number,
  K: number,
  aOff: number,
  aStride: number,
  bOff: number,
  bStride: number,
  cOff: number,
  batch: number,
  bpt: number,
  mch: number,
  nch: number,
  ppm: number,
  ppn: number,
): void {
  P[P_M] = M;
  P[P_N] = N;
  P[P_K] = K;
  P[P_AOFF] = aOff;
  P[P_ASTRIDE] = aStride;
  P[P_BOFF] = bOff;
  P[P_BSTRIDE] = bStride;
  P[P_COFF] = cOff;
  P[P_BATCH] = batch;
  P[P_BPT] = bpt;
  P[P_MCH] = mch;
  P[P_NCH] = nch;
  P[P_PPM] = ppm;
  P[P_PPN] = ppn;
}
